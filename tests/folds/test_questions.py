"""QuestionsFold: per-question consensus with its own agreement, and the needs-context route."""

from __future__ import annotations

import datetime as dt

from labeltrail.events import LogPosition
from labeltrail.events.base import Event
from labeltrail.events.models import (
    AdjudicationRequested,
    IaaWindowClosed,
    QuestionLabelCommitted,
    TaskAssigned,
    TaskCreated,
    VoteCast,
)
from labeltrail.folds.base import Output, Rejected
from labeltrail.folds.consensus import ConsensusFold
from labeltrail.folds.iaa import IaaFold
from labeltrail.folds.questions import NEEDS_CONTEXT, QuestionsConfig, QuestionsFold
from labeltrail.ontology import V3_QUESTIONS, moderation_schema_v3
from labeltrail.sim import Platform, PlatformConfig
from labeltrail.sim.platform import CODED
from tests.folds.helpers import run_in_memory

POS = LogPosition(topic="x", partition=0, offset=0)
T0 = dt.datetime(2024, 9, 2, 8, 0, tzinfo=dt.UTC)
CROWD = ("a1", "a2", "a3")


def task(cid: str) -> TaskCreated:
    return TaskCreated.create(
        producer="t",
        id_parts=("task", cid),
        occurred_at=T0,
        task_id=f"t-{cid}",
        comment_id=cid,
        schema_version="v3",
        kind="crowd",
        reason="low_confidence",
        questions=[q.question_id for q in V3_QUESTIONS],
        redundancy=3,
        annotators=list(CROWD),
    )


def vote(cid: str, annotator: str, label: str, answers: dict[str, str]) -> VoteCast:
    return VoteCast.create(
        producer="t",
        id_parts=("v", cid, annotator),
        occurred_at=T0 + dt.timedelta(minutes=CROWD.index(annotator) + 1),
        vote_id=f"v-{cid}-{annotator}",
        task_id=f"t-{cid}",
        comment_id=cid,
        annotator_id=annotator,
        schema_version="v3",
        label=label,
        answers=answers,
        time_spent_ms=3000,
    )


def item(cid: str, context: tuple[str, str, str]) -> list[Event]:
    """Three unanimous 'harassment' votes; a1 and a2 say it targets a group, a3 not; the
    needs-context answers are ``context``; nobody answers q3 (a question the task asked)."""
    group = ("yes", "yes", "no")
    return [
        task(cid),
        *[
            vote(
                cid,
                a,
                "harassment",
                {"q1_slur": "no", "q2_targets_group": g, "q4_needs_context": c},
            )
            for a, g, c in zip(CROWD, group, context, strict=True)
        ],
    ]


def run(events: list[Event], fold: QuestionsFold | None = None) -> list[Output]:
    """The events through the consensus fold, and its updates with the votes through ours."""
    consensus, questions = ConsensusFold(), fold or QuestionsFold()
    out: list[Output] = []
    for event in [moderation_schema_v3(), *events]:
        out += questions.apply(event, POS)
        for made in consensus.apply(event, POS):
            assert isinstance(made, Event), made
            out += questions.apply(made, POS)
    return out


def test_each_question_is_committed_with_its_own_agreement() -> None:
    out = run(item("c-1", ("no", "no", "no")))
    labels = {o.question_id: o for o in out if isinstance(o, QuestionLabelCommitted)}
    # q3 was not answered by any vote: nothing to commit for it.
    assert sorted(labels) == ["q1_slur", "q2_targets_group", "q4_needs_context"]
    group = labels["q2_targets_group"]
    assert group.answer == "yes" and group.answers == ["yes", "no"]
    assert group.distribution == [2 / 3, 1 / 3]
    assert group.agreement == 2 / 6  # one agreeing pair of three, as ordered pairs
    assert labels["q1_slur"].answer == "no" and labels["q1_slur"].agreement == 1.0
    assert group.vote_ids == [f"v-c-1-{a}" for a in CROWD]
    assert group.annotator_ids == list(CROWD)
    assert not [o for o in out if isinstance(o, AdjudicationRequested)]
    # Ids are functions of the item, the question and the votes: a replay makes the same.
    again = [o for o in run(item("c-1", ("no", "no", "no"))) if isinstance(o, Event)]
    assert [e.event_id for e in again] == [o.event_id for o in out if isinstance(o, Event)]


