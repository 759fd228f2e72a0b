"""``folds.batch``: a history's log replayed topic by topic in batches commits the labels the
folds committed live, and the comparison names every way a labels topic can differ.

The history is the simulated platform run through the folds in memory (reliability included:
its estimates, on ``quality``, come after the votes that made them, and a replay does not read
them); its topics are encoded and replayed in
batches, as ``labeltrail replay labels`` reads them from Kafka (``tests/cli/test_replay.py``
runs that on the broker).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest

from labeltrail.events.base import Event
from labeltrail.events.models import LabelCommitted, VoteCast
from labeltrail.events.serde import encode
from labeltrail.folds.batch import (
    REPLAY_TOPICS,
    BatchReplay,
    Comparison,
    Label,
    compare,
    labels_on_log,
    replay_topics,
)
from labeltrail.folds.consensus import ConsensusFold
from labeltrail.folds.labels import LabelsFold
from labeltrail.folds.reliability import ReliabilityConfig, ReliabilityFold
from labeltrail.folds.replay import Replay
from labeltrail.sim import Platform, PlatformConfig
from tests.folds.helpers import run_in_memory


@pytest.fixture(scope="module")
def history() -> Replay:
    platform = Platform(PlatformConfig.sized(120, seed=11))
    return run_in_memory(platform, [ReliabilityFold(ReliabilityConfig(refit_on_drain=True))])


def _batches(events: Sequence[Event], size: int) -> Iterator[list[bytes]]:
    values = [encode(e) for e in events]
    for i in range(0, len(values), size):
        yield values[i : i + size]


def _replayed(log: dict[str, list[Event]], size: int = 37) -> BatchReplay:
    replay = BatchReplay(ConsensusFold(), LabelsFold())
    for suffix in replay_topics(replay.labels):
        for values in _batches(log.get(suffix, []), size):
            replay.feed(values, suffix)
    replay.finish()
    return replay


def _compared(log: dict[str, list[Event]], labels: Sequence[Event]) -> Comparison:
    return compare(labels_on_log(_batches(labels, 50)), _replayed(log).commits)


def test_the_replay_commits_the_labels_of_the_run(history: Replay) -> None:
    log = history.log
    assert log.get("quality") and log.get("adjudications")  # both in the history
    labels = log["labels"]
    result = _compared(log, labels)
    assert result.agree, result.differences[:5]
    assert result.read == result.recomputed == result.equal == len(labels)
    assert {e.route for e in labels if isinstance(e, LabelCommitted)} == {
        "consensus",
        "adjudication",
    }


def test_chunk_size_does_not_matter(history: Replay) -> None:
    one = _replayed(history.log, size=1).commits
    assert one == _replayed(history.log, size=10_000).commits


def test_a_label_appended_with_another_class_differs(history: Replay) -> None:
    labels = history.log["labels"]
    first = labels[0]
    assert isinstance(first, LabelCommitted)
    other = next(c for c in first.classes if c != first.label)
    tampered = first.model_copy(update={"label": other})
    result = _compared(history.log, [*labels, tampered])
    assert not result.agree
    assert result.summary()["differing"] == 1
    (diff,) = result.differences
    assert diff.label_id == first.label_id and diff.kind == "differing"
    assert diff.logged == (
        Label(first.comment_id, first.label, first.route),
        Label(first.comment_id, other, first.route),
    )
    assert diff.recomputed == Label(first.comment_id, first.label, first.route)


def test_a_label_not_made_by_the_inputs_is_missing_from_the_replay(history: Replay) -> None:
    labels = history.log["labels"]
    first = labels[0]
    assert isinstance(first, LabelCommitted)
    forged = first.model_copy(update={"label_id": "forged"})
    result = _compared(history.log, [*labels, forged])
    assert result.summary()["missing"] == 1 and result.differences[0].kind == "missing"
    assert not result.agree


def test_a_label_the_log_lacks_is_extra(history: Replay) -> None:
    labels = history.log["labels"]
    result = _compared(history.log, labels[1:])
    assert result.summary()["extra"] == 1 and not result.agree
    assert result.equal == len(labels) - 1


def test_an_unreadable_record_on_the_labels_topic_disagrees(history: Replay) -> None:
    labels = [encode(e) for e in history.log["labels"]]
    logged = labels_on_log([[*labels, b"\x00not an event"]])
    result = compare(logged, _replayed(history.log).commits)
    assert result.unreadable == 1 and not result.differences and not result.agree


def test_a_record_on_the_wrong_topic_is_left_out_as_a_stage_would(history: Replay) -> None:
    vote = next(e for e in history.log["votes"] if isinstance(e, VoteCast))
    replay = BatchReplay(ConsensusFold(), LabelsFold())
    replay.feed([encode(e) for e in history.log["schemas"]], "schemas")
    replay.feed([encode(vote)], "tasks")
    assert replay.rejected["wrong_topic"] == 1
    assert replay.votes == 0 and not replay.consensus.waiting


def test_scores_are_read_when_labels_commit_machine_made_ones() -> None:
    assert "scores" not in replay_topics(LabelsFold())
    assert replay_topics(LabelsFold(auto_accept_threshold=0.9)) == (*REPLAY_TOPICS, "scores")
