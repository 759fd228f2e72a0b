"""``folds.relabel``: the committed labels recomputed under another method, without a broker."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import numpy as np
import pytest

from labeltrail.events.base import LogPosition
from labeltrail.events.columnar import LabelCommittedRow, VoteRow
from labeltrail.events.models import (
    ConsensusUpdated,
    LabelCommitted,
    LabelSchemaPublished,
    TaskCreated,
    VoteCast,
)
from labeltrail.exceptions import QualityError
from labeltrail.folds.consensus import ConsensusConfig, ConsensusFold
from labeltrail.folds.consensus_weights import PRIOR, reproduce_posterior
from labeltrail.folds.labels import LabelsFold
from labeltrail.folds.relabel import (
    RELIABILITY_WEIGHTED,
    labels_of_record,
    relabel,
    run_id_for,
    run_labels,
)
from labeltrail.ontology import moderation_schema_v3
from labeltrail.ontology.schema import MODERATION_CLASSES
from labeltrail.quality import DawidSkene, Votes
from labeltrail.sim import Platform, PlatformConfig
from tests.folds.helpers import run_in_memory
from tests.folds.test_consensus_reproduce import _estimate
from tests.folds.test_folds import _vote as cast

T0 = dt.datetime(2024, 9, 2, 8, 0, tzinfo=dt.UTC)
CLASSES = list(MODERATION_CLASSES)


def _label(
    comment: str,
    label: str,
    votes: list[str],
    *,
    route: str = "consensus",
    minutes: int = 0,
    run_id: str | None = None,
) -> LabelCommitted:
    return LabelCommitted.create(
        producer="tests",
        id_parts=(comment, label, route, minutes, run_id),
        occurred_at=T0,
        recorded_at=T0 + dt.timedelta(minutes=minutes),
        label_id=f"l-{comment}-{label}-{minutes}",
        comment_id=comment,
        schema_version="v3",
        label=label,
        classes=CLASSES,
        distribution=[1.0 if c == label else 0.0 for c in CLASSES],
        confidence=1.0,
        route=route,
        method="mv" if route == "consensus" else "expert-adjudication",
        vote_ids=votes,
        annotator_ids=[],
        run_id=run_id,
    )


def _vote(vote_id: str, comment: str, annotator: str, label: str) -> VoteRow:
    return VoteRow(vote_id, f"t-{comment}", comment, annotator, "v3", label, vote_id, 0)


def _at(i: int) -> LogPosition:
    return LogPosition(topic="x.labels", partition=0, offset=i)


def test_the_label_of_record_is_the_latest_live_one() -> None:
    first = _label("c1", "mild", ["v1"], minutes=1)
    later = _label("c1", "hate", ["v1"], minutes=2)
    run = _label("c1", "threats", ["v1"], minutes=3, run_id="r")
    record = labels_of_record([(first, _at(0)), (later, _at(1)), (run, _at(2))])
    assert record == {("c1", "v3"): (LabelCommittedRow.of(later), _at(1))}


def test_ties_go_to_the_first_class_in_schema_order_not_alphabetical() -> None:
    """'non-toxic' comes before 'mild' in the schema, after it in sorted order."""
    record = labels_of_record([(_label("c1", "non-toxic", ["v1", "v2"]), _at(0))])
    votes = [_vote("v1", "c1", "a", "mild"), _vote("v2", "c1", "b", "non-toxic")]
    run = relabel(record, votes, {"v3": CLASSES}, "mv")
    (item,) = run.items
    assert item.new_label == "non-toxic" and not item.changed
    assert item.new_posterior == [0.5, 0.5, 0.0, 0.0, 0.0]
    assert item.votes == [("a", "mild"), ("b", "non-toxic")]


def test_verdicts_are_carried_and_only_crowd_labels_change() -> None:
    record = labels_of_record(
        [
            (_label("c1", "mild", ["v1", "v2", "v3"]), _at(0)),
            (_label("c2", "hate", ["v4", "v5", "v6"], route="adjudication"), _at(1)),
        ]
    )
    votes = [
        _vote("v1", "c1", "a", "hate"),
        _vote("v2", "c1", "b", "hate"),
        _vote("v3", "c1", "c", "mild"),
        _vote("v4", "c2", "a", "mild"),
        _vote("v5", "c2", "b", "mild"),
        _vote("v6", "c2", "c", "hate"),
        _vote("v1", "c1", "a", "threats"),  # a second copy of a vote id: the first counts
    ]
    run = relabel(record, votes, {"v3": CLASSES}, "mv")
    by_comment = {i.comment_id: i for i in run.items}
    assert by_comment["c1"].new_label == "hate" and by_comment["c1"].changed
    assert by_comment["c2"].new_label == "hate" and not by_comment["c2"].changed
    assert by_comment["c2"].crowd_label == "mild"
    summary = run.summary()
    assert summary["changed"] == 1 and summary["votes"] == 6
    assert summary["by_class"] == {"mild->hate": 1}
    assert summary["by_route"] == {
        "adjudication": {"items": 1, "changed": 0},
        "consensus": {"items": 1, "changed": 1},
    }
    assert (summary["adjudicated"], summary["agrees_with_expert"]) == (1, 0)

    run_id = run_id_for("mv", run.params, "", [_at(9)])
    assert run_id == run_id_for("mv", dict(run.params), "", [_at(9)])
    assert run_id != run_id_for("mv", run.params, "", [_at(10)])
    events = {e.comment_id: e for e in run_labels(run, run_id)}
    assert {e.run_id for e in events.values()} == {run_id}
    assert events["c1"].label == "hate" and events["c1"].method == "mv"
    assert events["c1"].source_positions == [_at(0)]
    assert events["c1"].envelope.causation_id == record[("c1", "v3")][0].event_id
    assert events["c2"].label == "hate" and events["c2"].method == "expert-adjudication"
    assert events["c2"].method_params["run"] == run_id
    assert {e.label_id for e in events.values()}.isdisjoint(
        {label.label_id for label, _ in record.values()}
    )
    again = {e.comment_id: e for e in run_labels(run, run_id)}
    assert {c: e.event_id for c, e in again.items()} == {c: e.event_id for c, e in events.items()}


@pytest.mark.parametrize(
    ("method", "params", "version", "message"),
    [
        ("nope", {}, "", "unknown method 'nope'"),
        ("ds", {"colour": "red"}, "", "takes no parameter 'colour'"),
        ("ds", {"max_iter": "x"}, "", "is not a int"),
        ("glad", {"learn_priors": "maybe"}, "", "is not a bool"),
        ("ds", {}, "v9", "schema version 'v9' has no votes"),
    ],
)
def test_bad_input_is_a_quality_error(
    method: str, params: dict[str, str], version: str, message: str
) -> None:
    record = labels_of_record([(_label("c1", "mild", ["v1"]), _at(0))])
    with pytest.raises(QualityError, match=message):
        relabel(
            record, [_vote("v1", "c1", "a", "mild")], {"v3": CLASSES}, method, params,
            schema_version=version,
        )  # fmt: skip


def test_no_vote_named_on_the_log_is_an_error() -> None:
    record = labels_of_record([(_label("c1", "mild", ["v1"]), _at(0))])
    with pytest.raises(QualityError, match="names a vote"):
        relabel(record, [], {"v3": CLASSES}, "mv")


def test_a_simulated_history_by_majority_vote() -> None:
    """The method it was committed with changes nothing; Dawid-Skene changes exactly the
    labels its own fit on the same votes gives another class, all of them split items."""
    replay = run_in_memory(
        Platform(PlatformConfig.sized(80, seed=5)), consensus="mv", threshold=0.3
    )
    events = [e for es in replay.log.values() for e in es]
    labels = [(e, _at(i)) for i, e in enumerate(events) if isinstance(e, LabelCommitted)]
    votes = [VoteRow.of(e) for e in events if isinstance(e, VoteCast)]
    classes = {e.version: list(e.classes) for e in events if isinstance(e, LabelSchemaPublished)}
    record = labels_of_record(labels)

    assert relabel(record, votes, classes, "mv").changed == []

    run = relabel(record, votes, classes, "ds")
    rows = [(c, a, lab) for c, _, a, lab in _named_votes(record, votes)]
    coded = Votes.from_long(*(np.asarray(col, dtype=object) for col in zip(*rows, strict=True)),
                            classes=classes["v3"])  # fmt: skip
    fitted = DawidSkene().fit(coded)
    expected = dict(
        zip(coded.item_ids.tolist(), coded.decode(fitted.labels_).tolist(), strict=True)
    )
    crowd = [i for i in run.items if i.route == "consensus"]
    assert run.changed
    # posteriors are rounded to 6 places as the consensus fold rounds them (ds fits in float32)
    assert all(p == round(p, 6) for i in crowd for p in i.new_posterior)
    assert all(i.new_label == expected[i.comment_id] for i in crowd)
    for item in run.changed:
        counts = Counter(lab for _, lab in item.votes)
        assert len(counts) > 1 and counts[item.old_label] > counts[item.new_label]


def _named_votes(
    record: dict[tuple[str, str], tuple[LabelCommitted, LogPosition]], votes: list[VoteRow]
) -> list[tuple[str, str, str, str]]:
    by_id = {v.vote_id: v for v in votes}
    return [
        (label.comment_id, vote_id, by_id[vote_id].annotator_id, by_id[vote_id].label)
        for label, _ in record.values()
        for vote_id in label.vote_ids
    ]


def test_reliability_weighted_reproduces_the_labels_it_committed() -> None:
    """The live consensus fold weighs each vote by the estimate it had read (a one-coin
    accuracy, a Dawid-Skene confusion matrix, or the prior); a run under
    ``reliability-weighted`` makes every crowd label again from the estimates it records:
    nothing changes, to the last digit, while majority vote changes the split items the
    weights decided."""
    fold = ConsensusFold(ConsensusConfig(agreement_threshold=0.3, method=RELIABILITY_WEIGHTED))
    labels_fold = LabelsFold()
    schema = moderation_schema_v3()
    labels_fold.apply(schema, _at(0))
    fold.apply(schema, _at(0))
    estimates = [
        _estimate("a1", 0.95),
        _estimate("a2", 0.4, confusion=True),
        _estimate("a3", 0.55),
        _estimate("a1", 0.9, confusion=True),
    ]
    rng = np.random.default_rng(3)
    votes: list[VoteCast] = []
    committed: list[tuple[LabelCommitted, LogPosition]] = []
    updates: dict[str, ConsensusUpdated] = {}
    for n in range(40):
        if n % 10 == 0:
            fold.apply(estimates[n // 10], _at(n))
        comment = f"c{n}"
        fold.apply(_task(comment), _at(n))
        for annotator in ("a1", "a2", "a3"):
            answer = CLASSES[int(rng.integers(0, 2))]
            vote = cast(
                annotator, answer, vote_id=f"v{n}{annotator}", comment_id=comment,
                task_id=f"t-{comment}",
            )  # fmt: skip
            votes.append(vote)
            for out in fold.apply(vote, _at(n)):
                if isinstance(out, ConsensusUpdated):
                    updates[out.event_id] = out
                for label in labels_fold.apply(out, _at(n)):
                    if isinstance(label, LabelCommitted):
                        committed.append((label, _at(len(committed))))
    record = labels_of_record(committed)
    by_id = {e.envelope.event_id: e for e in estimates}
    rows = [VoteRow.of(v) for v in votes]
    named = {e for label, _ in committed for e in label.method_params["estimates"].split(",")}
    assert {e.rpartition("@")[2] for e in named} >= {PRIOR, *by_id}  # every kind is used

    run = relabel(record, rows, {"v3": CLASSES}, RELIABILITY_WEIGHTED, estimates=by_id)
    summary = run.summary()
    assert summary["changed"] == 0 and summary["posterior_changed"] == 0
    assert summary["committed_methods"] == {RELIABILITY_WEIGHTED: len(committed)}
    by_vote = {v.vote_id: v for v in votes}
    for item in run.items:
        label = record[(item.comment_id, "v3")][0]
        source = updates[next(e.envelope.causation_id for e, _ in committed
                              if e.label_id == label.label_id)]  # fmt: skip
        assert item.new_posterior == reproduce_posterior(source, by_vote, by_id)

    mv = relabel(record, rows, {"v3": CLASSES}, "mv").summary()
    assert mv["changed"] > 0 and mv["posterior_changed"] == len(committed)

    with pytest.raises(QualityError, match="is not on the quality topic"):
        relabel(record, rows, {"v3": CLASSES}, RELIABILITY_WEIGHTED, estimates={})
    with pytest.raises(QualityError, match="takes no parameter 'k'"):
        relabel(record, rows, {"v3": CLASSES}, RELIABILITY_WEIGHTED, {"k": "1"})
    by_mv = labels_of_record([(_label("c1", "mild", ["v1"]), _at(0))])
    with pytest.raises(QualityError, match="records no reliability estimates"):
        relabel(by_mv, [_vote("v1", "c1", "a", "mild")], {"v3": CLASSES}, RELIABILITY_WEIGHTED)


def _task(comment: str) -> TaskCreated:
    return TaskCreated.create(
        producer="t",
        id_parts=("t", comment),
        task_id=f"t-{comment}",
        comment_id=comment,
        schema_version="v3",
        kind="crowd",
        reason="random_audit",
        questions=[],
        redundancy=3,
        annotators=["a1", "a2", "a3"],
    )
