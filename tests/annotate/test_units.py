"""Pure parts of the frontend: tokens, rate limits, queues and submission validation."""

from __future__ import annotations

import pytest

from labeltrail.annotate.auth import TokenStore, hash_token, parse_credential
from labeltrail.annotate.queue import TaskQueue, outcome_id
from labeltrail.annotate.ratelimit import RateLimiter
from labeltrail.annotate.validate import SubmissionRejected, build_outcome
from labeltrail.events.models import AdjudicationRecorded, VoteCast
from labeltrail.exceptions import ConfigurationError
from labeltrail.ontology.schema import moderation_schema_v3

from .helpers import TOKENS, make_task, token_store

SCHEMA = moderation_schema_v3()


def test_token_store_keeps_hashes_and_checks() -> None:
    store = token_store()
    assert store.check("a47", TOKENS["a47"])
    assert not store.check("a47", TOKENS["b12"])
    assert not store.check("nobody", TOKENS["a47"])
    assert store.check_credential(f"b12:{TOKENS['b12']}") == "b12"
    assert store.check_credential(f"a47:{TOKENS['b12']}") is None
    assert store.check_credential("garbage") is None
    assert TOKENS["a47"] not in repr(store.__dict__)


def test_token_file_format_and_errors() -> None:
    store = TokenStore.parse(["# comment", f"a47 {hash_token('x')}", f"b12={hash_token('y')}"])
    assert len(store) == 2 and store.check("b12", "y")
    with pytest.raises(ConfigurationError):
        TokenStore.parse(["a47 plaintext-token"])
    with pytest.raises(ConfigurationError):
        TokenStore.parse([f"bad id {hash_token('x')}"])


def test_parse_credential() -> None:
    assert parse_credential("e-04:abc") == ("e-04", "abc")
    assert parse_credential("<script>:abc") is None
    assert parse_credential("a47:") is None


def test_rate_limiter_bucket() -> None:
    now = [0.0]
    limiter = RateLimiter(rate=1.0, burst=2, clock=lambda: now[0])
    assert limiter.take("a") == 0.0
    assert limiter.take("a") == 0.0
    assert limiter.take("a") == pytest.approx(1.0)
    assert limiter.take("b") == 0.0  # buckets are per key
    now[0] = 1.0
    assert limiter.take("a") == 0.0


def test_queue_serves_own_tasks_and_skips_answered() -> None:
    queue = TaskQueue()
    t1, t2, other = make_task("a47", 1), make_task("a47", 2), make_task("b12", 3)
    queue.record_outcome(outcome_id(t2))  # already voted on, seen on the log before the task
    for task in (t1, t2, other):
        queue.offer(task)
    assert queue.next_for("a47") == t1
    assert queue.get("a47", other.assignment_id) is None
    assert queue.claim("a47", other.assignment_id) is None
    claim = queue.claim("a47", t1.assignment_id)
    assert claim is not None and claim.task == t1
    assert queue.claim("a47", t1.assignment_id) is None  # one submission at a time
    assert queue.next_for("a47") is None  # t2 answered, t1 claimed
    queue.release(t1.assignment_id)
    queue.record_outcome(outcome_id(t1))
    assert queue.depth("a47") == 0 and queue.depth() == 1
    queue.offer(t1)  # a re-delivered assignment stays answered
    assert queue.depth("a47") == 0


def test_vote_from_confirmed_draft() -> None:
    task = make_task("a47", 1, prelabel="harassment", confidence=0.41)
    vote = build_outcome(
        task,
        SCHEMA,
        {"label": "harassment", "time_ms": "90", "answer.q1_slur": "no"},
        vote_or_adjudication_id=outcome_id(task),
        server_elapsed_ms=700,
    )
    assert isinstance(vote, VoteCast)
    assert vote.vote_id == outcome_id(task) and vote.prelabel_shown
    assert vote.time_spent_ms == 700  # the server's measure; the client's figure is ignored
    assert vote.answers == {"q1_slur": "no"} and vote.annotator_id == "a47"


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"label": "spam"}, "label"),
        ({}, "label"),
        ({"label": "mild", "answer.q9_forged": "yes"}, "answer.q9_forged"),
        ({"label": "mild", "answer.q1_slur": "maybe"}, "answer.q1_slur"),
        ({"label": "mild", "annotator_id": "b12"}, "annotator_id"),
        ({"label": "mild", "confidence": "1.5"}, "confidence"),
        ({"label": "mild", "confidence": "nan"}, "confidence"),
    ],
)
def test_forged_submissions_are_rejected(form: dict[str, str], field: str) -> None:
    task = make_task("a47", 1)
    with pytest.raises(SubmissionRejected) as info:
        build_outcome(task, SCHEMA, form, vote_or_adjudication_id="v", server_elapsed_ms=0)
    assert info.value.field == field


def test_expert_adjudication() -> None:
    task = make_task("e-04", 1, pool="expert", context=["parent"], request_id="r1")
    adj = build_outcome(
        task,
        SCHEMA,
        {"label": "harassment", "confidence": "0.95", "note": "dog whistle"},
        vote_or_adjudication_id=outcome_id(task),
        server_elapsed_ms=0,
    )
    assert isinstance(adj, AdjudicationRecorded)
    assert adj.reviewer_id == "e-04" and adj.request_id == "r1" and adj.context_seen == ["parent"]
    no_request = make_task("e-04", 2, pool="expert")
    with pytest.raises(SubmissionRejected):
        build_outcome(
            no_request,
            SCHEMA,
            {"label": "mild", "confidence": "0.9"},
            vote_or_adjudication_id="x",
            server_elapsed_ms=0,
        )
