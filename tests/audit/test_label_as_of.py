"""label_as_of keeps its meaning: the latest label recorded by T per (comment, version), ties by
occurred_at then event id, each event counted once, superseded_by as published by T.

The named query was rewritten for speed (window functions instead of an argMax over a wide
tuple); here it is checked row for row against the original formulation, kept below as the
reference, on a history with every tie and duplicate the semantics name, at many times T.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from clickhouse_connect.driver.client import Client
from typer.testing import CliRunner

from labeltrail.audit import to_jsonable
from labeltrail.cli import app
from labeltrail.clickhouse.client import (
    apply_ddl,
    client_from,
    named_query,
    reference_query,
    run_named,
    run_named_arrow,
)
from labeltrail.clickhouse.writer import BatchWriter, LogRecord
from labeltrail.config import Settings
from labeltrail.events import Event, LabelCommitted, LabelSchemaPublished, encode
from labeltrail.export.build import sql_time
from labeltrail.ontology import moderation_schema_v3

T0 = dt.datetime(2024, 9, 2, 8, 0, tzinfo=dt.UTC)
Policy = Literal["none", "relabel_subset", "discard", "keep_as_feature"]
CLASSES = ["non-toxic", "mild", "harassment", "hate", "threats"]

REFERENCE = reference_query("label_as_of_argmax")
"""The query as it was before the rewrite (argMax over a wide tuple, grouped)."""


def _at(minutes: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def _label(
    comment: str,
    tag: str,
    *,
    recorded: float,
    occurred: float,
    label: str = "mild",
    version: str = "v3",
    id_tag: str | None = None,
) -> LabelCommitted:
    return LabelCommitted.create(
        producer="tests",
        id_parts=("as-of", comment, version, id_tag or tag),
        occurred_at=_at(occurred),
        recorded_at=_at(recorded),
        label_id=f"label-{comment}-{version}-{tag}",
        comment_id=comment,
        schema_version=version,
        label=label,
        classes=CLASSES,
        distribution=[0.1, 0.6, 0.1, 0.1, 0.1],
        confidence=0.6,
        route="consensus",
        method="mv",
        vote_ids=[f"v-{tag}"],
        annotator_ids=[f"a-{tag}"],
    )


def _schema(version: str, supersedes: str | None, recorded: float, policy: Policy) -> Event:
    return LabelSchemaPublished.create(
        producer="tests",
        id_parts=("as-of-schema", version, policy),
        occurred_at=_at(recorded),
        recorded_at=_at(recorded),
        version=version,
        classes=CLASSES,
        questions=moderation_schema_v3().questions,
        guideline_hash="sha256:0",
        supersedes=supersedes,
        old_label_policy=policy,
    )


def tie_history() -> list[Event]:
    """Labels with every tie the semantics name, two versions, superseding schemas."""
    return [
        # c1 v3: relabelled; then two labels recorded together (occurred_at decides), then two
        # recorded and occurring together (event id decides).
        _label("c1", "first", recorded=10, occurred=5, label="non-toxic"),
        _label("c1", "second", recorded=20, occurred=15, label="mild"),
        _label("c1", "third", recorded=20, occurred=16, label="harassment"),
        _label("c1", "fourth-a", recorded=30, occurred=25, label="hate"),
        _label("c1", "fourth-b", recorded=30, occurred=25, label="threats"),
        # c1 v4: its own row, never mixed with v3.
        _label("c1", "v4", recorded=40, occurred=40, label="hate", version="v4"),
        # c2: one label, and a late re-emission of the same event (same id, later recorded_at,
        # later on the log): the earliest copy is the one that counts.
        _label("c2", "only", recorded=12, occurred=12, label="mild"),
        _label("c2", "only-again", recorded=50, occurred=12, label="mild", id_tag="only"),
        _label("c3", "late", recorded=45, occurred=1, label="threats"),
        _schema("v3", None, 0, "none"),
        _schema("v4", "v3", 35, "relabel_subset"),
        _schema("v5", "v3", 55, "keep_as_feature"),
    ]


def _project(client: Client, events: list[Event], consumer: str, first_offset: int) -> None:
    records = [LogRecord("t.as-of", 0, first_offset + i, encode(e)) for i, e in enumerate(events)]
    BatchWriter(client, consumer).project(records)


@pytest.fixture(scope="module")
def as_of_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    path: Path = tmp_path_factory.mktemp("as-of-ch")
    return f"chdb://{path}"


@pytest.fixture(scope="module")
def as_of_dsn(as_of_db: Client, as_of_path: str) -> str:
    """The loaded database's DSN, for the CLI. It asks for ``as_of_db`` so the history is in:
    xdist may run a test of this module in a worker where no other test loaded it."""
    return as_of_path


@pytest.fixture(scope="module")
def as_of_db(as_of_path: str) -> Iterator[Client]:
    client = client_from(Settings(clickhouse_dsn=as_of_path))
    apply_ddl(client)
    events = tie_history()
    _project(client, events, "tests", 0)
    _project(client, events[:5], "tests-replay", 0)  # a replayed batch at the same offsets
    yield client
    client.close()  # chdb serves one path per process at a time


def _rows(client: Client, sql: str, **params: str) -> list[dict[str, object]]:
    result = client.query(sql, parameters=params)
    rows = [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]
    return sorted(rows, key=lambda r: (str(r["comment_id"]), str(r["schema_version"])))


TIMES = (0, 9.999, 10, 15, 20, 29, 30, 35, 40, 45, 50, 55, 60)


@pytest.mark.parametrize("minutes", TIMES)
@pytest.mark.parametrize(("comment", "version"), [("", ""), ("", "v3"), ("c1", ""), ("c2", "v3")])
def test_same_rows_as_the_reference_formulation(
    as_of_db: Client, minutes: float, comment: str, version: str
) -> None:
    params = {
        "comment_id": comment,
        "at": sql_time(_at(minutes)),
        "schema_version": version,
        "time": "recorded",
    }
    got = sorted(
        run_named(as_of_db, "label_as_of", **params),
        key=lambda r: (str(r["comment_id"]), str(r["schema_version"])),
    )
    assert got == _rows(as_of_db, REFERENCE, **params)


def _utc(value: object) -> dt.datetime:
    assert isinstance(value, dt.datetime)
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _labels_at(
    client: Client, minutes: float, clock: str = "recorded"
) -> dict[tuple[str, str], dict[str, object]]:
    """Every label as of ``minutes`` on ``clock``, by (comment, version)."""
    rows = run_named(
        client,
        "label_as_of",
        comment_id="",
        at=sql_time(_at(minutes)),
        schema_version="",
        time=clock,
    )
    return {(str(r["comment_id"]), str(r["schema_version"])): r for r in rows}


def test_ties_duplicates_and_supersession(as_of_db: Client) -> None:
    def at(minutes: float) -> dict[tuple[str, str], dict[str, object]]:
        return _labels_at(as_of_db, minutes)

    assert at(9.999) == {}
    assert at(10)[("c1", "v3")]["label"] == "non-toxic"
    assert at(20)[("c1", "v3")]["label"] == "harassment"  # same recorded_at: later occurred_at
    tied = [e for e in tie_history() if isinstance(e, LabelCommitted) and "fourth" in e.label_id]
    by_id = max(tied, key=lambda e: e.event_id)  # recorded and occurred together: event id
    row = at(30)[("c1", "v3")]
    assert (row["label"], row["label_event_id"]) == (by_id.label, by_id.event_id)
    assert row["labels_so_far"] == 5  # the replayed batch adds no label
    assert row["superseded_by"] is None and row["supersede_policy"] is None
    assert ("c1", "v4") not in at(35)
    later = at(35)[("c1", "v3")]
    assert (later["superseded_by"], later["supersede_policy"]) == ("v4", "relabel_subset")
    v4 = at(40)[("c1", "v4")]
    assert (v4["label"], v4["labels_so_far"], v4["superseded_by"]) == ("hate", 1, None)
    assert at(55)[("c1", "v3")]["superseded_by"] == "v5"  # the latest superseding schema
    c2 = at(60)[("c2", "v3")]
    assert c2["labels_so_far"] == 1 and _utc(c2["committed_at"]) == _at(12)  # earliest copy
    assert ("c3", "v3") not in at(44.999) and ("c3", "v3") in at(45)


@pytest.mark.parametrize("minutes", (20, 45, 60))
def test_arrow_rows_are_the_same_rows(as_of_db: Client, minutes: float) -> None:
    """The CLI reads label-as-of through Arrow; its rows equal the driver's Python rows."""
    params = {
        "comment_id": "",
        "at": sql_time(_at(minutes)),
        "schema_version": "",
        "time": "recorded",
    }
    table = run_named_arrow(as_of_db, "label_as_of", **params)
    arrow_rows = table.sort_by([("comment_id", "ascending"), ("schema_version", "ascending")])
    python_rows = _rows(as_of_db, named_query("label_as_of"), **params)
    assert to_jsonable(arrow_rows.to_pylist()) == to_jsonable(python_rows)
    assert len(python_rows) >= 2


