"""The batch path (``apply_batch`` on rows) gives exactly the per-event path's outputs.

Random histories mix everything the consensus and labels folds have a rule for: votes before
their task, duplicate vote ids, second votes, unassigned annotators, wrong and retired schema
versions, unknown labels, honeypots, expert tasks, reliability updates (one-coin and
Dawid-Skene) between votes, adjudications answering requests (before and after them). Each
history goes once through ``apply`` (events in, events out) and once through ``apply_batch``
in random chunks (rows decoded by ``decode_rows`` from the encoded events in, rows out); the
outputs, materialised, must be equal event for event (ids included; only ``recorded_at``,
the wall clock of the run, differs).
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from labeltrail.events import LogPosition
from labeltrail.events.base import Event
from labeltrail.events.columnar import decode_rows
from labeltrail.events.ids import derive_id
from labeltrail.events.models import (
    AdjudicationRecorded,
    AnnotatorReliabilityUpdated,
    LabelSchemaPublished,
    TaskCreated,
    VoteCast,
)
from labeltrail.events.serde import encode
from labeltrail.folds.base import Rejected, stable_id
from labeltrail.folds.consensus import (
    ConsensusConfig,
    ConsensusFold,
    ConsensusRow,
    RequestRow,
)
from labeltrail.folds.labels import LabelRow, LabelsFold
from labeltrail.ontology import MODERATION_CLASSES, moderation_schema_v3

T0 = dt.datetime(2024, 9, 2, 8, 0, tzinfo=dt.UTC)
CLASSES = list(MODERATION_CLASSES)


def _plain(out: object) -> object:
    """An output as comparable data: events without the run's wall clock."""
    if isinstance(out, ConsensusRow | RequestRow | LabelRow):
        out = out.to_event()
    if isinstance(out, Event):
        data = out.model_dump()
        del data["envelope"]["recorded_at"]
        return (type(out).__name__, data)
    assert isinstance(out, Rejected)
    return out


def _reliability(rng: random.Random, annotator: str) -> AnnotatorReliabilityUpdated:
    accuracy = rng.uniform(0.2, 0.99)
    fields: dict[str, Any] = {}
    method = rng.choice(["beta_gold", "dawid_skene", "adjudication"])
    if method == "dawid_skene" and rng.random() < 0.7:
        rows = []
        for truth in range(len(CLASSES)):
            row = [rng.uniform(0.01, 1.0) for _ in CLASSES]
            row[truth] += 2.0
            rows.append([x / sum(row) for x in row])
        fields = {"classes": CLASSES, "confusion": rows}
    return AnnotatorReliabilityUpdated.create(
        producer="test",
        id_parts=("rel", annotator, rng.random()),
        annotator_id=annotator,
        schema_version="v3",
        method=method,
        accuracy=accuracy,
        accuracy_lower=0.0,
        accuracy_upper=1.0,
        n_observations=10,
        **fields,
    )


