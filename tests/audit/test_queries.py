"""Every audit query on a simulated history in real chdb, and SQL injection attempts."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from clickhouse_connect.driver.client import Client

from labeltrail.audit import render_trace
from labeltrail.clickhouse.client import projections_dir, run_named
from labeltrail.clickhouse.trace import full_trace
from labeltrail.events import Event, LabelCommitted
from labeltrail.export.build import sql_time
from tests.audit.history import adjudicated_comment

NOW = sql_time(dt.datetime(2100, 1, 1, tzinfo=dt.UTC))
RECORDED = "recorded"
INJECTIONS = (
    "' OR '1'='1",
    "x'; DROP TABLE labels; --",
    "c-00001' UNION SELECT * FROM events --",
    "{comment_id:String}",
    "\\' OR 1=1 --",
)


def test_trace_tells_the_article_story(loaded: Client, history: list[Event]) -> None:
    comment = adjudicated_comment(history)
    rows = full_trace(loaded, comment)
    kinds = [r["event_type"] for r in rows]
    for kind in (
        "CommentPosted",
        "CommentScored",
        "TaskCreated",
        "TaskAssigned",
        "VoteCast",
        "ConsensusUpdated",
        "AdjudicationRequested",
        "AdjudicationRecorded",
        "LabelCommitted",
        "AnnotatorReliabilityUpdated",
    ):
        assert kind in kinds, kind
    assert kinds.index("CommentPosted") < kinds.index("VoteCast") < kinds.index("LabelCommitted")
    linked = [r for r in rows if r["event_type"] == "AnnotatorReliabilityUpdated"]
    assert all(r["link"] for r in linked)
    text = "\n".join(render_trace(rows))
    assert "reliability of" in text and "expert" in text and "note:" in text


def test_label_as_of_moves_with_time(loaded: Client, history: list[Event]) -> None:
    labels = [e for e in history if isinstance(e, LabelCommitted)]
    first = min(labels, key=lambda e: e.envelope.recorded_at)
    before = sql_time(first.envelope.recorded_at - dt.timedelta(milliseconds=1))
    assert (
        run_named(loaded, "label_as_of", comment_id="", at=before, schema_version="", time=RECORDED)
        == []
    )
    now = run_named(
        loaded, "label_as_of", comment_id="", at=NOW, schema_version="v3", time=RECORDED
    )
    assert len(now) == len({e.comment_id for e in labels})
    one = run_named(
        loaded,
        "label_as_of",
        comment_id=first.comment_id,
        at=NOW,
        schema_version="v3",
        time=RECORDED,
    )
    assert [r["comment_id"] for r in one] == [first.comment_id]


def test_explain_gives_votes_posterior_and_threshold(loaded: Client, history: list[Event]) -> None:
    comment = adjudicated_comment(history)
    head = run_named(loaded, "explain_label", label=comment)[0]
    assert head["route"] == "adjudication"
    assert head["agreement"] is not None and head["agreement_threshold"] is not None
    assert head["agreement"] < head["agreement_threshold"]
    assert head["reviewer_id"] and head["adjudication_note"]
    votes = run_named(loaded, "explain_votes", label=head["label_id"])
    assert len(votes) == 3 and all(v["annotator_id"] for v in votes)


def test_annotator_record(loaded: Client, history: list[Event]) -> None:
    summary = run_named(loaded, "annotator_summary", annotator="annotator_a")[0]
    assert summary["votes"] == 6 and summary["gold_accuracy"] == 0.0
    voters = [r for r in run_named(loaded, "trace", comment_id=adjudicated_comment(history))]
    someone = next(r["annotator_id"] for r in voters if r["event_type"] == "VoteCast")
    trajectory = run_named(loaded, "annotator_reliability", annotator=someone)
    assert any(r["source"] == "reliability" for r in trajectory)
    assert isinstance(run_named(loaded, "annotator_overrides", annotator=someone), list)


def test_blind_spot_is_high_agreement_low_gold_accuracy(loaded: Client) -> None:
    rows = run_named(
        loaded,
        "blind_spots",
        min_agreement=0.8,
        max_gold_accuracy=0.5,
        min_gold=5,
        slice_key="slice",
    )
    projected = [r for r in rows if r["source"] == "projection"]
    assert [r["slice"] for r in projected] == ["coded"]
    assert projected[0]["agreement"] == 1.0 and projected[0]["gold_accuracy"] == 0.0
    assert any(r["source"] == "stream" and r["slice"] == "coded" for r in rows)
    iaa = run_named(loaded, "iaa", days=7, slice_key="slice", schema_version="v3")
    questions = {r["question"] for r in iaa}
    assert {"label", "q1"} <= questions
    assert any(r["gold_accuracy"] is not None for r in iaa)


def test_pool_and_cost(loaded: Client) -> None:
    target = json.dumps({"en-US": 0.25, "en-IN": 0.25, "en-PH": 0.25, "en-GB": 0.25})
    pool = run_named(
        loaded, "pool", attribute="locale", slice_key="slice", schema_version="", target=target
    )
    overall = [r for r in pool if r["label_class"] == "*"]
    assert abs(sum(r["share"] for r in overall) - 1.0) < 1e-9
    assert all(r["target_share"] == 0.25 for r in overall if r["value"].startswith("en-"))
    demo = run_named(
        loaded, "pool", attribute="age_band", slice_key="slice", schema_version="", target="{}"
    )
    assert any(r["value"] == "undisclosed" for r in demo)  # no consent, no demographics
    cost = {r["route"]: r for r in run_named(loaded, "cost", schema_version="")}
    assert cost["adjudication"]["usd_per_label"] > cost["consensus"]["usd_per_label"]
    assert cost["ALL"]["honeypots"] > 0 and cost["ALL"]["expert_reviews"] > 0


@pytest.mark.parametrize("evil", INJECTIONS)
def test_injection_is_just_a_value(loaded: Client, evil: str) -> None:
    tables_before = loaded.query("SHOW TABLES").result_rows
    assert run_named(loaded, "trace", comment_id=evil) == []
    assert (
        run_named(loaded, "label_as_of", comment_id=evil, at=NOW, schema_version="", time=evil)
        == []
    )
    assert run_named(loaded, "explain_label", label=evil) == []
    assert run_named(loaded, "annotator_summary", annotator=evil)[0]["votes"] == 0
    assert run_named(loaded, "iaa", days=7, slice_key=evil, schema_version=evil) == []
    assert loaded.query("SHOW TABLES").result_rows == tables_before
    assert loaded.query("SELECT count() FROM labels").result_rows[0][0] > 0


def test_named_queries_take_only_typed_parameters() -> None:
    for path in sorted((projections_dir() / "queries").glob("*.sql")):
        sql = re.sub(r"--[^\n]*", "", path.read_text())
        for brace in re.findall(r"\{[^}]*\}", sql):
            assert re.fullmatch(r"\{[a-z_]+:[A-Za-z0-9(), ']+\}", brace), (path.name, brace)
        assert "%s" not in sql and "%(" not in sql, path.name