def _cli(dsn: str, monkeypatch: pytest.MonkeyPatch, minutes: float, *args: str) -> str:
    monkeypatch.setenv("LABELTRAIL_CLICKHOUSE_DSN", dsn)  # same path: shared in a process
    at = _at(minutes).isoformat()
    out = CliRunner().invoke(app, ["audit", "label-as-of", "all", "--at", at, *args])
    assert out.exit_code == 0, out.output
    return out.stdout


@pytest.mark.parametrize(("minutes", "version"), [(20, ""), (45, ""), (60, "v3")])
def test_streamed_json_has_the_values_of_python_rows(
    as_of_db: Client,
    as_of_dsn: str,
    monkeypatch: pytest.MonkeyPatch,
    minutes: float,
    version: str,
) -> None:
    """``label-as-of --json`` is ClickHouse's own JSON; it parses to the rows (and order) the
    earlier path printed: Python rows through to_jsonable, sorted by comment and version."""
    params = {
        "comment_id": "",
        "at": sql_time(_at(minutes)),
        "schema_version": version,
        "time": "recorded",
    }
    python_rows = _rows(as_of_db, named_query("label_as_of"), **params)
    text = _cli(as_of_dsn, monkeypatch, minutes, "--json", "--schema-version", version)
    assert json.loads(text) == to_jsonable(python_rows)
    assert len(python_rows) >= 2
    if minutes == 45:  # a superseded label and times with milliseconds come through as such
        assert any(r["superseded_by"] == "v4" for r in json.loads(text))
        assert all(r["committed_at"].endswith("Z") for r in json.loads(text))