def history(seed: int) -> list[Event]:
    """A random, messy consensus input: schemas, tasks, votes and reliability updates."""
    rng = random.Random(seed)
    annotators = [f"a{i}" for i in range(8)]
    tasks: list[TaskCreated] = []
    votes: list[VoteCast] = []
    for n in range(rng.randint(1, 14)):
        kind = rng.choices(["crowd", "honeypot", "expert"], [8, 2, 1])[0]
        redundancy = rng.randint(1, 4)
        chosen = rng.sample(annotators, redundancy)
        version = rng.choices(["v3", "v2", "v9"], [10, 1, 1])[0]
        comment = f"c{rng.randint(0, 9)}"
        task = TaskCreated.create(
            producer="test",
            id_parts=("task", seed, n),
            occurred_at=T0 + dt.timedelta(minutes=n),
            task_id=f"t{n}",
            comment_id=comment,
            schema_version=version,
            kind=kind,
            reason="honeypot" if kind == "honeypot" else "random_audit",
            questions=[],
            redundancy=redundancy,
            annotators=chosen,
            expected_label=rng.choice(CLASSES) if kind == "honeypot" else None,
        )
        tasks.append(task)
        voters = chosen + ([rng.choice(annotators)] if rng.random() < 0.2 else [])
        for j, annotator in enumerate(voters):
            label = rng.choice(CLASSES[:2]) if rng.random() < 0.8 else rng.choice(CLASSES)
            if rng.random() < 0.03:
                label = "spam"
            vote = VoteCast.create(
                producer="test",
                id_parts=("vote", seed, n, j),
                occurred_at=T0 + dt.timedelta(minutes=n, seconds=rng.randint(0, 3600)),
                vote_id=f"v{n}-{j}" if rng.random() > 0.05 else f"v{n}-x",
                task_id=task.task_id if rng.random() > 0.05 else "t-unknown",
                comment_id=comment,
                annotator_id=annotator,
                schema_version=version if rng.random() > 0.05 else "v2",
                label=label,
                time_spent_ms=1000,
            )
            votes.append(vote)
            if rng.random() < 0.1:
                votes.append(vote)  # a producer retry
    # Votes keep their per-task order but may overtake their task.
    events: list[Event] = [*tasks]
    for vote in votes:
        task_at = next((i for i, t in enumerate(events) if t is _task_of(tasks, vote)), 0)
        events.insert(rng.randint(max(task_at - 2, 0), len(events)), vote)
    for _ in range(rng.randint(0, 6)):
        events.insert(rng.randint(0, len(events)), _reliability(rng, rng.choice(annotators)))
    schemas: list[Event] = [moderation_schema_v3()]
    if rng.random() < 0.3:
        schemas.append(
            LabelSchemaPublished.create(
                producer="test",
                id_parts=("v4", seed),
                version="v4",
                classes=["ok", "not-ok"],
                questions=[],
                guideline_hash="h",
                supersedes="v3",
                old_label_policy=rng.choice(["discard", "relabel_subset"]),
            )
        )
    for schema in schemas:
        events.insert(rng.randint(0, len(events)), schema)
    return events


def _task_of(tasks: list[TaskCreated], vote: VoteCast) -> TaskCreated | None:
    return next((t for t in tasks if t.task_id == vote.task_id), None)


def _chunks(rng: random.Random, items: list[Any]) -> list[list[Any]]:
    out, i = [], 0
    while i < len(items):
        n = rng.randint(1, 7)
        out.append(items[i : i + n])
        i += n
    return out


