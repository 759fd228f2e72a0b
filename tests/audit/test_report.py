"""The HTML report opened in headless Chromium: every chart lays out and draws its marks."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from clickhouse_connect.driver.client import Client

from labeltrail.report.html import ReportOptions, write_report
from tests.unavailable import unavailable

CHARTS = ("iaa", "reliability", "blind_spots", "cost", "pool")


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        message = "chromium not installed (apt-get install -y chromium)"
        unavailable(message)
    return found


def test_report_charts_render_in_headless_chromium(loaded: Client, tmp_path: Path) -> None:
    chromium = _chromium()
    target = '{"en-US": 0.25, "en-IN": 0.25, "en-PH": 0.25, "en-GB": 0.25}'
    page = write_report(loaded, tmp_path / "report.html", ReportOptions(target=target))
    html = page.read_text()
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in html and "<link" not in html  # self-contained
    dom = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert f'data-charts-rendered="{len(CHARTS)}/{len(CHARTS)}"' in dom
    for name in CHARTS:
        match = re.search(rf'data-chart="{name}"[^>]*data-rendered="(\d+)x(\d+):(\d+)"', dom)
        assert match, name
        width, height, marks = map(int, match.groups())
        assert width > 0 and height > 0 and marks > 0, name
    assert "blind spots" in dom.lower() and "coded" in dom