@pytest.mark.parametrize("fmt", ["parquet", "csv", "json"])
def test_out_file_holds_the_same_rows(
    as_of_db: Client,
    as_of_dsn: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    fmt: str,
) -> None:
    params = {"comment_id": "", "at": sql_time(_at(45)), "schema_version": "", "time": "recorded"}
    expected = to_jsonable(_rows(as_of_db, named_query("label_as_of"), **params))
    path = tmp_path / f"labels.{fmt}"
    assert _cli(as_of_dsn, monkeypatch, 45, "--out", str(path)) == ""
    if fmt == "parquet":
        assert to_jsonable(pq.read_table(path).to_pylist()) == expected
    elif fmt == "csv":
        table = pacsv.read_csv(path)
        assert table.column_names == list(expected[0])
        assert table.column("comment_id").to_pylist() == [r["comment_id"] for r in expected]
        assert table.column("label_event_id").to_pylist() == [r["label_event_id"] for r in expected]
    else:
        assert json.loads(path.read_text()) == expected


def test_streamed_output_edges(
    as_of_dsn: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert json.loads(_cli(as_of_dsn, monkeypatch, 9.999, "--json")) == []  # nothing yet
    one = json.loads(_cli(as_of_dsn, monkeypatch, 60, "--json").replace("\n", " "))
    assert [(r["comment_id"], r["schema_version"]) for r in one] == sorted(
        (r["comment_id"], r["schema_version"]) for r in one
    )
    monkeypatch.setenv("LABELTRAIL_CLICKHOUSE_DSN", as_of_dsn)
    unknown = tmp_path / "labels.txt"
    out = CliRunner().invoke(app, ["audit", "label-as-of", "all", "--out", str(unknown)])
    assert out.exit_code == 2 and "format" in out.output
    assert not unknown.exists()  # refused before anything is written


def test_event_time_reads_the_labels_by_when_they_happened(as_of_db: Client) -> None:
    """--time event: the latest label whose event time is by then, knowing everything recorded
    since (c3's label happened at 1 and was recorded at 45); ties by recorded time."""

    def at(minutes: float, clock: str) -> dict[tuple[str, str], dict[str, object]]:
        return _labels_at(as_of_db, minutes, clock)

    assert ("c3", "v3") in at(1, "event") and ("c3", "v3") not in at(1, "recorded")
    assert at(4.999, "event").keys() == {("c3", "v3")}
    assert at(5, "event")[("c1", "v3")]["label"] == "non-toxic"  # recorded only at 10
    assert at(15, "event")[("c1", "v3")]["label"] == "mild"
    assert at(16, "event")[("c1", "v3")]["label"] == "harassment"
    assert at(35, "event")[("c1", "v3")]["superseded_by"] == "v4"  # schemas: same clock
    assert at(60, "event") == at(60, "recorded")  # everything happened and was recorded