def _adjudications(
    rng: random.Random, consensus_out: list[Event], seed: int
) -> list[tuple[int, Event]]:
    """Expert verdicts for some requests, each inserted at a random place (even before its
    request), plus a gold verdict and one for a request that never comes."""
    requests = [e for e in consensus_out if type(e).__name__ == "AdjudicationRequested"]
    verdicts: list[tuple[int, Event]] = []
    for n, request in enumerate([*requests, None, None]):
        if request is not None and rng.random() < 0.3:
            continue
        request_id = getattr(request, "request_id", None) or rng.choice(["gold:1", "r-never"])
        verdicts.append(
            (
                rng.randint(0, len(consensus_out)),
                AdjudicationRecorded.create(
                    producer="test",
                    id_parts=("adj", seed, n),
                    adjudication_id=f"adj{n}",
                    request_id=request_id,
                    task_id=f"x{n}",
                    comment_id=getattr(request, "comment_id", "c0"),
                    schema_version=getattr(request, "schema_version", "v3"),
                    reviewer_id="e1",
                    label=rng.choice(CLASSES),
                    confidence=0.9,
                ),
            )
        )
    return verdicts


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), method=st.sampled_from(["reliability-weighted", "mv"]))
def test_batch_folds_equal_per_event_folds(seed: int, method: str) -> None:
    rng = random.Random(seed)
    events = history(seed)
    config = ConsensusConfig(method=method)

    per_event = ConsensusFold(config)
    expected: list[Any] = []
    for offset, event in enumerate(events):
        expected += per_event.apply(event, LogPosition(topic="in", partition=0, offset=offset))
    expected_drain = per_event.drain()

    batch = ConsensusFold(config)
    rows: list[Any] = []
    early: dict[int, object] = {}
    for chunk in _chunks(rng, events):
        decoded = decode_rows([encode(e) for e in chunk])
        assert not decoded.errors
        got_rows = batch.apply_batch(decoded.rows)
        if rng.random() < 0.5:
            # rows whose lazily derived fields are read now, before the later updates of
            # their items (the others are read once every input has been folded)
            early.update((len(rows) + i, _plain(o)) for i, o in enumerate(got_rows))
        rows += got_rows
    assert [_plain(o) for o in rows] == [_plain(o) for o in expected]
    assert all(_plain(rows[i]) == plain for i, plain in early.items())
    assert batch.drain() == expected_drain
    assert batch.duplicates == per_event.duplicates

    # labels: the consensus outputs, with expert verdicts among them, through both paths
    consensus_events = [o for o in expected if isinstance(o, Event)]
    consensus_rows = [o for o in rows if not isinstance(o, Rejected)]
    verdicts = _adjudications(rng, consensus_events, seed)
    feed_events: list[Any] = list(consensus_events)
    feed_rows: list[Any] = list(consensus_rows)
    for at, verdict in sorted(verdicts, key=lambda v: -v[0]):
        feed_events.insert(at, verdict)
        feed_rows.insert(at, verdict)

    labels = LabelsFold()
    expected_labels: list[Any] = []
    for offset, event in enumerate(feed_events):
        position = LogPosition(topic="consensus", partition=2, offset=100 + offset)
        expected_labels += labels.apply(event, position)
    batch_labels = LabelsFold()
    got: list[Any] = []
    start = 0
    for chunk in _chunks(rng, feed_rows):
        got += batch_labels.apply_batch(chunk, "consensus", 2, 100 + start)
        start += len(chunk)
    assert [_plain(o) for o in got] == [_plain(o) for o in expected_labels]


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), method=st.sampled_from(["reliability-weighted", "mv"]))
def test_running_item_state_equals_a_recomputation(seed: int, method: str) -> None:
    """An update extends its item's previous one (vote ids, annotators, time, pair count,
    weights, log-posterior); a fold that forgets that state before every input recomputes
    each update from all the item's votes, and must give the same outputs."""
    config = ConsensusConfig(method=method)
    running, recomputing = ConsensusFold(config), ConsensusFold(config)
    for offset, event in enumerate(history(seed)):
        position = LogPosition(topic="in", partition=0, offset=offset)
        recomputing._running.clear()
        expected = recomputing.apply(event, position)
        assert [_plain(o) for o in running.apply(event, position)] == [_plain(o) for o in expected]


def test_random_histories_exercise_every_rule() -> None:
    """The generator above is not vacuous: across seeds it hits each rule."""
    reasons: list[str] = []
    kinds: set[str] = set()
    duplicates = 0
    for seed in range(60):
        fold = ConsensusFold()
        for event in history(seed):
            for out in fold.apply(event, LogPosition(topic="in", partition=0, offset=0)):
                if isinstance(out, Rejected):
                    reasons.append(out.reason)
                else:
                    kinds.add(type(out).__name__)
        reasons += [out.reason for out in fold.drain() if isinstance(out, Rejected)]
        duplicates += fold.duplicates
    text = " | ".join(reasons)
    for rule in (
        "is not assigned",
        "for unknown task",
        "is not a class",
        "already voted",
        "vote under schema",
        "is retired",
        "go through adjudication",
        "unpublished schema",
    ):
        assert rule in text, rule
    assert duplicates > 0
    assert {"ConsensusUpdated", "AdjudicationRequested", "HoneypotScored"} <= kinds


@settings(max_examples=200, deadline=None)
@given(
    kind=st.text(min_size=1, max_size=20),
    parts=st.lists(
        st.one_of(
            st.text(max_size=12),
            st.integers(),
            st.lists(st.text(max_size=6), max_size=4),
            st.tuples(st.text(max_size=4), st.integers()),
        ),
        max_size=5,
    ),
)
def test_stable_id_is_derive_id(kind: str, parts: list[object]) -> None:
    assert stable_id(kind, *parts) == derive_id(kind, *parts)
