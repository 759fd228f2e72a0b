"""The auditor's report: one self-contained HTML page built from the named audit queries.

Each chart (inline SVG from :mod:`labeltrail.report.charts`, nothing fetched when the page
is opened) is followed by the rows it was drawn from and the named query that produced them,
so an auditor can rerun the SQL. The charts: ``docs/audit.md`` ("Report").
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

from labeltrail.audit import to_jsonable
from labeltrail.clickhouse.client import Client, run_named
from labeltrail.learning.prelabel import DEFAULT_BANDS
from labeltrail.report.charts import (
    Bins,
    Point,
    bar_chart,
    crowd_band_chart,
    reliability_diagram,
    time_chart,
)

__all__ = ["ReportOptions", "build_report", "write_report"]

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:60rem;color:#222}
figure{margin:.5rem 0}svg.chart{display:block;height:auto}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem}
table{border-collapse:collapse;font-size:.8rem;margin:.5rem 0}
td,th{border:1px solid #ccc;padding:2px 6px;text-align:left}
.q{color:#666;font-size:.8rem}.flag{color:#b00;font-weight:600}
details{margin:.3rem 0 1rem}
"""

# Reads back what the browser laid out: each chart's size and drawn marks, for tests.
_SCRIPT = """
window.addEventListener('load', function () {
  var charts = document.querySelectorAll('svg.chart'), ok = 0;
  charts.forEach(function (svg) {
    var box = svg.getBoundingClientRect(), marks = svg.querySelectorAll('.mark').length;
    svg.setAttribute('data-rendered', Math.round(box.width) + 'x' + Math.round(box.height)
      + ':' + marks);
    if (box.width > 0 && box.height > 0 && marks > 0) { ok += 1; }
  });
  document.body.setAttribute('data-charts-rendered', ok + '/' + charts.length);
});
"""


@dataclass(frozen=True)
class ReportOptions:
    """What to slice and chart by."""

    slice_key: str = "slice"
    attribute: str = "locale"
    target: str = "{}"
    """Target pool mix as JSON; empty (``{}``) compares with an even split over the values seen."""
    days: int = 1
    """Window length of the agreement chart, in days."""
    pooled_days: int = 7
    """Each point of the agreement chart pools the windows of this many days up to it."""
    blind_min_agreement: float = 0.8
    blind_max_gold_accuracy: float = 0.6
    blind_min_gold: int = 5
    draft_edges: tuple[float, ...] = DEFAULT_BANDS
    draft_alert: float = 0.15
    draft_min_judged: int = 10


