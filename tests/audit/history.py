"""Histories for audit tests: the simulated platform run through the real folds in memory,
plus the events later stages emit (reliability updates, IAA windows, models), and a tiny
hand-made blind-spot scenario."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from typing import Literal

from clickhouse_connect.driver.client import Client

from labeltrail.clickhouse.writer import BatchWriter, LogRecord
from labeltrail.events import (
    AdjudicationRecorded,
    AnnotatorReliabilityUpdated,
    CommentPosted,
    Event,
    IaaWindowClosed,
    LabelCommitted,
    LogPosition,
    TaskAssigned,
    TaskCreated,
    VoteCast,
    encode,
)
from labeltrail.folds.base import Output
from labeltrail.folds.iaa import IaaFold
from labeltrail.sim import Platform, PlatformConfig
from tests.folds.helpers import run_in_memory, suffix_topic

T0 = dt.datetime(2024, 9, 2, 8, 0, tzinfo=dt.UTC)


def simulated(n_comments: int = 80, seed: int = 5) -> list[Event]:
    """Every event of a simulated run, in the order the in-memory log holds them."""
    replay = run_in_memory(Platform(PlatformConfig.sized(n_comments, seed=seed)))
    return [event for events in replay.log.values() for event in events]


def reliability_updates(events: Sequence[Event]) -> list[Event]:
    """A weekly reliability update for every crowd annotator who voted on an adjudicated item,
    caused by the adjudication (as the streaming reliability stage would emit)."""
    adjudicated = {
        e.comment_id: e
        for e in events
        if isinstance(e, AdjudicationRecorded) and not e.request_id.startswith("gold:")
    }
    out: list[Event] = []
    seen: set[str] = set()
    for e in events:
        if isinstance(e, VoteCast) and e.comment_id in adjudicated and e.annotator_id not in seen:
            seen.add(e.annotator_id)
            adj = adjudicated[e.comment_id]
            agrees = e.label == adj.label
            out.append(
                AnnotatorReliabilityUpdated.create(
                    producer="tests.reliability",
                    id_parts=("rel", e.annotator_id),
                    occurred_at=adj.envelope.occurred_at + dt.timedelta(days=6),
                    causation_id=adj.event_id,
                    annotator_id=e.annotator_id,
                    schema_version="v3",
                    method="adjudication",
                    accuracy=0.76 if agrees else 0.74,
                    accuracy_lower=0.6,
                    accuracy_upper=0.85,
                    previous_accuracy=0.78 if not agrees else 0.71,
                    n_observations=12,
                    window_start=T0,
                    window_end=T0 + dt.timedelta(days=7),
                )
            )
    return out


def blind_spot_scenario(n_items: int = 6) -> list[Event]:
    """A slice ('coded') the crowd agrees on unanimously and gets wrong against gold."""
    out: list[Event] = []
    for i in range(n_items):
        cid = f"bs-{i:02d}"
        at = T0 + dt.timedelta(hours=i)
        out.append(
            CommentPosted.create(
                producer="tests",
                id_parts=("bs", cid),
                occurred_at=at,
                comment_id=cid,
                video_id="v-1",
                author_hash="h",
                text="we all know what your kind is good for",
                posted_at=at,
                source="pool",
                attributes={"slice": "coded"},
            )
        )
        out.append(
            AdjudicationRecorded.create(
                producer="tests",
                id_parts=("bs-gold", cid),
                occurred_at=at,
                adjudication_id=f"gold-{cid}",
                request_id="gold:tests",
                task_id=f"gold:{cid}",
                comment_id=cid,
                schema_version="v3",
                reviewer_id="e-01",
                label="harassment",
                confidence=1.0,
            )
        )
        task_id = f"bs-task-{i}"
        task = TaskCreated.create(
            producer="tests",
            id_parts=("bs-task", cid),
            occurred_at=at,
            task_id=task_id,
            comment_id=cid,
            schema_version="v3",
            kind="crowd",
            reason="random_audit",
            questions=["q1"],
            redundancy=3,
        )
        out.append(task)
        if i == 0:
            honeypot = TaskCreated.create(
                producer="tests",
                id_parts=("bs-honeypot", cid),
                occurred_at=at,
                causation_id=task.event_id,
                task_id="bs-honeypot",
                comment_id="bs-01",
                schema_version="v3",
                kind="honeypot",
                reason="honeypot",
                questions=["q1"],
                redundancy=1,
                expected_label="harassment",
            )
            out += [honeypot, _assigned(honeypot, "annotator_a")]
        for a in ("annotator_a", "annotator_b", "annotator_c"):
            out.append(_assigned(task, a))
            out.append(
                VoteCast.create(
                    producer="tests",
                    id_parts=("bs-vote", cid, a),
                    occurred_at=at + dt.timedelta(minutes=5),
                    vote_id=f"bs-vote-{cid}-{a}",
                    task_id=task_id,
                    comment_id=cid,
                    annotator_id=a,
                    schema_version="v3",
                    label="non-toxic",
                    answers={"q1": "no"},
                    confidence=0.9,
                    time_spent_ms=3000,
                )
            )
    return out


def _assigned(task: TaskCreated, annotator: str) -> TaskAssigned:
    return TaskAssigned.create(
        producer="tests",
        id_parts=("bs-assign", task.task_id, annotator),
        occurred_at=task.envelope.occurred_at,
        task_id=task.task_id,
        assignment_id=f"{task.task_id}-{annotator}",
        comment_id=task.comment_id,
        annotator_id=annotator,
        pool="crowd",
        schema_version="v3",
        questions=task.questions,
        text="we all know what your kind is good for",
        cost_usd=0.04,
    )


def _window_closed(
    kind: Literal["day", "week"], start: dt.datetime, metric: str, agreement: float
) -> IaaWindowClosed:
    """A flagged window of the 'coded' slice, as the iaa stage emits it."""
    length = dt.timedelta(days=1 if kind == "day" else 7)
    return IaaWindowClosed.create(
        producer="tests.iaa",
        id_parts=("iaa", "coded") if kind == "day" else ("iaa-week", "coded", metric),
        occurred_at=start + length + (dt.timedelta(days=1) if kind == "week" else dt.timedelta()),
        window=kind,
        window_start=start,
        window_end=start + length,
        schema_version="v3",
        question="label",
        slice="coded",
        metric=metric,
        agreement=agreement,
        gold_accuracy=0.1,
        n_items=6,
        n_gold_items=6,
        blind_spot=True,
    )


def iaa_window() -> IaaWindowClosed:
    return _window_closed("day", T0, "krippendorff_alpha_nominal", 0.95)


def iaa_blind_spot_windows() -> list[Event]:
    """What the iaa stage emits for a blind spot: the slice flagged on pairwise agreement, and
    its alpha row flagged too, near zero (the slice's items share a class)."""
    monday = dt.datetime(2024, 9, 2, tzinfo=dt.UTC)  # the week window
    return [
        _window_closed("week", monday, "krippendorff_alpha_nominal", -0.08),
        _window_closed("week", monday, "pairwise_agreement", 0.95),
    ]


def project(client: Client, events: Sequence[Event], *, consumer: str = "tests") -> None:
    """Write events through the projector's batch writer, offsets counted per topic."""
    offsets: dict[str, int] = defaultdict(int)
    records = []
    for event in events:
        topic = "t." + suffix_topic(event)
        records.append(LogRecord(topic, 0, offsets[topic], encode(event)))
        offsets[topic] += 1
    BatchWriter(client, consumer).project(records)


def adjudicated_comment(events: Sequence[Event]) -> str:
    """A comment whose label came from adjudication after crowd votes."""
    for e in events:
        if isinstance(e, LabelCommitted) and e.route == "adjudication" and e.vote_ids:
            return e.comment_id
    raise AssertionError("no adjudicated comment in the history")


def iaa_stream(events: Sequence[Event]) -> list[Event]:
    """The IaaWindowClosed events the streaming iaa stage emits for a history: day and week
    windows, each slice with two metrics (alpha and pairwise agreement)."""
    fold = IaaFold()
    out: list[Output] = []
    for i, event in enumerate(events):
        out += fold.apply(event, LogPosition.at("t.history", 0, i))
    out += fold.drain()
    return [e for e in out if isinstance(e, IaaWindowClosed)]
