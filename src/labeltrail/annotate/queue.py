"""Per-annotator task queues, rebuilt from the log.

Pure state, no Kafka: the feed offers every ``TaskAssigned`` it reads (keyed by annotator) and
every outcome it reads (``VoteCast`` or ``AdjudicationRecorded``); an assignment whose outcome
is already on the log is never served again. Outcome ids are derived from the assignment id,
so the frontend knows, before anything is produced, which id a task's answer will carry, and a
resubmission after a crash carries the same id and deduplicates downstream.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from labeltrail.events.ids import derive_id
from labeltrail.events.models import LabelSchemaPublished, TaskAssigned
from labeltrail.ontology.schema import moderation_schema_v3

__all__ = ["Claim", "TaskQueue", "outcome_id"]


def outcome_id(task: TaskAssigned) -> str:
    """The vote id (crowd) or adjudication id (expert) an assignment's answer carries."""
    kind = "adjudication" if task.pool == "expert" else "vote"
    return derive_id(kind, task.assignment_id)


@dataclass(frozen=True)
class Claim:
    """A task held by one in-flight submission.

    ``elapsed_ms``: from when this process first served the task to its annotator to the
    claim; None if it never served it (the submission is then refused, see ``app.py``).
    """

    task: TaskAssigned
    elapsed_ms: int | None


class TaskQueue:
    """Thread-safe: the feed thread writes, request handlers read and claim."""

    def __init__(
        self,
        schemas: list[LabelSchemaPublished] | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._pending: dict[str, dict[str, TaskAssigned]] = {}
        self._owner: dict[str, tuple[str, str]] = {}  # outcome id -> (annotator, assignment)
        self._done: set[str] = set()
        self._claimed: set[str] = set()
        self._served_at: dict[str, float] = {}
        self._schemas: dict[str, LabelSchemaPublished] = {}
        self._suspended: dict[str, str] = {}  # annotator -> reason, until reinstated
        for schema in schemas if schemas is not None else [moderation_schema_v3()]:
            self.add_schema(schema)

    # writes from the log ------------------------------------------------------------------

    def add_schema(self, schema: LabelSchemaPublished) -> None:
        with self._lock:
            self._schemas[schema.version] = schema

    def suspend(self, annotator: str, reason: str) -> None:
        """``AnnotatorSuspended``: serve the annotator nothing and take no answer from them."""
        with self._lock:
            self._suspended[annotator] = reason

    def reinstate(self, annotator: str) -> None:
        """``AnnotatorReinstated``: the annotator is served again."""
        with self._lock:
            self._suspended.pop(annotator, None)

    def offer(self, task: TaskAssigned) -> bool:
        """Queue a task unless it was answered already; True if it is (now) pending."""
        oid = outcome_id(task)
        with self._lock:
            if oid in self._done:
                return False
            self._pending.setdefault(task.annotator_id, {})[task.assignment_id] = task
            self._owner[oid] = (task.annotator_id, task.assignment_id)
            return True

    def record_outcome(self, oid: str) -> None:
        """An answer is on the log (or was just produced): never serve its task again."""
        with self._lock:
            self._done.add(oid)
            owner = self._owner.pop(oid, None)
            if owner is not None:
                annotator, assignment = owner
                self._pending.get(annotator, {}).pop(assignment, None)
                self._claimed.discard(assignment)
                self._served_at.pop(assignment, None)

    # reads and claims from requests -------------------------------------------------------

    def schema(self, version: str) -> LabelSchemaPublished | None:
        with self._lock:
            return self._schemas.get(version)

    def suspension(self, annotator: str) -> str | None:
        """Why the annotator is suspended, or None if they are not."""
        with self._lock:
            return self._suspended.get(annotator)

    def next_for(self, annotator: str) -> TaskAssigned | None:
        """The annotator's oldest unanswered, unclaimed task, marked as served."""
        with self._lock:
            for assignment, task in self._pending.get(annotator, {}).items():
                if assignment not in self._claimed:
                    self._served_at.setdefault(assignment, self._clock())
                    return task
        return None

    def get(self, annotator: str, assignment_id: str) -> TaskAssigned | None:
        """The task if it is this annotator's and still pending; None otherwise (no leak)."""
        with self._lock:
            task = self._pending.get(annotator, {}).get(assignment_id)
            if task is not None:
                self._served_at.setdefault(assignment_id, self._clock())
            return task

    def claim(self, annotator: str, assignment_id: str) -> Claim | None:
        """Hold a task for one submission; None if it is not theirs, done or already held."""
        with self._lock:
            task = self._pending.get(annotator, {}).get(assignment_id)
            if task is None or assignment_id in self._claimed:
                return None
            self._claimed.add(assignment_id)
            served_at = self._served_at.get(assignment_id)
            if served_at is None:
                return Claim(task, None)
            return Claim(task, max(0, int((self._clock() - served_at) * 1000)))

    def release(self, assignment_id: str) -> None:
        """Give a claimed task back (its answer could not be produced)."""
        with self._lock:
            self._claimed.discard(assignment_id)

    def is_pending(self, annotator: str, assignment_id: str) -> bool:
        with self._lock:
            return assignment_id in self._pending.get(annotator, {})

    def depth(self, annotator: str | None = None) -> int:
        """Unanswered tasks of one annotator, or of all."""
        with self._lock:
            if annotator is not None:
                return len(self._pending.get(annotator, {}))
            return sum(len(q) for q in self._pending.values())
