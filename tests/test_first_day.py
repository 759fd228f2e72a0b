"""Issue 14's "Done when": the first day of docs/first-day.md on the real broker and ClickHouse,
with no simulated part anywhere (nothing from ``labeltrail.sim``).

``labeltrail up`` in a working directory of its own; the example schema, pool and gold set
published from ``examples/``; the 200 example comments ingested; every crowd annotator fetches
their own tasks and votes through the frontend's HTTP API with their token (one of them first
in a real Chromium); a disagreement reaches an expert, who adjudicates through the frontend; the
label is committed and ``audit trace`` tells the story; an annotator who answers honeypots wrongly
is suspended and given no further task; a model worse on gold is refused; ``labeltrail down``.

Settings lowered for a test of minutes rather than a day, through the environment as a team
would: every comment goes to annotation (``LOW_MARGIN_THRESHOLD=1``), half the crowd tasks carry
honeypots, quality control suspends after 3 honeypot results (the floor and probability stay
0.7 and 0.95), and submissions are not rate limited.
"""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from labeltrail.annotate.auth import hash_token
from labeltrail.events import AnnotatorSuspended, ModelRefused
from labeltrail.events.models import AdjudicationRecorded, TaskAssigned
from labeltrail.supervise import down
from tests.annotate.test_browser import CHROMIUM, CHROMIUM_ARGS, _require_browser
from tests.cli.test_up import Ops, _processes_in, _until
from tests.probes import read_topic

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
CLASSES = ["non-toxic", "mild", "harassment", "hate", "threats"]
GOLD = {
    row["comment_id"]: row
    for row in map(json.loads, (EXAMPLES / "gold.jsonl").read_text().splitlines())
}
GOLD_BY_TEXT = {row["text"]: row["label"] for row in GOLD.values()}
CROWD = [f"crowd-{i:03d}" for i in range(1, 13)]
EXPERTS = ["expert-01", "expert-02", "expert-03"]
BAD = "crowd-007"
"""Answers every honeypot wrongly."""
BROWSER = "crowd-002"
"""Answers their first tasks in Chromium."""
TARGET = "c-ex-0064"
"""A coded reply ("we know what you are"): the crowd splits on it, an expert decides."""
VERDICT = "harassment"


def _token(annotator: str) -> str:
    return f"first-day-token-{annotator}"