def test_a_needs_context_majority_routes_the_item_to_an_expert() -> None:
    out = run(item("c-2", ("yes", "yes", "no")))
    requests = [o for o in out if isinstance(o, AdjudicationRequested)]
    assert len(requests) == 1
    request = requests[0]
    assert request.reason == NEEDS_CONTEXT and request.comment_id == "c-2"
    assert request.vote_ids == [f"v-c-2-{a}" for a in CROWD]
    context = next(
        o for o in out if isinstance(o, QuestionLabelCommitted) and o.question_id.startswith("q4")
    )
    assert request.envelope.causation_id == context.event_id
    # A minority is not enough, nor is the question when routing is off.
    assert not [
        o for o in run(item("c-3", ("yes", "no", "no"))) if isinstance(o, AdjudicationRequested)
    ]
    off = QuestionsFold(QuestionsConfig(needs_context_question=None))
    assert not [
        o
        for o in run(item("c-2", ("yes", "yes", "yes")), off)
        if isinstance(o, AdjudicationRequested)
    ]


def test_an_update_waits_for_its_votes_and_is_committed_once() -> None:
    events = item("c-4", ("no", "no", "no"))
    consensus, questions = ConsensusFold(), QuestionsFold()
    made: list[Event] = []
    for event in [moderation_schema_v3(), *events]:
        made += [e for e in consensus.apply(event, POS) if isinstance(e, Event)]
    complete = made[-1]
    assert questions.apply(complete, POS) == []  # neither schema nor votes read yet
    assert questions.apply(moderation_schema_v3(), POS) == []
    out: list[Output] = []
    for event in events[1:]:
        out += questions.apply(event, POS)
    assert len([o for o in out if isinstance(o, QuestionLabelCommitted)]) == 3
    assert questions.apply(complete, POS) == []  # redelivered: nothing new
    # An update whose votes never come is rejected when the input is drained.
    lone = QuestionsFold()
    lone.apply(moderation_schema_v3(), POS)
    lone.apply(complete, POS)
    (rejected,) = lone.drain()
    assert isinstance(rejected, Rejected) and "v-c-4-a1" in rejected.reason


def test_the_simulated_platform_sends_coded_items_to_experts_with_their_thread() -> None:
    platform = Platform(PlatformConfig.sized(150, seed=3))
    replay = run_in_memory(platform, [QuestionsFold(), IaaFold()])
    labels = [e for e in replay.log["questions"] if isinstance(e, QuestionLabelCommitted)]
    assert {e.question_id for e in labels} == {q.question_id for q in V3_QUESTIONS}
    requests = [
        e
        for e in replay.log["consensus"]
        if isinstance(e, AdjudicationRequested) and e.reason == NEEDS_CONTEXT
    ]
    coded = {c for c, s in platform.slices.items() if s == CODED}
    assert requests and {r.comment_id for r in requests} <= coded
    # Tasking made an expert task for each, with the comment's thread as its context.
    expert = {
        e.comment_id: e
        for e in replay.log["tasks.expert"]
        if isinstance(e, TaskAssigned) and e.request_id in {r.request_id for r in requests}
    }
    assert set(expert) == {r.comment_id for r in requests}
    threaded = [e for e in expert.values() if e.context]
    assert threaded, "coded comments answer a thread: the expert sees it"
    # Agreement per question: the IAA windows cover every question of the schema.
    windows = {e.question for e in replay.log["iaa"] if isinstance(e, IaaWindowClosed)}
    assert windows >= {"label", *(q.question_id for q in V3_QUESTIONS)}
