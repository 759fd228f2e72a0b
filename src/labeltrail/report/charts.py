"""The report's charts, drawn by matplotlib and embedded as inline SVG.

matplotlib's object API renders offline with no global state or GUI backend, and text stays
text (``svg.fonttype: none``); every chart is an ``<svg class="chart" data-chart=NAME>`` whose
data marks are ``class="mark"`` groups, so a test can check in a real browser that each chart
drew something.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import Any

import matplotlib as mpl
import matplotlib.dates as mdates
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from numpy.typing import NDArray

__all__ = ["Bins", "Point", "bar_chart", "crowd_band_chart", "reliability_diagram", "time_chart"]

Point = tuple[dt.datetime, float]
Bins = tuple[Sequence[float], Sequence[float], Sequence[int]]
"""A reliability diagram's bins: mean confidence, accuracy and item count per bin."""
_DAY = dt.timedelta(days=1)

WIDTH = 9.0
"""Figure width in inches; the page scales the SVG to its column."""
COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2")
_RC: dict[Any, Any] = {
    "svg.fonttype": "none",
    "font.family": "sans-serif",
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#e6e6e6",
    "axes.axisbelow": True,
}


def _mark(name: str, *parts: object) -> str:
    """The gid of a data mark: the SVG group gets ``class="mark"`` in :func:`_svg`."""
    return "mark-" + "-".join(re.sub(r"[^A-Za-z0-9_]+", "_", str(p)) for p in (name, *parts))


def _svg(fig: Figure, name: str, title: str) -> str:
    buf = io.StringIO()
    with mpl.rc_context({**_RC, "svg.hashsalt": name}):
        fig.savefig(buf, format="svg", metadata={"Date": None}, bbox_inches="tight")
    text = buf.getvalue()
    text = text[text.index("<svg") :]
    text = re.sub(r"<metadata>.*?</metadata>", "", text, count=1, flags=re.S)
    text = re.sub(
        r'<svg([^>]*?) width="[^"]*" height="[^"]*"',
        lambda m: (
            f'<svg class="chart" data-chart="{escape(name)}" role="img" '
            f'aria-label="{escape(title)}"{m.group(1)} width="100%"'
        ),
        text,
        count=1,
    )
    text = re.sub(r'(<g id="mark-)', r'<g class="mark" id="mark-', text)
    return text.replace(">", f"><title>{escape(title)}</title>", 1)


def _figure(rows: int, cols: int, height: float) -> tuple[Figure, list[Axes]]:
    with mpl.rc_context(_RC):
        fig = Figure(figsize=(WIDTH, height), layout="constrained")
        grid = fig.subplots(rows, cols, sharex=True, sharey=True, squeeze=False)
    return fig, [ax for row in grid for ax in row]


def _empty(name: str, title: str, message: str = "no data yet") -> str:
    fig, (ax,) = _figure(1, 1, 1.6)
    with mpl.rc_context(_RC):
        ax.set_axis_off()
        ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes)
        fig.suptitle(title, fontweight="bold")
    return _svg(fig, name, title)


def _date_axis(ax: Axes, first: dt.datetime, last: dt.datetime) -> None:
    """Dates as "Sep 08"; a history of a few days gets the hour too, one of less than a day
    a day's width."""
    span = last - first
    if span < _DAY:
        ax.set_xlim(_num(first - _DAY / 2), _num(last + _DAY / 2))
    maxticks = 8 if span >= 4 * _DAY else 5
    locator = mdates.AutoDateLocator(minticks=3, maxticks=maxticks)  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    fmt = "%b %d" if span >= 4 * _DAY else "%b %d\n%H:%M"
    ax.xaxis.set_major_formatter(mdates.DateFormatter(fmt))  # type: ignore[no-untyped-call]


def _spread(values: list[float], gap: float) -> list[float]:
    """Label heights for ``values`` (ascending), moved apart to at least ``gap``."""
    out: list[float] = []
    for v in values:
        out.append(max(v, out[-1] + gap) if out else v)
    return out


