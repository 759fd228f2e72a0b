"""``clickhouse.relabel``: the join of the labels' vote ids to the votes, by hash in numpy
(a second hash of each id, here its CRC-32, checks the pair the first one found), and
``label_votes``, the labels with their votes resolved as they are projected."""

from __future__ import annotations

import zlib
from pathlib import Path

import pyarrow as pa
import pytest

from labeltrail.clickhouse.client import Client, apply_ddl, client_from
from labeltrail.clickhouse.relabel import _VoteIndex, projector_consumer, read_projected
from labeltrail.clickhouse.writer import BatchWriter, LogRecord
from labeltrail.config import Settings
from labeltrail.events import LabelCommitted, encode
from labeltrail.exceptions import LabeltrailError
from tests.events.samples import sample_event

CLASSES = ["ok", "bad"]


def _check(vote_id: str) -> int:
    return zlib.crc32(vote_id.encode())


def _votes(rows: list[tuple[int, str, str, str]]) -> pa.Table:
    hashes, ids, annotators, labels = zip(*rows, strict=True)
    return pa.table(
        {
            "hash": pa.array(hashes, pa.uint64()),
            "check": pa.array([_check(i) for i in ids], pa.uint64()),
            "annotator_id": annotators,
            "label": labels,
        }
    )


def _labels(named: list[list[tuple[int, str]]]) -> pa.Table:
    return pa.table(
        {
            "vote_hashes": pa.array([[h for h, _ in n] for n in named], pa.list_(pa.uint64())),
            "vote_checks": pa.array(
                [[_check(v) for _, v in n] for n in named], pa.list_(pa.uint64())
            ),
        }
    )


def test_each_id_is_its_first_copy_in_log_order_and_missing_ids_are_left_out() -> None:
    index = _VoteIndex.of(
        _votes([(7, "v1", "ann", "ok"), (3, "v2", "bob", "bad"), (7, "v1", "cat", "bad")])
    )
    coded = index.named(_labels([[(3, "v2"), (7, "v1")], [(9, "v9")]]), list(CLASSES))
    assert coded.item.tolist() == [0, 0]
    assert coded.annotator_ids[coded.annotator].tolist() == ["bob", "ann"]
    assert [CLASSES[j] for j in coded.label.tolist()] == ["bad", "ok"]


def test_two_ids_with_one_hash_are_an_error_not_a_wrong_vote() -> None:
    index = _VoteIndex.of(_votes([(5, "v1", "ann", "ok"), (5, "v2", "bob", "bad")]))
    with pytest.raises(LabeltrailError, match="share a 64-bit hash"):
        index.named(_labels([[(5, "v2")]]), list(CLASSES))


def _resolving_writer(tmp_path: Path) -> tuple[Settings, Client, BatchWriter]:
    settings = Settings(topic_prefix="p", clickhouse_dsn=f"chdb://{tmp_path}")
    client = client_from(settings)
    apply_ddl(client)
    return settings, client, BatchWriter(client, projector_consumer("p"))


def test_a_vote_projected_after_its_label_completes_the_labels_row(tmp_path: Path) -> None:
    """label_votes holds each live label with the votes it names resolved as they are
    projected: a label whose vote is not projected yet is read the old way (labels and votes
    joined), and the vote's batch resolves it, so the next run reads label_votes alone."""
    settings, client, writer = _resolving_writer(tmp_path)
    try:
        label = sample_event("LabelCommitted")
        assert isinstance(label, LabelCommitted)
        writer.project([LogRecord("p.labels", 0, 0, encode(label))])
        writer.project([LogRecord("p.votes", 0, 0, encode(sample_event("AnnotatorRegistered")))])
        before = read_projected(client, settings, slices=False)
        assert not before.resolved
        labels, votes = before.versions["v3"]
        assert votes.item.size == 0  # the vote is not in the projection yet
        writer.project([LogRecord("p.votes", 0, 1, encode(sample_event("VoteCast")))])
        after = read_projected(client, settings, slices=False)
        assert after.resolved
        labels, votes = after.versions["v3"]
        assert labels.labels.tolist() == [label.label]
        assert votes.annotator_ids[votes.annotator].tolist() == ["a47"]
        assert [after.classes["v3"][j] for j in votes.label.tolist()] == ["non-toxic"]
    finally:
        client.close()


def test_a_database_made_before_label_votes_gets_it_filled(tmp_path: Path) -> None:
    """The migration: applying the DDL to a database whose label_votes is empty while its
    labels are not fills it whole, and the run then reads it."""
    settings, client, writer = _resolving_writer(tmp_path)
    try:
        writer.project(
            [
                LogRecord("p.votes", 0, 0, encode(sample_event("VoteCast"))),
                LogRecord("p.labels", 0, 0, encode(sample_event("LabelCommitted"))),
            ]
        )
        client.command("TRUNCATE TABLE label_votes")  # as a database made before it
        assert not read_projected(client, settings, slices=False).resolved
        apply_ddl(client)
        assert read_projected(client, settings, slices=False).resolved
    finally:
        client.close()


def test_a_vote_written_past_the_covered_positions_is_not_counted(tmp_path: Path) -> None:
    """A vote's batch written but its positions not yet recorded (a run reads up to the
    recorded ones): label_votes already names it, so the run checks every vote against the
    covered positions, reads labels and votes instead, and leaves the vote out; once the
    positions are recorded it reads label_votes with the vote."""
    settings, client, writer = _resolving_writer(tmp_path)
    try:
        writer.project([LogRecord("p.labels", 0, 0, encode(sample_event("LabelCommitted")))])
        vote = [LogRecord("p.votes", 0, 0, encode(sample_event("VoteCast")))]
        written = writer.write_records(vote)
        ahead = read_projected(client, settings, slices=False)
        assert not ahead.resolved
        assert ahead.versions["v3"][1].item.size == 0
        writer.record_positions(written.positions)
        caught_up = read_projected(client, settings, slices=False)
        assert caught_up.resolved
        assert caught_up.versions["v3"][1].item.tolist() == [0]
    finally:
        client.close()


def test_label_votes_in_several_parts_with_their_own_annotators_are_read(
    tmp_path: Path,
) -> None:
    """Three batches, three parts, each block's annotators a dictionary of its own: read as an
    Arrow stream (the Arrow file format refuses a second dictionary for a field)."""
    settings, client, writer = _resolving_writer(tmp_path)
    label, vote = sample_event("LabelCommitted"), sample_event("VoteCast")
    try:
        for i in range(3):
            ids = {"comment_id": f"c{i}", "annotator_id": f"a{i}"}
            v = vote.model_copy(update={"vote_id": f"v{i}", **ids})
            named = {"vote_ids": [f"v{i}"], "annotator_ids": [f"a{i}"]}
            lab = label.model_copy(update={"label_id": f"l{i}", "comment_id": f"c{i}", **named})
            writer.project(
                [LogRecord("p.votes", 0, i, encode(v)), LogRecord("p.labels", 0, i, encode(lab))]
            )
        history = read_projected(client, settings, slices=False)
        assert history.resolved
        _, votes = history.versions["v3"]
        assert votes.annotator_ids[votes.annotator].tolist() == ["a0", "a1", "a2"]
    finally:
        client.close()