def _table(rows: list[dict[str, Any]], limit: int = 50) -> str:
    if not rows:
        return "<p><em>no rows</em></p>"
    head = "".join(f"<th>{escape(str(k))}</th>" for k in rows[0])
    body = []
    for row in rows[:limit]:
        cells = []
        for v in to_jsonable(row).values():
            text = f"{v:.4g}" if isinstance(v, float) else json.dumps(v) if v is not None else "-"
            cells.append(f"<td>{escape(text.strip(chr(34)))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    more = f"<p class=q>{len(rows) - limit} more rows</p>" if len(rows) > limit else ""
    return f"<table><tr>{head}</tr>{''.join(body)}</table>{more}"


def _section(title: str, chart: str, rows: list[dict[str, Any]], query: str, note: str) -> str:
    return (
        f"<section><h2>{escape(title)}</h2><p>{note}</p><figure>{chart}</figure>"
        f"<details><summary>data (named query <code>{escape(query)}</code>)</summary>"
        f"{_table(rows)}</details></section>"
    )


def _note_only(title: str, note: str) -> str:
    """A section with nothing to chart yet: its title and why."""
    return f"<section><h2>{title}</h2><p>{note}</p></section>"


def _weighted(
    rows: list[dict[str, Any]],
    value: str,
    weight: str,
    pooled: dt.timedelta,
    min_weight: int = 1,
) -> list[Point]:
    """Per window start, the ``weight``-weighted mean of ``value`` over the windows that start
    within ``pooled`` up to it (the window itself when ``pooled`` is shorter than a window);
    NaN (a gap in the line) where they weigh less than ``min_weight``."""
    sums: dict[dt.datetime, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for r in rows:
        if r[value] is not None and r[weight]:
            acc = sums[r["window_start"]]
            acc[0] += r[value] * r[weight]
            acc[1] += r[weight]
    out: list[Point] = []
    for t in sorted({r["window_start"] for r in rows}):
        inside = [sums[w] for w in sums if t - pooled < w <= t]
        n = sum(w for _, w in inside)
        out.append((t, sum(s for s, _ in inside) / n if n >= min_weight else float("nan")))
    return out


def _iaa(client: Client, o: ReportOptions) -> str:
    rows = run_named(client, "iaa", days=o.days, slice_key=o.slice_key, schema_version="")
    label = [r for r in rows if r["question"] == "label" and r["source"] == "projection"]
    pooled = dt.timedelta(days=max(o.pooled_days, o.days))
    gold = o.blind_min_gold
    panels = {"all slices": _agreement_and_gold(label, pooled, gold)}
    for s in sorted({r["slice"] for r in label if r["slice"]}):
        part = [r for r in label if r["slice"] == s]
        panels[f"slice {s}"] = _agreement_and_gold(part, pooled, gold)
    window = "day" if o.days == 1 else f"{o.days}-day window"
    over = f"the {pooled.days} days up to it" if pooled.days > o.days else "that window"
    chart = time_chart(
        "iaa",
        panels,
        title=f"Agreement and gold accuracy per {window}",
        ylabel="share",
        xlabel=f"{window} (UTC)",
    )
    note = (
        f"Crowd per-item agreement on the label beside accuracy against the gold set, one "
        f"point per {window} pooling {over} (gold votes are few per day; gold accuracy is "
        f"drawn where the pool holds &ge; {gold} gold votes), for all items and per slice. "
        "Agreement is not correctness: watch for slices where the two lines part."
    )
    return _section("Agreement and gold accuracy over time", chart, rows, "iaa", note)


def _agreement_and_gold(
    rows: list[dict[str, Any]], pooled: dt.timedelta, min_gold: int
) -> dict[str, list[Point]]:
    return {
        "agreement": _weighted(rows, "agreement", "n_items", pooled),
        "gold accuracy": _weighted(rows, "gold_accuracy", "n_gold_votes", pooled, min_gold),
    }


_METHODS = {
    "beta_gold": "gold and expert verdicts (Beta posterior mean)",
    "dawid_skene": "weekly Dawid-Skene refit",
    "running": "running honeypot accuracy",
}


def _reliability(client: Client) -> str:
    rows = run_named(client, "reliability_trajectories", schema_version="")
    stream = any(r["source"] == "reliability" for r in rows)
    panels: dict[str, dict[str, list[Point]]] = {}
    for r in rows:
        if (r["source"] == "reliability") == stream and r["accuracy"] is not None:
            panel = _METHODS.get(r["method"], r["method"])
            panels.setdefault(panel, defaultdict(list))[r["annotator_id"]].append(
                (r["at"], r["accuracy"])
            )
    chart = crowd_band_chart(
        "reliability",
        panels,
        title="Annotator reliability: the crowd's band, lowest and highest annotators",
        ylabel="estimated accuracy",
    )
    source = "the reliability stage's estimates" if stream else "running honeypot accuracy"
    note = (
        f"From {source}: each day, every annotator's latest estimate; the band holds the middle "
        "80% of the crowd, the lines the three lowest and three highest annotators by their "
        "latest estimate."
    )
    return _section("Reliability trajectories", chart, rows, "reliability_trajectories", note)


def _blind_spots(client: Client, o: ReportOptions) -> str:
    rows = run_named(
        client,
        "blind_spots",
        min_agreement=0.0,
        max_gold_accuracy=1.0,
        min_gold=1,
        slice_key=o.slice_key,
    )
    proj = [r for r in rows if r["source"] == "projection"]
    cats = [f"{r['slice'] or '(none)'} {r['schema_version']}" for r in proj]
    chart = bar_chart(
        "blind_spots",
        cats,
        {
            "agreement": [r["agreement"] for r in proj],
            "gold accuracy": [r["gold_accuracy"] for r in proj],
        },
        title="Agreement vs gold accuracy by slice",
        ylabel="share",
        xlabel="slice and schema version",
        y_max=1.0,
    )
    flagged = [
        r
        for r in proj
        if (r["agreement"] or 0) >= o.blind_min_agreement
        and (r["gold_accuracy"] if r["gold_accuracy"] is not None else 1)
        <= o.blind_max_gold_accuracy
        and r["n_gold_votes"] >= o.blind_min_gold
    ]
    names = ", ".join(escape(str(r["slice"])) for r in flagged) or "none"
    note = (
        f"Blind spots (agreement &ge; {o.blind_min_agreement}, gold accuracy &le; "
        f"{o.blind_max_gold_accuracy}, &ge; {o.blind_min_gold} gold votes): "
        f"<span class=flag>{names}</span>."
    )
    return _section("Blind-spot slices", chart, rows, "blind_spots", note)


def _cost(client: Client) -> str:
    rows = run_named(client, "cost", schema_version="")
    chart = bar_chart(
        "cost",
        [r["route"] for r in rows],
        {"USD per final label": [r["usd_per_label"] for r in rows]},
        title="Cost per final label by route",
        ylabel="USD per final label",
        xlabel="route",
        fmt="${:.2f}",
    )
    note = "Crowd redundancy, honeypots and expert adjudication, per final label."
    return _section("Cost per final label", chart, rows, "cost", note)


def _pool(client: Client, o: ReportOptions) -> str:
    def query(target: str) -> list[dict[str, Any]]:
        return run_named(
            client,
            "pool",
            attribute=o.attribute,
            slice_key=o.slice_key,
            schema_version="",
            target=target,
        )

    rows = query(o.target)
    given = bool(json.loads(o.target or "{}"))
    if not given:
        values = sorted({str(r["value"]) for r in rows if r["label_class"] == "*"})
        rows = query(json.dumps({v: 1 / len(values) for v in values})) if values else rows
    overall = [r for r in rows if r["label_class"] == "*"]
    chart = bar_chart(
        "pool",
        [r["value"] for r in overall],
        {
            "actual share": [r["share"] for r in overall],
            "target share": [r["target_share"] for r in overall],
        },
        title=f"Pool mix by {o.attribute}: actual against target",
        ylabel="share of annotators behind labels",
        xlabel=o.attribute,
        colors=("#1f77b4", "#a0a0a0"),
    )
    target = "the target given" if given else "an even split (no --target given)"
    note = (
        f"Who stands behind the labels, by {escape(o.attribute)}, against {target}; only "
        "consented, self-reported demographics are stored, the rest count as undisclosed."
    )
    return _section("Annotator pool mix", chart, rows, "pool", note)


def _drafts(client: Client, o: ReportOptions) -> str:
    rows = run_named(
        client,
        "draft_acceptance",
        schema_version="",
        edges=list(o.draft_edges),
        anchoring_alert=o.draft_alert,
        min_judged=o.draft_min_judged,
    )
    title = "Model drafts: acceptance against draft accuracy"
    if not rows:
        note = "No task showed a model draft (pre-labels are off), so there is nothing to chart."
        return _note_only(title, note)
    pool = [r for r in rows if r["annotator_id"] == "*" and r["band"] != "all"]
    chart = bar_chart(
        "drafts",
        [f"{r['schema_version']} {r['band_low']:.2f}-{r['band_high']:.2f}" for r in pool],
        {
            "acceptance": [r["acceptance_rate"] for r in pool],
            "draft accuracy": [r["draft_accuracy"] for r in pool],
        },
        title="Draft acceptance vs draft accuracy by confidence band",
        ylabel="share",
        xlabel="schema version and draft-confidence band",
        y_max=1.0,
    )
    flagged = sorted(
        {str(r["annotator_id"]) for r in rows if r["anchoring"] and r["annotator_id"] != "*"}
    )
    note = (
        "How often humans keep the model's draft, per draft-confidence band, beside how often "
        "the draft was right (gold or expert verdict). Acceptance above accuracy by more than "
        f"{o.draft_alert:g} (over &ge; {o.draft_min_judged} judged votes) suggests anchoring; "
        f"annotators flagged: <span class=flag>{escape(', '.join(flagged)) or 'none'}</span>."
    )
    return _section(title, chart, rows, "draft_acceptance", note)


def _calibration(client: Client) -> str:
    rows = run_named(client, "calibration", schema_version="")
    title = "Calibrated confidence: reliability diagram on gold"
    if not rows:
        note = (
            "No calibration map yet: the reliability stage fits one when enough gold items "
            "have a complete crowd consensus (calibration.min_gold); until then the consensus "
            "confidence is the posterior's top value."
        )
        return _note_only(title, note)
    latest: dict[str, dict[str, Any]] = {}
    for r in rows:  # in window order: the last per version is the map in force
        latest[r["schema_version"]] = r
    panels: dict[str, dict[str, Bins]] = {}
    notes = []
    for version, r in latest.items():
        before = f"before (ECE {r['ece_before']:.3f})"
        after = f"after, T = {r['temperature']:.2f} (ECE {r['ece_after']:.3f})"
        panels[f"{version}: {r['n_gold']} gold items"] = {
            before: (r["bin_confidence_before"], r["bin_accuracy_before"], r["bin_count_before"]),
            after: (r["bin_confidence_after"], r["bin_accuracy_after"], r["bin_count_after"]),
        }
        notes.append(
            f"<span data-calibration='{escape(version)}' data-ece-before='{r['ece_before']:.4f}'"
            f" data-ece-after='{r['ece_after']:.4f}'>{escape(version)}: ECE "
            f"{r['ece_before']:.3f} &rarr; {r['ece_after']:.3f} (temperature "
            f"{r['temperature']:.3f}, {r['n_gold']} gold items, {r['n_labels']} labels gated "
            "with it)</span>"
        )
    chart = reliability_diagram(
        "calibration",
        panels,
        title=title,
        xlabel="consensus confidence (bin mean)",
        ylabel="accuracy on gold",
    )
    note = (
        "Per confidence bin, the crowd consensus's accuracy against gold beside its mean "
        "confidence, before and after the latest calibration map (on the diagonal: calibrated;"
        " numbers: items per bin). The calibrated confidence is what gates commit and what a "
        "label records. " + "; ".join(notes) + "."
    )
    return _section(title, chart, rows, "calibration", note)


def _model_bins(figures: dict[str, float], stage: str) -> Bins:
    """A model's reliability bins from its ``calibration.<stage>.bin<k>.*`` metrics."""
    k = 0
    conf: list[float] = []
    acc: list[float] = []
    count: list[int] = []
    while f"calibration.{stage}.bin{k:02d}.n" in figures:
        key = f"calibration.{stage}.bin{k:02d}"
        count.append(int(figures[f"{key}.n"]))
        conf.append(figures[f"{key}.confidence"])
        acc.append(figures[f"{key}.accuracy"])
        k += 1
    return conf, acc, count


def _model_calibration(client: Client) -> str:
    rows = run_named(client, "model_calibration", model_version="")
    title = "Calibrated auto-accept: the live model's reliability diagram on gold"
    if not rows:
        note = (
            "No model carries an auto-accept map: a model published with at least "
            "calibration.min_gold gold items gets one; until then auto-accept gates on the "
            "model's own top probability."
        )
        return _note_only(title, note)
    r = rows[-1]  # in publish order: the last is the live model
    figures = dict(r["figures"])
    before = f"before (ECE {r['ece_before']:.3f})"
    after = f"after, T = {r['temperature']:.2f} (ECE {r['ece_after']:.3f})"
    panel = f"{r['model_version']}: {r['n_gold']} gold items"
    chart = reliability_diagram(
        "model-calibration",
        {panel: {before: _model_bins(figures, "before"), after: _model_bins(figures, "after")}},
        title=title,
        xlabel="model's top probability (bin mean)",
        ylabel="accuracy on gold",
    )
    note = (
        "Per confidence bin, the live model's accuracy on the gold set beside its mean top "
        "probability, before and after the temperature fitted on those gold scores at publish "
        "(numbers: items per bin). The calibrated top probability is what gates auto-accept. "
        f"<span data-model-calibration='{escape(r['model_version'])}' "
        f"data-ece-before='{r['ece_before']:.4f}' data-ece-after='{r['ece_after']:.4f}'>"
        f"{escape(r['model_version'])}: ECE {r['ece_before']:.3f} &rarr; {r['ece_after']:.3f} "
        f"(temperature {r['temperature']:.3f}, {r['n_gold']} gold items; {r['n_scores']} "
        f"scores made with it, {r['n_auto_accept']} auto-accepted)</span>."
    )
    shown = [{k: v for k, v in row.items() if k != "figures"} for row in rows]
    return _section(title, chart, shown, "model_calibration", note)


def build_report(client: Client, options: ReportOptions | None = None) -> str:
    """The report as one HTML document (no external resources)."""
    o = options or ReportOptions()
    sections = [_iaa(client, o), _reliability(client), _calibration(client)]
    sections += [_model_calibration(client)]
    sections += [_blind_spots(client, o)]
    sections += [_cost(client), _pool(client, o), _drafts(client, o)]
    counts = client.query(
        "SELECT (SELECT count() FROM events FINAL), (SELECT count() FROM v_current_labels)"
    ).result_rows[0]
    made = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        "<title>labeltrail audit report</title>"
        f"<style>{_STYLE}</style></head><body><h1>labeltrail audit report</h1>"
        f"<p class=q>generated {made} from {counts[0]:,} events; {counts[1]:,} current "
        "labels. Every figure below comes from a named query in projections/queries.</p>"
        + "".join(sections)
        + f"<script>{_SCRIPT}</script></body></html>"
    )


def write_report(client: Client, path: Path, options: ReportOptions | None = None) -> Path:
    """Write the report to ``path`` and return it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(build_report(client, options), encoding="utf-8")
    return path