def _label_axes(axes: list[Axes], used: int, cols: int, xlabel: str, ylabel: str) -> None:
    """Hide the grid's unused cells; x labels under the lowest panel of each column (its tick
    labels shown even when the cell below is the hidden one), y labels on the left column."""
    for ax in axes[used:]:
        ax.set_visible(False)
    for col in range(cols):
        lowest = axes[col:used:cols][-1]
        lowest.xaxis.set_tick_params(labelbottom=True)
        lowest.set_xlabel(xlabel)
    for ax in axes[:used:cols]:
        ax.set_ylabel(ylabel)


def _span(series: Iterable[Sequence[Point]]) -> tuple[dt.datetime, dt.datetime]:
    times = [t for pts in series for t, _ in pts]
    return min(times), max(times)


def _layout(n: int) -> tuple[int, int]:
    cols = 1 if n == 1 else 2
    return (n + cols - 1) // cols, cols


def time_chart(
    name: str,
    panels: Mapping[str, Mapping[str, Sequence[Point]]],
    *,
    title: str,
    ylabel: str,
    xlabel: str,
    y_range: tuple[float, float] = (0.0, 1.02),
) -> str:
    """Lines over time with a marker per point: one panel per key of ``panels`` (small
    multiples on shared axes), one line per series, the same color for a series in every panel;
    a NaN value breaks the line."""
    panels = {
        p: {s: _points(pts, gaps=True) for s, pts in series.items()} for p, series in panels.items()
    }
    panels = {
        p: {s: pts for s, pts in series.items() if any(not np.isnan(v) for _, v in pts)}
        for p, series in panels.items()
    }
    panels = {p: series for p, series in panels.items() if series}
    if not panels:
        return _empty(name, title)
    names = list(dict.fromkeys(s for series in panels.values() for s in series))
    span = _span(pts for series in panels.values() for pts in series.values())
    color = {s: COLORS[i % len(COLORS)] for i, s in enumerate(names)}
    rows, cols = _layout(len(panels))
    fig, axes = _figure(rows, cols, 1.2 + 2.3 * rows)
    with mpl.rc_context(_RC):
        for ax, (panel, series) in zip(axes, panels.items(), strict=False):
            for label, pts in series.items():
                xs = _times(t for t, _ in pts)
                _line(ax, (name, panel, label), xs, [v for _, v in pts], color[label])
            ax.set_title(panel, loc="left")
            ax.set_ylim(*y_range)
            _date_axis(ax, *span)
        _label_axes(axes, len(panels), cols, xlabel, ylabel)
        _legend(fig, names, color, title)
    return _svg(fig, name, title)


def _line(ax: Axes, mark: tuple[str, str, str], xs: Any, ys: Sequence[float], color: str) -> None:
    """One series as a line with a marker per point, a data mark named (chart, panel, series)."""
    ax.plot(
        xs,
        ys,
        marker="o",
        markersize=3.5,
        linewidth=1.6,
        color=color,
        label=mark[2],
        gid=_mark(*mark),
    )


def _legend(fig: Figure, names: list[str], color: Mapping[str, str], title: str) -> None:
    """The series' legend under the panels and the chart's title above them."""
    handles = [Line2D([], [], color=color[s], marker="o", markersize=4, label=s) for s in names]
    fig.legend(handles=handles, loc="outside lower center", ncols=len(names), frameon=False)
    fig.suptitle(title, fontweight="bold", x=0.01, ha="left")


def _as_of(days: list[dt.datetime], pts: Sequence[Point]) -> list[float]:
    """The last value at or before the end of each day (NaN before the first)."""
    ordered = list(pts)
    times = np.array([_np(t) for t, _ in ordered])
    ends = np.array([_np(day + _DAY) for day in days])
    found = np.searchsorted(times, ends, side="right") - 1
    return [ordered[i][1] if i >= 0 else float("nan") for i in found]


def _np(t: dt.datetime) -> np.datetime64:
    return np.datetime64(_utc(t).replace(tzinfo=None), "us")


def _times(ts: Iterable[dt.datetime]) -> NDArray[np.datetime64]:
    return np.array([_np(t) for t in ts], dtype="datetime64[us]")


def _num(t: dt.datetime) -> float:
    """matplotlib's date number (days since its default epoch, 1970-01-01)."""
    return float((_np(t) - np.datetime64("1970-01-01T00:00:00", "us")) / np.timedelta64(1, "D"))