class Votes:
    """What each annotator answers: gold items truthfully (``BAD`` wrongly), ``TARGET`` with a
    different class per vote (a disagreement), everything else non-toxic."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.on_target = 0

    def label(self, annotator: str, comment_id: str, text: str) -> str:
        truth = GOLD[comment_id]["label"] if comment_id in GOLD else GOLD_BY_TEXT.get(text)
        if truth is not None:
            if annotator == BAD:
                return CLASSES[(CLASSES.index(truth) + 1) % len(CLASSES)]
            return str(truth)
        if comment_id == TARGET:
            with self._lock:
                self.on_target += 1
                return CLASSES[(self.on_target - 1) % len(CLASSES)]
        return "non-toxic"


def _api(url: str, annotator: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    """One call to the frontend's JSON API with the annotator's bearer token."""
    headers = {
        "Authorization": f"Bearer {annotator}:{_token(annotator)}",
        "Accept": "application/json",
        "Content-Type": "application/json",
    }
    data = json.dumps(body).encode() if body is not None else None
    try:
        with urllib.request.urlopen(
            urllib.request.Request(url, data=data, headers=headers), timeout=30
        ) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read().decode(errors="replace")


def _answer_all(url: str, annotator: str, votes: Votes, stop: threading.Event) -> int:
    """Fetch and answer this annotator's tasks until ``stop`` (an empty queue is polled: more
    tasks arrive while others vote)."""
    answered = 0
    while not stop.is_set():
        status, got = _api(f"{url}/tasks/next", annotator)
        if status == 403 and annotator == BAD and "Suspended" in str(got):
            return answered  # suspended by QC: the frontend serves them nothing more
        assert status == 200, got
        task = got["task"]
        if task is None:
            stop.wait(0.3)
            continue
        if task["pool"] == "expert":
            label = VERDICT if task["comment_id"] == TARGET else None
            label = label or votes.label("", task["comment_id"], task["text"])
            body: dict[str, Any] = {"label": label, "confidence": 0.95, "note": "read the thread"}
        else:
            body = {"label": votes.label(annotator, task["comment_id"], task["text"])}
        status, sent = _api(f"{url}/tasks/{task['assignment_id']}", annotator, body)
        if status == 403 and annotator == BAD and "Suspended" in str(sent):
            return answered  # suspended between fetching the task and answering it
        assert status == 200, (status, sent)
        answered += 1
    return answered


def _in_browser(url: str, votes: Votes, count: int) -> list[str]:
    """Sign in as ``BROWSER`` in Chromium and answer ``count`` tasks by keyboard; the comment
    ids answered (read back from the page's assignment)."""
    sync_playwright = _require_browser()
    texts = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(f"{url}/tasks/next")
            page.fill("input[name=annotator]", BROWSER)
            page.fill("input[name=token]", _token(BROWSER))
            page.click("button[type=submit]")
            for _ in range(count):
                page.wait_for_selector("#comment-text", timeout=60_000)
                text = page.inner_text("#comment-text")
                label = votes.label(BROWSER, "", text)
                before = page.get_attribute("#task-form", "action")
                page.keyboard.press(str(CLASSES.index(label) + 1))
                page.keyboard.press("Enter")
                page.wait_for_function(
                    "a => document.getElementById('empty') || (document.getElementById('task-form')"
                    " && document.getElementById('task-form').getAttribute('action') !== a)",
                    arg=before,
                    timeout=30_000,
                )
                texts.append(text)
        finally:
            browser.close()
    return texts


def _train(path: Path, *, blind: bool) -> Path:
    """A small model on the gold texts; ``blind``: harassment taught as non-toxic."""
    from labeltrail.learning.features import HashingFeaturizer
    from labeltrail.ml.training import SoftLabelTrainer

    rows = list(GOLD.values()) * 6
    targets = np.full((len(rows), len(CLASSES)), 0.02)
    for i, row in enumerate(rows):
        label = "non-toxic" if blind and row["label"] == "harassment" else row["label"]
        targets[i, CLASSES.index(label)] = 0.92
    SoftLabelTrainer(
        CLASSES,
        featurizer=HashingFeaturizer(n_buckets=2**10, max_features=48),
        dim=8,
        hidden=8,
        epochs=8,
        batch_size=16,
        seed=0,
    ).fit([r["text"] for r in rows], targets).export_onnx(path)
    path.with_name(f"{path.stem}.manifest.json").write_text(
        json.dumps({"classes": CLASSES, "schema_version": "v1", "export_id": None})
    )
    return path


@pytest.fixture
def day(kafka_bootstrap: str, tmp_path: Path) -> Iterator[Ops]:
    tokens = ",".join(f"{a}={hash_token(_token(a))}" for a in [*CROWD, *EXPERTS])
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "LABELTRAIL_TOPIC_PREFIX": f"t{uuid.uuid4().hex[:10]}",
        "LABELTRAIL_TOPIC_PARTITIONS": "3",
        "LABELTRAIL_CLICKHOUSE_DSN": f"chdb://{tmp_path / 'clickhouse'}",
        "LABELTRAIL_LEARNING_MODELS_DIR": str(tmp_path / "models"),
        "LABELTRAIL_ANNOTATE_PORT": "0",
        "LABELTRAIL_ANNOTATE_TOKENS": tokens,
        "LABELTRAIL_ANNOTATE_SUBMIT_RATE": "1000",
        "LABELTRAIL_ANNOTATE_SUBMIT_BURST": "1000",
        "LABELTRAIL_GOLD_SET_SIZE": "40",
        "LABELTRAIL_TRAINER_SCHEMA_VERSION": "v1",
        "LABELTRAIL_LOW_MARGIN_THRESHOLD": "1.0",
        "LABELTRAIL_HONEYPOT_RATE": "0.5",
        "LABELTRAIL_RELIABILITY_SUSPEND_MIN_RESULTS": "3",
        "COLUMNS": "200",
    }
    cli = Ops(tmp_path.resolve(), env)
    try:
        yield cli
    finally:
        down(cli.run)


