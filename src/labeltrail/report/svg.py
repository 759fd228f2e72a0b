"""Small inline-SVG charts: no JavaScript library, no network, readable in any browser.

Every chart is an ``<svg class="chart">`` whose data marks carry ``class="mark"``, so a test can
check in a real browser that each chart laid out and drew its marks.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from html import escape

__all__ = ["bar_chart", "line_chart"]

W, H = 640, 260
LEFT, RIGHT, TOP, BOTTOM = 48, 150, 16, 36
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")

Point = tuple[dt.datetime, float]


def _frame(name: str, body: list[str], title: str) -> str:
    return (
        f'<svg class="chart" data-chart="{escape(name)}" viewBox="0 0 {W} {H}" '
        f'width="{W}" height="{H}" role="img" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{escape(title)}</title>" + "".join(body) + "</svg>"
    )


def _y_axis(lo: float, hi: float, fmt: str = "{:.2f}") -> list[str]:
    out = []
    for i in range(5):
        value = lo + (hi - lo) * i / 4
        y = TOP + (H - TOP - BOTTOM) * (1 - i / 4)
        out.append(
            f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>'
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end">'
            f"{escape(fmt.format(value))}</text>"
        )
    return out


def _legend(names: Sequence[str]) -> list[str]:
    out = []
    for i, name in enumerate(names[:12]):
        y = TOP + 14 * i + 8
        color = PALETTE[i % len(PALETTE)]
        out.append(
            f'<rect x="{W - RIGHT + 10}" y="{y - 8}" width="10" height="10" fill="{color}"/>'
            f'<text x="{W - RIGHT + 24}" y="{y + 1}" font-size="11">{escape(name[:20])}</text>'
        )
    return out


def line_chart(
    name: str,
    series: Mapping[str, Sequence[Point]],
    *,
    title: str,
    y_range: tuple[float, float] = (0.0, 1.0),
) -> str:
    """Lines over time, one per series, with dots on the points (the marks)."""
    points = [p for s in series.values() for p in s]
    body = _y_axis(*y_range)
    if not points:
        body.append(f'<text x="{LEFT + 10}" y="{H / 2}" font-size="13">no data yet</text>')
        return _frame(name, body, title)
    t0 = min(p[0] for p in points).timestamp()
    t1 = max(p[0] for p in points).timestamp()
    span = (t1 - t0) or 1.0
    lo, hi = y_range

    def xy(p: Point) -> tuple[float, float]:
        x = LEFT + (W - LEFT - RIGHT) * (p[0].timestamp() - t0) / span
        frac = (min(max(p[1], lo), hi) - lo) / ((hi - lo) or 1.0)
        return x, TOP + (H - TOP - BOTTOM) * (1 - frac)

    for i, (label, pts) in enumerate(series.items()):
        color = PALETTE[i % len(PALETTE)]
        coords = [xy(p) for p in sorted(pts)]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
        body.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        body += [
            f'<circle class="mark" cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}">'
            f"<title>{escape(label)}</title></circle>"
            for x, y in coords
        ]
    for t, anchor in ((t0, "start"), (t1, "end")):
        x = LEFT if anchor == "start" else W - RIGHT
        stamp = dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%d")
        body.append(
            f'<text x="{x}" y="{H - 12}" font-size="11" text-anchor="{anchor}">{stamp}</text>'
        )
    body += _legend(list(series))
    return _frame(name, body, title)


def bar_chart(
    name: str,
    categories: Sequence[str],
    series: Mapping[str, Sequence[float | None]],
    *,
    title: str,
    y_max: float | None = None,
    fmt: str = "{:.2f}",
) -> str:
    """Grouped bars: one group per category, one bar per series (the marks)."""
    values = [v for s in series.values() for v in s if v is not None]
    top = y_max if y_max is not None else (max(values) if values else 1.0) or 1.0
    body = _y_axis(0.0, top, fmt)
    if not categories:
        body.append(f'<text x="{LEFT + 10}" y="{H / 2}" font-size="13">no data yet</text>')
        return _frame(name, body, title)
    plot_w = W - LEFT - RIGHT
    group_w = plot_w / len(categories)
    bar_w = max(group_w * 0.8 / max(len(series), 1), 1.0)
    for c, category in enumerate(categories):
        x0 = LEFT + c * group_w + group_w * 0.1
        for s, (label, vals) in enumerate(series.items()):
            value = vals[c]
            if value is None:
                continue
            height = (H - TOP - BOTTOM) * min(value, top) / top
            x = x0 + s * bar_w
            body.append(
                f'<rect class="mark" x="{x:.1f}" y="{H - BOTTOM - height:.1f}" '
                f'width="{bar_w:.1f}" height="{max(height, 0.5):.1f}" '
                f'fill="{PALETTE[s % len(PALETTE)]}"><title>{escape(label)} '
                f"{escape(category)}: {escape(fmt.format(value))}</title></rect>"
            )
        body.append(
            f'<text x="{x0 + group_w * 0.4:.1f}" y="{H - 20}" font-size="10" '
            f'text-anchor="middle">{escape(category[:14])}</text>'
        )
    body += _legend(list(series))
    return _frame(name, body, title)
