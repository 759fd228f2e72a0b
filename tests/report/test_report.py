"""The HTML report on a 30-day history, opened in headless Chromium (Playwright drives Debian's
``chromium``): every chart is an SVG with its title, axis labels and drawn marks; the agreement
chart has a point on each of at least 20 days on a date axis; the pool chart draws actual and
target bars; and a full-page screenshot is taken (``report.png`` in the test's tmp dir)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client
from PIL import Image

from labeltrail.clickhouse.client import apply_ddl, client_from
from labeltrail.config import Settings
from labeltrail.folds.iaa import IaaFold
from labeltrail.folds.reliability import ReliabilityConfig, ReliabilityFold
from labeltrail.report.html import ReportOptions, write_report
from labeltrail.sim import Platform, PlatformConfig
from labeltrail.sim.demo import DEMO_DAYS
from tests.annotate.test_browser import CHROMIUM, CHROMIUM_ARGS, _require_browser
from tests.audit.history import blind_spot_scenario, project
from tests.folds.helpers import run_in_memory

# chart -> (y axis label, x axis label)
CHARTS = {
    "iaa": ("share", "day (UTC)"),
    "reliability": ("estimated accuracy", "date (UTC)"),
    "blind_spots": ("share", "slice and schema version"),
    "cost": ("USD per final label", "route"),
    "pool": ("share of annotators behind labels", "locale"),
}
LOCALES = ("en-US", "en-IN", "en-PH", "en-GB")

_READ_CHART = """name => {
  const svg = document.querySelector(`svg.chart[data-chart="${name}"]`);
  if (!svg) { return null; }
  const box = svg.getBoundingClientRect();
  return {
    width: box.width, height: box.height,
    marks: svg.querySelectorAll('.mark').length,
    texts: Array.from(svg.querySelectorAll('text')).map(t => t.textContent.trim()),
  };
}"""
_AGREEMENT_POINTS = """() => Array.from(document.querySelectorAll(
  'svg.chart[data-chart="iaa"] g[id="mark-iaa-all_slices-agreement"] use'
)).map(u => u.getAttribute('x'))"""


@pytest.fixture(scope="module")
def month(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    """The demo's world over its 30 days, through the demo's folds (reliability and iaa
    included), projected into a real chdb; plus a small slice the crowd gets wrong."""
    platform = Platform(PlatformConfig.sized(1000, seed=5, days=DEMO_DAYS))
    replay = run_in_memory(
        platform, [ReliabilityFold(ReliabilityConfig(refit_on_drain=True)), IaaFold()]
    )
    events = [event for log in replay.log.values() for event in log]
    client = client_from(Settings(clickhouse_dsn=f"chdb://{tmp_path_factory.mktemp('report-ch')}"))
    apply_ddl(client)
    project(client, [*events, *blind_spot_scenario()])
    yield client
    client.close()  # chdb serves one path per process at a time


def _date_ticks(texts: list[str]) -> list[dt.date]:
    return [
        dt.datetime.strptime(f"2024 {t}", "%Y %b %d").date()
        for t in texts
        if re.fullmatch(r"[A-Z][a-z]{2} \d{2}", t)
    ]


def test_report_on_a_month_renders_readable_charts_in_chromium(
    month: Client, tmp_path: Path
) -> None:
    sync_playwright = _require_browser()
    target = '{"en-US": 0.4, "en-IN": 0.2, "en-PH": 0.2, "en-GB": 0.2}'
    page_path = write_report(month, tmp_path / "report.html", ReportOptions(target=target))
    html = page_path.read_text()
    assert "https://" not in html and "<link" not in html  # self-contained
    assert "http://" not in re.sub(r'xmlns(:\w+)?="http://www\.w3\.org/[^"]*"', "", html)
    assert "no data yet" not in html

    shot = tmp_path / "report.png"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.goto(page_path.as_uri())
            charts: dict[str, Any] = {name: page.evaluate(_READ_CHART, name) for name in CHARTS}
            xs = page.evaluate(_AGREEMENT_POINTS)
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()

    for name, (ylabel, xlabel) in CHARTS.items():
        chart = charts[name]
        assert chart is not None, f"{name}: no <svg class=chart>"
        assert chart["width"] >= 600 and chart["height"] >= 150, (name, chart)
        assert chart["marks"] > 0, f"{name}: nothing drawn"
        assert ylabel in chart["texts"] and xlabel in chart["texts"], (name, chart["texts"])

    # agreement over time: one point per day across the month, on a readable date axis
    assert len({round(float(x)) for x in xs}) >= 20, xs
    ticks = _date_ticks(charts["iaa"]["texts"])
    assert len(ticks) >= 3 and (max(ticks) - min(ticks)).days >= 20, charts["iaa"]["texts"]
    assert {"agreement", "gold accuracy", "all slices"} <= set(charts["iaa"]["texts"])

    # reliability: the crowd's band and median, the lowest and highest annotators named
    texts = charts["reliability"]["texts"]
    assert {"crowd median", "lowest 3", "highest 3"} <= set(texts)
    assert sum(t.startswith("annotator_") for t in texts) >= 6
    assert charts["reliability"]["marks"] >= 2 + 6

    # pool: an actual and a target bar for every locale
    assert charts["pool"]["marks"] == 2 * len(LOCALES)
    assert {"actual share", "target share", *LOCALES} <= set(charts["pool"]["texts"])
    assert "blind spots" in html.lower() and "coded" in html

    with Image.open(shot) as image:
        width, height = image.size
        assert width == 1100 and height >= 2000
        inked = sum(image.convert("L").histogram()[:200]) / (width * height)
    assert inked > 0.02, "the screenshot is (nearly) blank"