def _utc(t: dt.datetime) -> dt.datetime:
    """Aware UTC (a naive time from ClickHouse is UTC already)."""
    return t.replace(tzinfo=dt.UTC) if t.tzinfo is None else t.astimezone(dt.UTC)


def _points(pts: Sequence[Point], *, gaps: bool = False) -> list[Point]:
    """Sorted, in aware UTC; NaN values (gaps in a line) dropped unless ``gaps``."""
    return sorted((_utc(t), v) for t, v in pts if gaps or not np.isnan(v))


def crowd_band_chart(
    name: str,
    panels: Mapping[str, Mapping[str, Sequence[Point]]],
    *,
    title: str,
    ylabel: str,
    highlight: int = 3,
) -> str:
    """Many trajectories as the crowd's band: at the end of each day, every annotator's latest
    value; the 10th-90th percentile band and the median, plus the ``highlight`` lowest and
    highest annotators (by their last value) as labelled lines on the same daily grid. One
    panel per key of ``panels``."""
    panels = {p: {a: _points(pts) for a, pts in by.items()} for p, by in panels.items()}
    panels = {p: {a: pts for a, pts in by.items() if pts} for p, by in panels.items()}
    panels = {p: by for p, by in panels.items() if by}
    if not panels:
        return _empty(name, title)
    span = _span(pts for by in panels.values() for pts in by.values())
    rows, cols = _layout(len(panels))
    fig, axes = _figure(rows, cols, 1.2 + 2.8 * rows)
    low_color, high_color, band_color = "#d62728", "#2ca02c", "#1f77b4"
    with mpl.rc_context(_RC):
        for ax, (panel, by) in zip(axes, panels.items(), strict=False):
            first = min(t for pts in by.values() for t, _ in pts)
            last = max(t for pts in by.values() for t, _ in pts)
            start = dt.datetime.combine(first.date(), dt.time(), tzinfo=dt.UTC)
            days = [start + _DAY * i for i in range((last - start).days + 1)]
            ends = [min(d + _DAY, last) for d in days]
            grid = np.array([_as_of(days, pts) for pts in by.values()])
            known = np.sum(~np.isnan(grid), axis=0) >= 3
            with np.errstate(all="ignore"):
                lo, mid, hi = (
                    np.nanpercentile(np.where(known, grid, 0.0), q, axis=0) for q in (10, 50, 90)
                )
            x = _times(e for e, k in zip(ends, known, strict=True) if k)
            ax.fill_between(
                x,
                lo[known],
                hi[known],
                color=band_color,
                alpha=0.18,
                linewidth=0,
                label=f"crowd 10th-90th percentile ({len(by)} annotators)",
                gid=_mark(name, panel, "band"),
            )
            ax.plot(
                x,
                mid[known],
                color=band_color,
                linewidth=2,
                marker="o" if len(x) == 1 else "",
                label="crowd median",
                gid=_mark(name, panel, "median"),
            )
            final = {a: pts[-1][1] for a, pts in by.items()}
            ranked = sorted(final, key=lambda a: (final[a], a))
            k = min(highlight, len(ranked) // 2)
            picks = [(a, low_color) for a in ranked[:k]]
            picks += [(a, high_color) for a in ranked[len(ranked) - k :]]
            heights = _spread([final[a] for a, _ in picks], 0.045)
            daily = dict(zip(by, grid, strict=True))
            for (annotator, color), height in zip(picks, heights, strict=True):
                ax.plot(
                    _times(ends),
                    daily[annotator],
                    color=color,
                    linewidth=1.1,
                    alpha=0.9,
                    gid=_mark(name, panel, annotator),
                )
                ax.annotate(
                    f"{annotator} {final[annotator]:.2f}",
                    (_num(ends[-1]), height),
                    xytext=(4, 0),
                    textcoords="offset points",
                    fontsize=8,
                    color=color,
                    va="center",
                )
            ax.set_title(panel, loc="left")
            ax.set_ylim(0, 1.02)
            _date_axis(ax, *span)
        _label_axes(axes, len(panels), cols, "date (UTC)", ylabel)
        left, right = axes[0].get_xlim()  # room on the right for the annotators' names
        axes[0].set_xlim(left, right + (right - left) * 0.3)
        handles, _ = axes[0].get_legend_handles_labels()
        handles += [
            Line2D([], [], color=low_color, label=f"lowest {highlight}"),
            Line2D([], [], color=high_color, label=f"highest {highlight}"),
        ]
        fig.legend(handles=handles, loc="outside lower center", ncols=4, frameon=False)
        fig.suptitle(title, fontweight="bold", x=0.01, ha="left")
    return _svg(fig, name, title)


def bar_chart(
    name: str,
    categories: Sequence[str],
    series: Mapping[str, Sequence[float | None]],
    *,
    title: str,
    ylabel: str,
    xlabel: str,
    y_max: float | None = None,
    fmt: str = "{:.2f}",
    colors: Sequence[str] = COLORS,
) -> str:
    """Grouped bars, one group per category and one bar per series, each labelled with its
    value; a missing value draws no bar."""
    if not categories:
        return _empty(name, title)
    fig, (ax,) = _figure(1, 1, 3.0)
    n = max(len(series), 1)
    width = min(0.8 / n, 0.5)
    x = np.arange(len(categories))
    labelled: set[str] = set()
    with mpl.rc_context(_RC):
        for s, (label, values) in enumerate(series.items()):
            for c, value in enumerate(values):
                if value is None:
                    continue
                bars = ax.bar(
                    x[c] + width * (s + 0.5 - n / 2),
                    value,
                    width * 0.95,
                    color=colors[s % len(colors)],
                    label="_nolegend_" if label in labelled else label,
                    gid=_mark(name, s, c),
                )
                labelled.add(label)
                ax.bar_label(bars, labels=[fmt.format(value)], fontsize=8, padding=2)
        ax.set_xticks(x, [c if len(c) <= 22 else c[:21] + "…" for c in categories])
        if len(categories) > 5:
            ax.tick_params(axis="x", labelrotation=20)
        top = y_max if y_max is not None else ax.get_ylim()[1]
        ax.set_ylim(0, top * 1.12)
        ax.set_ylabel(ylabel)
        ax.set_xlabel(xlabel)
        ax.grid(axis="x", visible=False)
        if len(series) > 1:
            ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
        ax.set_title(title, fontweight="bold", loc="left")
    return _svg(fig, name, title)


def reliability_diagram(
    name: str, panels: Mapping[str, Mapping[str, Bins]], *, title: str, xlabel: str, ylabel: str
) -> str:
    """Accuracy against mean confidence per confidence bin, one line per series (before and
    after calibration, say) and a panel per key of ``panels``; the diagonal is perfect
    calibration. Empty bins are left out; each point is labelled with its item count."""
    panels = {p: s for p, s in panels.items() if any(sum(b[2]) for b in s.values())}
    if not panels:
        return _empty(name, title)
    names = list(dict.fromkeys(s for series in panels.values() for s in series))
    color = {s: COLORS[i % len(COLORS)] for i, s in enumerate(names)}
    rows, cols = _layout(len(panels))
    fig, axes = _figure(rows, cols, 1.2 + 3.0 * rows)
    with mpl.rc_context(_RC):
        for ax, (panel, series) in zip(axes, panels.items(), strict=False):
            ax.plot([0, 1], [0, 1], linestyle="--", color="#a0a0a0", linewidth=1)
            for label, (conf, acc, count) in series.items():
                kept = [(c, a, n) for c, a, n in zip(conf, acc, count, strict=True) if n]
                xs, ys = [c for c, _, _ in kept], [a for _, a, _ in kept]
                _line(ax, (name, panel, label), xs, ys, color[label])
                for c, a, n in kept:
                    ax.annotate(
                        str(n),
                        (c, a),
                        fontsize=7,
                        xytext=(3, 3),
                        textcoords="offset points",
                        color=color[label],
                    )
            ax.set_title(panel, loc="left")
            ax.set_xlim(0, 1.02)
            ax.set_ylim(0, 1.05)
        _label_axes(axes, len(panels), cols, xlabel, ylabel)
        _legend(fig, names, color, title)
    return _svg(fig, name, title)