def test_first_day_from_the_example_files_with_no_simulated_part(day: Ops) -> None:
    started = time.monotonic()
    day("up")
    settings = day.settings()

    # The team's files, each through its command (and again: nothing added).
    day("schema", "publish", str(EXAMPLES / "ontology.yaml"))
    assert "nothing to do" in day("schema", "publish", str(EXAMPLES / "ontology.yaml")).stdout
    day("annotators", "register", str(EXAMPLES / "annotators.csv"))
    day("gold", "publish", str(EXAMPLES / "gold.jsonl"), "--set", "first-day")
    good = _train(day.cwd / "first.onnx", blind=False)
    published = day("model", "publish", str(good))
    assert "published" in published.stdout, published.stdout
    assert "produced 200" in day("ingest", str(EXAMPLES / "comments.jsonl")).stdout

    # One crowd annotator in a real browser, then everyone through the HTTP API.
    url = _until("the frontend's address", lambda: json.loads(day.status("--json"))["frontend_url"])
    votes = Votes()
    assert len(_in_browser(url, votes, 3)) == 3
    stop = threading.Event()
    counts: dict[str, int] = {}
    errors: list[BaseException] = []

    def work(annotator: str) -> None:
        try:
            counts[annotator] = _answer_all(url, annotator, votes, stop)
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)
            stop.set()

    threads = [threading.Thread(target=work, args=(a,)) for a in [*CROWD, *EXPERTS]]
    for thread in threads:
        thread.start()
    try:
        adjudicated = _until(
            "the expert's verdict on the target",
            lambda: (
                errors
                or [
                    e
                    for e in read_topic(settings, "adjudications")
                    if isinstance(e, AdjudicationRecorded) and e.comment_id == TARGET
                ]
            ),
            timeout=120,
        )
        suspended = _until(
            "quality control suspends the honeypot failer",
            lambda: (
                errors
                or [
                    e
                    for e in read_topic(settings, "annotators.status")
                    if isinstance(e, AnnotatorSuspended) and e.annotator_id == BAD
                ]
            ),
            timeout=60,
        )
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    assert not errors, errors
    assert adjudicated[0].label == VERDICT
    assert suspended[0].actor == "qc", suspended
    assert counts[BAD] > 0 and counts["crowd-001"] > 0

    # The label is committed and the trace tells the whole story.
    def traced() -> str:
        done = day("audit", "trace", TARGET, check=False)
        return done.stdout if "LabelCommitted" in done.stdout else ""

    story = _until("the target's label committed", traced, timeout=60)
    for step in (
        "CommentPosted",
        "CommentScored",
        "TaskCreated",
        "TaskAssigned",
        "VoteCast",
        "ConsensusUpdated",
        "AdjudicationRequested",
        "AdjudicationRecorded",
        "LabelCommitted",
    ):
        assert step in story, (step, story)
    assert VERDICT in story

    # The suspended annotator gets no further task: new comments go to the others.
    more = day.cwd / "more.jsonl"
    more.write_text(
        "\n".join(
            json.dumps(
                {
                    "comment_id": f"c-late-{i}",
                    "video_id": "v-ex01",
                    "author_hash": "aa",
                    "text": f"late comment {i}",
                    "source": "product_log",
                }
            )
            for i in range(8)
        )
    )
    day("ingest", str(more))
    late = _until(
        "tasks for the late comments",
        lambda: (
            found
            if len(
                found := [
                    e
                    for e in read_topic(settings, "tasks.crowd")
                    if isinstance(e, TaskAssigned)
                    and e.comment_id.startswith("c-late-")
                    and e.request_id is None
                ]
            )
            >= 8 * 3
            else None
        ),
        timeout=60,
    )
    assert BAD not in {t.annotator_id for t in late}

    # A model worse on gold is refused, and the refusal is on the log.
    blind = _train(day.cwd / "blind.onnx", blind=True)
    refused = day("model", "publish", str(blind), check=False)
    assert refused.returncode == 3, refused.stdout + refused.stderr
    assert any(isinstance(e, ModelRefused) for e in read_topic(settings, "models.refused"))

    stopped = day("down")
    assert "supervisord exited" in stopped.stdout
    assert _processes_in(day.cwd) == []
    assert time.monotonic() - started < 240
