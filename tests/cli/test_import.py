"""``labeltrail import votes`` on the real broker and the embedded ClickHouse.

The worked example: ConvAbuse's test split (853 utterances, 2,482 annotations by 8
annotators; the whole split, about 20 s here) converted to the import CSV, imported, folded
by the consensus and labels stages as their services build them, projected, and read back:
``audit iaa`` gives the per-day, per-bot agreement computed here from the file itself, and
``audit label-as-of`` the consensus labels (at the default gate, 0.85 pairwise agreement: the
unanimous items). A Label Studio export with several annotations per task becomes the events
it should, with its provenance; bad input is refused whole with a clear error.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections import Counter, defaultdict
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from labeltrail.clickhouse.client import apply_ddl, client_from
from labeltrail.clickhouse.projector import Projector
from labeltrail.clickhouse.rebuild import run_until_caught_up
from labeltrail.config import Settings
from labeltrail.events.crypto import ERASED, is_sealed, reveal_event
from labeltrail.events.models import (
    AnnotatorRegistered,
    CommentPosted,
    LabelCommitted,
    TaskCreated,
    VoteCast,
)
from labeltrail.imports import convabuse_csv
from labeltrail.kafka.admin import ensure_topics
from labeltrail.kafka.keys import KafkaKeyStore
from tests.cli.helpers import cli, cli_rows, run_registered_stage
from tests.kafka.test_erasure import _in_topics
from tests.probes import read_topic

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
START = dt.datetime(2021, 1, 4, tzinfo=dt.UTC)  # a Monday: weekly windows start on Mondays
VERSION = "convabuse-v1"


def _publish_schema(settings: Settings) -> None:
    ensure_topics(settings)
    code, out = cli(settings, "schema", "publish", str(REPO / "examples/convabuse/ontology.yaml"))
    assert code == 0, out


def _expected(rows: list[dict[str, str]]) -> tuple[dict[tuple[str, str], float], dict[str, str]]:
    """From the CSV alone: mean pairwise agreement per (day, slice) over items with two or
    more votes (windowed by the item's last vote), and the unanimous items' labels."""
    items: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in rows:
        items[row["item_id"]].append(row)
    by_window: dict[tuple[str, str], list[float]] = defaultdict(list)
    unanimous: dict[str, str] = {}
    for item, votes in items.items():
        counts = Counter(v["label"] for v in votes)
        n = len(votes)
        if len(counts) == 1:
            unanimous[item] = votes[0]["label"]
        if n < 2:
            continue
        last = max(dt.datetime.fromisoformat(v["annotated_at"]) for v in votes)
        agreement = sum(c * (c - 1) for c in counts.values()) / (n * (n - 1))
        by_window[(last.date().isoformat(), votes[0]["attr.slice"])].append(agreement)
    return {k: sum(v) / len(v) for k, v in by_window.items()}, unanimous


def test_convabuse_imported_reads_back_agreement_over_time_and_labels(
    pipeline_settings: Settings, tmp_path: Path, datasets_dir: Path
) -> None:
    settings = pipeline_settings
    _publish_schema(settings)
    split = (datasets_dir / "convabuse" / "ConvAbuseEMNLPtest.csv").read_text(encoding="utf-8")
    converted = convabuse_csv(split, start=START, items_per_day=100)
    rows = list(csv.DictReader(io.StringIO(converted)))
    assert len(rows) == 2482 and len({r["item_id"] for r in rows}) == 853
    path = tmp_path / "convabuse.csv"
    path.write_text(converted, encoding="utf-8")

    args = ("import", "votes", str(path), "--format", "csv", "--schema-version", VERSION)
    code, out = cli(settings, *args, "--source", "convabuse")
    assert code == 0, out
    assert "imported 2482 vote(s) on 853 item(s) by 8 annotator(s), 853 comment(s)" in out
    code, again = cli(settings, *args, "--source", "convabuse")  # adds nothing new
    assert code == 0 and again == out, again
    votes = [e for e in read_topic(settings, "votes") if isinstance(e, VoteCast)]
    assert len(votes) == 2 * 2482 and len({v.event_id for v in votes}) == 2482
    assert {v.envelope.producer for v in votes} == {"import:convabuse"}
    first = next(v for v in votes if v.vote_id == "convabuse:convabuse-267:Annotator2")
    assert first.envelope.occurred_at == START + dt.timedelta(minutes=2)  # the file's first row
    assert (first.annotator_id, first.label) == ("convabuse:Annotator2", "not_abusive")

    stats = run_registered_stage("consensus", settings, tmp_path / "consensus")
    assert stats["rejected"] == 0
    run_registered_stage("labels", settings, tmp_path / "labels")
    labels = [e for e in read_topic(settings, "labels") if isinstance(e, LabelCommitted)]
    agreement, unanimous = _expected(rows)
    assert {e.comment_id: e.label for e in labels} == unanimous
    client = client_from(settings)
    apply_ddl(client)
    run_until_caught_up(Projector(client, settings))
    client.close()

    iaa = cli_rows(settings, "audit", "iaa", "--days", "1", "--schema-version", VERSION)
    got = {
        (r["window_start"][:10], r["slice"]): r["agreement"]
        for r in iaa
        if r["source"] == "projection" and r["question"] == "label"
    }
    assert got.keys() == agreement.keys() and len({day for day, _ in got}) == 9
    for key, value in agreement.items():
        assert got[key] == pytest.approx(value, abs=1e-9), key

    as_of = cli_rows(settings, "audit", "label-as-of", "all", "--schema-version", VERSION)
    assert {r["comment_id"]: r["label"] for r in as_of} == unanimous
    assert {r["route"] for r in as_of} == {"consensus"}
    one = cli_rows(settings, "audit", "label-as-of", "convabuse-267")
    assert [(r["label"], r["annotator_ids"]) for r in one] == [
        ("not_abusive", ["convabuse:Annotator2", "convabuse:Annotator6", "convabuse:Annotator7"])
    ]
    before = cli_rows(
        settings, "audit", "label-as-of", "all", "--at", "2021-01-01", "--time", "event"
    )
    assert before == []


def _label_studio() -> list[dict[str, Any]]:
    def annotation(aid: int, who: object, label: str, at: str, **more: Any) -> dict[str, Any]:
        result = [
            {
                "type": "choices",
                "from_name": "abuse",
                "to_name": "text",
                "value": {"choices": [label]},
            }
        ]
        return {"id": aid, "completed_by": who, "result": result, "created_at": at} | more

    return [
        {
            "id": 11,
            "data": {"text": "you are useless", "comment_id": "ls-c1", "slice": "en"},
            "annotations": [
                annotation(101, 7, "mildly_abusive", "2022-05-02T10:00:00Z", lead_time=12.5),
                annotation(
                    102,
                    {"id": 8, "email": "x@example.org"},
                    "mildly_abusive",
                    "2022-05-02T11:00:00Z",
                ),
                annotation(103, 9, "not_abusive", "2022-05-03T09:00:00Z"),
                annotation(104, 10, "ambiguous", "2022-05-03T09:30:00Z", was_cancelled=True),
            ],
        },
        {
            "id": 12,
            "data": {"text": "hello there"},
            "annotations": [
                annotation(105, 7, "not_abusive", "2022-05-04T10:00:00+00:00"),
                annotation(106, 9, "not_abusive", "2022-05-04T10:05:00+00:00"),
            ],
        },
    ]


def test_a_label_studio_export_becomes_events_with_their_provenance(
    pipeline_settings: Settings, tmp_path: Path
) -> None:
    settings = pipeline_settings
    _publish_schema(settings)
    path = tmp_path / "export.json"
    path.write_text(json.dumps(_label_studio()))
    args = ("import", "votes", str(path), "--format", "label-studio", "--schema-version", VERSION)
    code, out = cli(settings, *args)
    assert code == 0, out
    assert "imported 5 vote(s) on 2 item(s) by 3 annotator(s), 2 comment(s)" in out
    assert cli(settings, *args)[0] == 0

    votes = {e.vote_id: e for e in read_topic(settings, "votes") if isinstance(e, VoteCast)}
    assert sorted(votes) == [f"label-studio:{n}" for n in range(101, 106 + 1) if n != 104]
    first = votes["label-studio:101"]
    assert (first.annotator_id, first.label, first.time_spent_ms) == (
        "label-studio:7",
        "mildly_abusive",
        12500,
    )
    assert first.envelope.occurred_at == dt.datetime(2022, 5, 2, 10, tzinfo=dt.UTC)
    assert votes["label-studio:102"].annotator_id == "label-studio:8"  # never the email
    tasks = [e for e in read_topic(settings, "tasks") if isinstance(e, TaskCreated)]
    assert len({t.event_id for t in tasks}) == 2
    assert {(t.comment_id, t.reason, t.kind, t.redundancy) for t in tasks} == {
        ("ls-c1", "import", "crowd", 3),
        ("label-studio-task-12", "import", "crowd", 2),
    }
    people = [e for e in read_topic(settings, "annotators") if isinstance(e, AnnotatorRegistered)]
    assert {p.annotator_id for p in people} == {
        "label-studio:7",
        "label-studio:8",
        "label-studio:9",
    }
    assert all(p.pool == "crowd" and not p.consented and not p.demographics for p in people)
    comments = {
        e.comment_id: e for e in read_topic(settings, "comments") if isinstance(e, CommentPosted)
    }
    assert comments["ls-c1"].attributes == {
        "import_source": "label-studio",
        "original_id": "ls-c1",
        "slice": "en",
    }
    assert comments["ls-c1"].posted_at == dt.datetime(2022, 5, 2, 10, tzinfo=dt.UTC)


def test_bad_imports_are_refused_whole_with_a_clear_error(
    pipeline_settings: Settings, tmp_path: Path
) -> None:
    settings = pipeline_settings
    _publish_schema(settings)
    good = "item_id,annotator_id,label,annotated_at\ni1,a,not_abusive,2022-01-01T00:00:00Z\n"
    path = tmp_path / "votes.csv"
    path.write_text(
        good
        + "i1,a,ambiguous,2022-01-01T00:01:00Z\n"  # the same item and annotator, another label
        + "i1,a,not_abusive,2022-01-01T00:02:00Z\n"  # an identical repeat: not an error
        + "i2,b,rude,2022-01-01T00:00:00Z\n"
        + "i3,c,ambiguous,yesterday\n"
        + "i4,,ambiguous,2022-01-01T00:00:00Z\n"
    )
    args = ("import", "votes", str(path), "--schema-version", VERSION)
    code, out = cli(settings, *args, "--format", "csv")
    assert code == 2, out
    assert "4 invalid import record(s), nothing produced" in out
    assert "line 3: item 'i1', annotator 'a': labelled 'not_abusive' on line 2 and" in out
    assert "'ambiguous' here (conflicting duplicate)" in out
    assert "line 5: label 'rude' is not a class of convabuse-v1" in out
    assert "line 6: annotated_at: 'yesterday' is not an ISO 8601 time" in out
    assert "line 7: annotator_id: required" in out

    code, out = cli(settings, *args, "--format", "excel")
    assert code == 2 and "Invalid value for '--format'" in out, out

    export = _label_studio()
    export[0]["annotations"][0]["completed_by"] = ["someone"]
    export[1]["annotations"][0]["result"] = []
    bad = tmp_path / "export.json"
    bad.write_text(json.dumps(export))
    args = ("import", "votes", str(bad), "--schema-version", VERSION)
    code, out = cli(settings, *args, "--format", "label-studio")
    assert code == 2, out
    assert "line 1: task 11, annotation 101: completed_by: unknown annotator format" in out
    assert "line 2: task 12, annotation 105: result: expected one choices result, found 0" in out

    path.write_text(good)
    code, out = cli(
        settings, "import", "votes", str(path), "--format", "csv", "--schema-version", "v9"
    )
    assert code == 2 and "no schema version 'v9' is published" in out, out
    for suffix in ("votes", "tasks", "comments", "annotators"):
        assert read_topic(settings, suffix) == [], suffix


def test_an_imported_comment_is_sealed_and_can_be_erased(
    pipeline_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Imported text goes through ``seal_comments`` like ingest's: no plaintext on any topic,
    and ``erase --comment`` forgets it; with erasure off it is produced in the clear."""
    settings = pipeline_settings
    _publish_schema(settings)
    secret = "an imported remark its author asked us to forget"
    header = "item_id,annotator_id,label,annotated_at,text\n"
    path = tmp_path / "votes.csv"
    path.write_text(
        header
        + f"old-1,a,not_abusive,2022-01-01T00:00:00Z,{secret}\n"
        + f"old-1,b,ambiguous,2022-01-01T00:05:00Z,{secret}\n"
    )
    args = ("import", "votes", str(path), "--format", "csv", "--schema-version", VERSION)
    code, out = cli(settings, *args)
    assert code == 0, out

    assert _in_topics(settings, [secret.encode()]) == set()
    (posted,) = [e for e in read_topic(settings, "comments") if isinstance(e, CommentPosted)]
    assert is_sealed(posted.text) and is_sealed(posted.author_hash)
    with closing(KafkaKeyStore(settings)) as keyring:
        assert reveal_event(posted, keyring).text == secret

    code, out = cli(settings, "erase", "--comment", "old-1", "--reason", "test")
    assert code == 0 and "erased 1 comment(s)" in out, out
    with closing(KafkaKeyStore(settings)) as keyring:
        assert reveal_event(posted, keyring).text == ERASED

    monkeypatch.setenv("LABELTRAIL_ERASURE_ENABLED", "false")
    path.write_text(header + "old-2,a,not_abusive,2022-01-02T00:00:00Z,said in the clear\n")
    code, out = cli(settings, *args)
    assert code == 0, out
    plain = [e for e in read_topic(settings, "comments") if isinstance(e, CommentPosted)]
    assert [e.text for e in plain if e.comment_id == "old-2"] == ["said in the clear"]
    code, out = cli(settings, "erase", "--comment", "old-2")
    assert code == 2 and "no sealed comment of comment 'old-2'" in out, out
