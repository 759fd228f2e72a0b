"""Draft acceptance per confidence band in real chdb, checked against the pure tracker.

A hand-made history: crowd tasks that carry the model's draft label, three annotators voting on
every one. ``annotator_anchor`` always keeps the draft; ``annotator_careful`` and
``annotator_blunt`` answer the item's true label (so they keep the draft exactly when it is
right). Some items are in the gold set, some were adjudicated, some have no known truth; one
vote did not see its draft and one task carried none (neither counts).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client
from typer.testing import CliRunner

from labeltrail.cli import app
from labeltrail.clickhouse.client import apply_ddl, client_from, run_named
from labeltrail.config import Settings
from labeltrail.events import AdjudicationRecorded, Event, TaskCreated, VoteCast
from labeltrail.learning.prelabel import DEFAULT_BANDS, DraftAcceptance
from labeltrail.report.html import write_report
from tests.audit.history import project
from tests.unavailable import unavailable

CLASSES = ["non-toxic", "mild", "harassment", "hate", "threats"]
T0 = dt.datetime(2024, 9, 2, 8, 0, tzinfo=dt.UTC)
ANNOTATORS = ("annotator_anchor", "annotator_careful", "annotator_blunt")
CONFIDENCES = (0.3, 0.55, 0.75, 0.85, 0.92, 0.97, 1.0)
N_ITEMS = 70
ALERT = 0.15
Seen = list[tuple[TaskCreated, VoteCast, str | None]]
"""Every (task, vote, truth known to the auditor) of the history."""


def _item(i: int) -> tuple[str, str, float]:
    """(true label, draft label, draft confidence): the draft is wrong on 2 items in 5."""
    truth = CLASSES[i % len(CLASSES)]
    draft = truth if i % 5 in (0, 2, 3) else CLASSES[(i + 1) % len(CLASSES)]
    return truth, draft, CONFIDENCES[i % len(CONFIDENCES)]


def _truth_known(i: int) -> str | None:
    """Gold on a third of the items, an expert verdict on another third, none on the rest."""
    return ("gold", "adjudication", None)[i % 3]


def draft_history() -> tuple[list[Event], Seen]:
    """The events, and every (task, vote, known truth) the tracker should see."""
    events: list[Event] = []
    seen: Seen = []
    for i in range(N_ITEMS):
        cid = f"draft-{i:03d}"
        at = T0 + dt.timedelta(minutes=i)
        truth, draft, confidence = _item(i)
        task = TaskCreated.create(
            producer="tests",
            id_parts=("draft-task", cid),
            occurred_at=at,
            task_id=f"task-{cid}",
            comment_id=cid,
            schema_version="v3",
            kind="crowd",
            reason="low_confidence",
            questions=["q1"],
            redundancy=3,
            prelabel=None if i == 0 else draft,
            prelabel_confidence=None if i == 0 else confidence,
        )
        events.append(task)
        known = _truth_known(i)
        if known is not None:
            events.append(
                AdjudicationRecorded.create(
                    producer="tests",
                    id_parts=("draft-truth", cid),
                    occurred_at=at + dt.timedelta(hours=1),
                    adjudication_id=f"adj-{cid}",
                    request_id="gold:tests" if known == "gold" else f"req-{cid}",
                    task_id=f"expert-{cid}",
                    comment_id=cid,
                    schema_version="v3",
                    reviewer_id="e-01",
                    label=truth,
                    confidence=1.0,
                )
            )
        for n, annotator in enumerate(ANNOTATORS):
            label = draft if annotator == "annotator_anchor" else truth
            shown = task.prelabel is not None and not (i == 1 and n == 2)
            vote = VoteCast.create(
                producer="tests",
                id_parts=("draft-vote", cid, annotator),
                occurred_at=at + dt.timedelta(minutes=n + 1),
                vote_id=f"vote-{cid}-{annotator}",
                task_id=task.task_id,
                comment_id=cid,
                annotator_id=annotator,
                schema_version="v3",
                label=label,
                confidence=0.8,
                time_spent_ms=2000,
                prelabel_shown=shown,
            )
            events.append(vote)
            seen.append((task, vote, truth if known is not None else None))
    return events, seen


@pytest.fixture(scope="module")
def drafts_dsn(tmp_path_factory: pytest.TempPathFactory) -> str:
    path: Path = tmp_path_factory.mktemp("drafts-ch")
    return f"chdb://{path}"


@pytest.fixture(scope="module")
def drafts(
    drafts_dsn: str,
) -> Iterator[tuple[Client, Seen]]:
    events, seen = draft_history()
    client = client_from(Settings(clickhouse_dsn=drafts_dsn))
    apply_ddl(client)
    project(client, events)
    project(client, events[:40], consumer="tests-replay")  # a replayed batch: FINAL absorbs it
    yield client, seen
    client.close()  # chdb serves one path per process at a time


def _expected(seen: Seen, annotator: str) -> list[dict[str, float | int | bool]]:
    tracker = DraftAcceptance()
    for task, vote, truth in seen:
        if annotator in ("*", vote.annotator_id):
            tracker.add_vote(task, vote, truth)
    return tracker.result(anchoring_alert=ALERT)


def _query(client: Client, min_judged: int = 1) -> list[dict[str, object]]:
    return run_named(
        client,
        "draft_acceptance",
        schema_version="v3",
        edges=list(DEFAULT_BANDS),
        anchoring_alert=ALERT,
        min_judged=min_judged,
    )


def test_sql_matches_the_pure_tracker_per_band_and_annotator(
    drafts: tuple[Client, Seen],
) -> None:
    client, seen = drafts
    rows = _query(client)
    for annotator in ("*", *ANNOTATORS):
        expected = {(b["low"], b["high"]): b for b in _expected(seen, annotator) if b["shown"]}
        got = {
            (r["band_low"], r["band_high"]): r
            for r in rows
            if r["annotator_id"] == annotator and r["band"] != "all"
        }
        assert got.keys() == expected.keys(), annotator
        for key, want in expected.items():
            row = got[key]
            assert row["shown"] == want["shown"], (annotator, key)
            assert row["acceptance_rate"] == pytest.approx(want["acceptance_rate"])
            accuracy = row["draft_accuracy"]
            assert (-1.0 if accuracy is None else accuracy) == pytest.approx(
                want["draft_accuracy"]
            ), (annotator, key)
            assert row["anchoring"] == want["anchoring"], (annotator, key)
    # One vote did not see its draft and one task had none: 3 * 70 - 3 - 1 votes count.
    everyone = next(r for r in rows if r["annotator_id"] == "*" and r["band"] == "all")
    assert everyone["shown"] == 3 * N_ITEMS - 3 - 1


def test_the_annotator_who_always_accepts_is_flagged(
    drafts: tuple[Client, Seen],
) -> None:
    client, _ = drafts
    overall = {r["annotator_id"]: r for r in _query(client, min_judged=10) if r["band"] == "all"}
    anchor = overall["annotator_anchor"]
    assert anchor["acceptance_rate"] == 1.0
    assert anchor["draft_accuracy"] == pytest.approx(0.6, abs=0.05)
    assert anchor["anchoring"] is True
    for careful in ("annotator_careful", "annotator_blunt"):
        assert overall[careful]["anchoring"] is False
        assert overall[careful]["anchoring_gap"] == pytest.approx(0.0, abs=0.05)
    # With too few judged votes nothing is flagged.
    assert not any(r["anchoring"] for r in _query(client, min_judged=10_000))


def test_audit_drafts_command(
    drafts: tuple[Client, Seen],
    drafts_dsn: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LABELTRAIL_CLICKHOUSE_DSN", drafts_dsn)
    runner = CliRunner()
    out = runner.invoke(app, ["audit", "drafts", "--json", "--min-judged", "10"])
    assert out.exit_code == 0, out.output
    rows = json.loads(out.output)
    flagged = {r["annotator_id"] for r in rows if r["anchoring"] and r["annotator_id"] != "*"}
    assert flagged == {"annotator_anchor"}  # the pool as a whole ('*') may cross in a band
    out = runner.invoke(app, ["audit", "drafts", "--edges", "0,0.8,1", "--json"])
    assert out.exit_code == 0, out.output
    assert {(r["band"], r["band_low"], r["band_high"]) for r in json.loads(out.output)} == {
        ("0", 0.0, 0.8),
        ("1", 0.8, 1.0),
        ("all", 0.0, 1.0),
    }
    assert runner.invoke(app, ["audit", "drafts"]).exit_code == 0  # the table
    out = runner.invoke(app, ["audit", "drafts", "--edges", "0.5"])
    assert out.exit_code != 0


def test_report_charts_draft_acceptance(drafts: tuple[Client, Seen], tmp_path: Path) -> None:
    client, _ = drafts
    page = write_report(client, tmp_path / "report.html")
    html = page.read_text()
    section = html[html.index("Model drafts") :]
    assert section.count('class="mark"') == 2 * (len(DEFAULT_BANDS) - 1)  # two bars a band
    assert "annotator_anchor" in section.split("</p>")[0]  # named in the note as flagged
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        unavailable("chromium not installed (apt-get install -y chromium)")
    dom = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    match = re.search(r'data-chart="drafts"[^>]*data-rendered="(\d+)x(\d+):(\d+)"', dom)
    assert match
    width, height, marks = map(int, match.groups())
    assert width > 0 and height > 0 and marks == 2 * (len(DEFAULT_BANDS) - 1)
