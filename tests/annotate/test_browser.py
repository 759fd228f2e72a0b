"""The frontend in a real headless Chromium: sign in, label five tasks by keyboard.

Needs Debian's ``chromium`` (``/usr/bin/chromium``) and the Python ``playwright`` package;
Playwright drives the system browser by path and never downloads its own. Under ``CI=true`` a
missing browser or package is a failure, elsewhere a skip.
"""

from __future__ import annotations

import os
import shutil
import struct
from pathlib import Path
from typing import Any

import pytest

from labeltrail.annotate.queue import outcome_id
from labeltrail.annotate.server import AnnotateService, background_server
from labeltrail.config import Settings
from labeltrail.events.models import VoteCast
from tests.annotate.helpers import (
    TOKENS,
    make_task,
    publish_tasks,
    read_events,
    service_settings,
    token_store,
)
from tests.unavailable import unavailable

pytestmark = pytest.mark.integration

CHROMIUM = os.environ.get("LABELTRAIL_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _require_browser() -> Any:
    problems = []
    launcher: Any = None
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        problems.append(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright

        launcher = sync_playwright
    except ImportError:
        problems.append("python package playwright missing (pip install playwright)")
    if problems:
        message = "; ".join(problems)
        unavailable(message)
    return launcher


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


# (key presses, expected label) per task; task 0 carries a draft confirmed with Enter alone.
SESSION = [
    (["Enter"], "harassment"),
    (["1", "Enter"], "non-toxic"),
    (["q", "w", "w", "2", "Enter"], "mild"),
    (["5", "Enter"], "threats"),
    (["Escape", "4", "Enter"], "hate"),
]


def test_label_five_tasks_by_keyboard_in_chromium(
    pipeline_settings: Settings, tmp_path: Path
) -> None:
    sync_playwright = _require_browser()
    settings = pipeline_settings
    tasks = [
        make_task(
            "a47",
            0,
            text="you're really not what we said you'd be lol <b>not bold</b>",
            prelabel="harassment",
            confidence=0.41,
            context=["earlier: the creator's video thread"],
        ),
        *[make_task("a47", n) for n in range(1, 5)],
    ]
    other = make_task("b12", 99, text="SECRET task of b12")
    publish_tasks(settings, [*tasks, other])

    service = AnnotateService(service_settings(settings), tokens=token_store())
    shot = tmp_path / "task.png"
    blank = tmp_path / "blank.png"
    with background_server(service), sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 900})
            page.goto(f"{service.url}/tasks/next")
            assert page.url.endswith("/signin")
            page.fill("input[name=annotator]", "a47")
            page.fill("input[name=token]", TOKENS["a47"])
            page.click("button[type=submit]")
            page.wait_for_selector("#comment-text")

            # what the annotator sees on the first task, checked without OCR
            assert page.is_visible("#comment-text") and page.is_visible("#questions")
            text = page.inner_text("#comment-text")
            assert text == "you're really not what we said you'd be lol <b>not bold</b>"
            questions = page.locator(".question .qtext").all_inner_texts()
            assert questions == [
                "Contains a slur?",
                "Targets a group?",
                "Implies a threat?",
                "Requires context to interpret?",
            ]
            assert page.inner_text("#draft-label") == "harassment"
            assert page.inner_text("#draft-confidence") == "0.41"
            assert "creator's video thread" in page.inner_text("#context")
            assert "SECRET" not in page.content()
            page.screenshot(path=str(shot), full_page=True)

            for n, (keys, _) in enumerate(SESSION):
                page.wait_for_selector("#comment-text")
                assert page.inner_text("#comment-text").startswith(
                    "you're" if n == 0 else f"comment number {n}"
                )
                for key in keys:
                    page.keyboard.press(key)
                if n < len(SESSION) - 1:
                    page.wait_for_function(
                        "n => document.getElementById('comment-text') &&"
                        " document.getElementById('comment-text').textContent.endsWith(String(n))",
                        arg=n + 1,
                    )
            page.wait_for_selector("#empty")
            page.screenshot(path=str(blank))
        finally:
            browser.close()

    votes = [e for e in read_events(settings, "votes", want=5) if isinstance(e, VoteCast)]
    assert len(votes) == 5
    by_id = {v.vote_id: v for v in votes}
    for task, (_, label) in zip(tasks, SESSION, strict=True):
        vote = by_id[outcome_id(task)]
        assert (vote.annotator_id, vote.task_id, vote.label) == ("a47", task.task_id, label)
        assert vote.prelabel_shown is (task.prelabel is not None)
        assert 0 <= vote.time_spent_ms < 60_000
    assert by_id[outcome_id(tasks[2])].answers == {"q1_slur": "yes", "q2_targets_group": "no"}

    width, height = _png_size(shot)
    assert width == 1000 and height >= 500
    # a page with the comment, questions and classes carries far more ink than an empty one
    assert shot.stat().st_size > 2 * blank.stat().st_size > 0
    keep = os.environ.get("LABELTRAIL_SCREENSHOT_DIR")
    if keep:
        shutil.copy(shot, Path(keep) / "annotate-task.png")
