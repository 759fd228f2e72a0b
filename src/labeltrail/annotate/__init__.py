"""The reference annotation frontend: confirm-or-correct on the task topics.

An annotator signs in with a per-annotator token, gets only the tasks keyed by their id on
``<prefix>.tasks.crowd`` / ``<prefix>.tasks.expert``, answers with the keyboard, and each
answer is produced as ``VoteCast`` (crowd) or ``AdjudicationRecorded`` (expert) before the
request is acknowledged. See ``docs/annotate.md``.
"""

from __future__ import annotations

from labeltrail.annotate.app import Frontend, create_app
from labeltrail.annotate.auth import TokenStore, hash_token, new_token
from labeltrail.annotate.queue import TaskQueue, outcome_id
from labeltrail.annotate.server import AnnotateService, background_server, serve

__all__ = [
    "AnnotateService",
    "Frontend",
    "TaskQueue",
    "TokenStore",
    "background_server",
    "create_app",
    "hash_token",
    "new_token",
    "outcome_id",
    "serve",
]
