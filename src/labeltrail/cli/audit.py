"""The ``labeltrail audit ...`` queries, and registration of the projections, export and report
command groups. Thin calls into the library.

Every audit command runs named queries from ``projections/queries`` (the SQL an auditor can run
themselves, with the same parameters) and prints a table, or JSON with ``--json``.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from labeltrail.audit import emit, render_trace
from labeltrail.cli.common import console, fail
from labeltrail.config import Settings
from labeltrail.exceptions import LabeltrailError
from labeltrail.learning.prelabel import DEFAULT_BANDS
from labeltrail.quality.blindspots import PAIRWISE_AGREEMENT, agreement_level, high_agreement_from

__all__ = ["LABEL_ORDER", "parse_time", "register_audit", "run_query"]


JsonFlag = Annotated[bool, typer.Option("--json", help="Print the rows as JSON.")]
SliceKey = Annotated[str, typer.Option(help="Comment attribute to slice by.")]
Version = Annotated[str, typer.Option("--schema-version", help="Only this schema version.")]
WideFlag = Annotated[
    bool, typer.Option("--wide", help="Every column in the table (default: the key columns).")
]
UNKNOWN = 3
"""Exit code when an id names nothing (as for a comment with no events)."""


def parse_time(value: str) -> dt.datetime:
    """An ISO-8601 time (naive means UTC) or ``now``."""
    if value == "now":
        return dt.datetime.now(dt.UTC)
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise typer.BadParameter(f"not an ISO-8601 time: {value!r}") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def run_query(name: str, **params: Any) -> list[dict[str, Any]]:
    """Run a named query against the configured ClickHouse; errors become a clean exit."""
    from labeltrail.clickhouse.client import client_from, run_named

    try:
        return run_named(client_from(Settings()), name, **params)
    except LabeltrailError as exc:
        raise fail(exc) from exc


def _show(
    rows: list[dict[str, Any]], as_json: bool, title: str, columns: tuple[str, ...] = ()
) -> None:
    emit(rows, as_json=as_json, title=title, console=console, columns=columns)


def _with_level(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows with ``level`` after ``agreement``: the word the row's metric's own scale gives it
    (the quality core's rule), so "high" never means a different thing per metric."""
    out = []
    for row in rows:
        leveled: dict[str, Any] = {}
        for key, value in row.items():
            leveled[key] = value
            if key == "agreement":
                leveled["level"] = agreement_level(row["metric"], value)
        out.append(leveled)
    return out


def trace(
    comment: Annotated[str, typer.Argument(help="Comment id.")], as_json: JsonFlag = False
) -> None:
    """The full trace of one comment, from posting to the models trained on its label."""
    from labeltrail.clickhouse.client import client_from
    from labeltrail.clickhouse.trace import full_trace

    try:
        rows = full_trace(client_from(Settings()), comment)
    except LabeltrailError as exc:
        raise fail(exc) from exc
    if not rows:
        raise fail(LabeltrailError(f"no events for comment {comment!r}"), UNKNOWN)
    if as_json:
        for row in rows:
            row["payload"] = json.loads(row["payload"])
        _show(rows, True, "trace")
        return
    for line in render_trace(rows):
        console.print(line, highlight=False, markup=False)


LABEL_ORDER = ("comment_id", "schema_version")
"""The order of ``label-as-of`` rows, on every output path."""

LABEL_COLUMNS = (
    "comment_id",
    "schema_version",
    "label",
    "confidence",
    "route",
    "method",
    "committed_at",
    "superseded_by",
)
"""The columns of the ``label-as-of`` table without ``--wide``."""

Clock = Literal["recorded", "event"]
CLOCK_HELP = (
    "Which time --at means. recorded (default): when the system recorded the label, what an "
    "export made at that time could see. event: when the label's event happened, the time "
    "'audit trace' shows (a simulation or a replay records long after its events)."
)


def _format_of(out: Path, fmt: str) -> str:
    if fmt:
        return fmt
    suffix = out.suffix.lower().lstrip(".")
    if suffix in ("json", "csv", "parquet"):
        return suffix
    raise typer.BadParameter(f"cannot tell the format of {out}: give --format json|csv|parquet")


def label_as_of(
    comment: Annotated[str, typer.Argument(help="Comment id, or 'all'.")],
    at: Annotated[str, typer.Option(help="ISO-8601 time (UTC if no zone) or 'now'.")] = "now",
    clock: Annotated[Clock, typer.Option("--time", help=CLOCK_HELP)] = "recorded",
    schema_version: Version = "",
    as_json: JsonFlag = False,
    wide: WideFlag = False,
    out: Annotated[
        Path | None,
        typer.Option(help="Write the rows to this file (json, csv or parquet) instead."),
    ] = None,
    fmt: Annotated[
        str, typer.Option("--format", help="Format for --out (default: from its suffix).")
    ] = "",
    run: Annotated[
        str,
        typer.Option(help="A labeling run's labels (labeltrail relabel) instead of the live ones."),
    ] = "",
) -> None:
    """Labels as they stood at a time: the latest by then, per schema version.

    By recorded time (default) or event time (``--time event``). ``--json`` and ``--out`` are
    written by ClickHouse itself (JSON array, CSV with names, Parquet), sorted by comment and
    version, streamed in bounded memory: no Python row per label, so every label of a large
    history comes out in the time of the query. The table is for people (Python rows, the key
    columns unless ``--wide``).
    """
    from labeltrail.clickhouse.client import (
        STREAM_FORMATS,
        client_from,
        run_named_arrow,
        stream_named,
        write_named,
    )
    from labeltrail.export.build import sql_time

    if fmt and fmt not in STREAM_FORMATS:
        raise typer.BadParameter(f"--format must be one of {', '.join(STREAM_FORMATS)}")
    file_format = _format_of(out, fmt) if out is not None else ""  # before connecting
    when = parse_time(at)
    params = {
        "comment_id": "" if comment == "all" else comment,
        "at": sql_time(when),
        "schema_version": schema_version,
        "time": clock,
        "run": run,
    }
    if comment != "all" or schema_version:
        _known_or_fail(params)  # before connecting: no client is held while it exits
    try:
        client = client_from(Settings())
        if out is not None:
            write_named(client, "label_as_of", out, fmt=file_format, order_by=LABEL_ORDER, **params)
            return
        if as_json:
            sys.stdout.flush()
            stream_named(client, "label_as_of", sys.stdout.buffer, order_by=LABEL_ORDER, **params)
            sys.stdout.buffer.flush()
            return
        table = run_named_arrow(client, "label_as_of", **params)
        if not table.num_rows:
            console.print(_why_no_rows(client, params, when, clock), style="dim")
            return
    except LabeltrailError as exc:
        raise fail(exc) from exc
    order = table.sort_by([(name, "ascending") for name in LABEL_ORDER])
    title = f"labels as of {at} ({clock} time)"
    _show(order.to_pylist(), False, title, () if wide else LABEL_COLUMNS)


def _known_or_fail(params: dict[str, Any]) -> None:
    """Refuse a comment no event names, or a schema version nothing knows (exit 3)."""
    known = run_query("label_times", **_times_params(params))[0]
    if not known["comment_known"]:
        raise fail(LabeltrailError(f"no comment {params['comment_id']!r}"), UNKNOWN)
    if not known["schema_version_known"]:
        raise fail(LabeltrailError(f"no schema version {params['schema_version']!r}"), UNKNOWN)


def _times_params(params: dict[str, Any]) -> dict[str, Any]:
    return {k: params[k] for k in ("comment_id", "schema_version")}


def _why_no_rows(client: Any, params: dict[str, Any], when: dt.datetime, clock: Clock) -> str:
    """The empty answer, said with its clock, the first label on both clocks, and the other
    clock's option."""
    from labeltrail.clickhouse.client import run_named

    times = run_named(client, "label_times", **_times_params(params))[0]
    stamp = "%Y-%m-%dT%H:%M:%SZ"
    what = f"no label {'recorded' if clock == 'recorded' else 'occurred'} by {when:{stamp}}"
    if not times["labels"]:
        return f"{what}: no label at all yet"
    first = (
        f"the first was recorded at {times['first_recorded_at']:{stamp}} "
        f"(event time {times['first_occurred_at']:{stamp}})"
    )
    other = (
        "--time event asks by event time, the time 'audit trace' shows"
        if clock == "recorded"
        else "--time recorded (the default) asks by when the system recorded the label"
    )
    return f"{what} ({clock} time); {first}. {other}"


def explain(
    label: Annotated[str, typer.Argument(help="Label id, label event id, or comment id.")],
    as_json: JsonFlag = False,
) -> None:
    """Why a label is what it is: votes, weights, posterior, thresholds, adjudication."""
    head = run_query("explain_label", label=label)
    if not head:
        raise fail(LabeltrailError(f"no label {label!r}"), 3)
    votes = run_query("explain_votes", label=label)
    if as_json:
        _show([{**head[0], "votes": votes}], True, "explain")
        return
    _show([{"field": k, "value": v} for k, v in head[0].items()], False, f"label {label}")
    _show(votes, False, "votes behind it")


def annotator(
    annotator_id: Annotated[str, typer.Argument(help="Annotator id.")], as_json: JsonFlag = False
) -> None:
    """An annotator's votes, honeypot and gold accuracy, reliability and overrides."""
    summary = run_query("annotator_summary", annotator=annotator_id)
    trajectory = run_query("annotator_reliability", annotator=annotator_id)
    overrides = run_query("annotator_overrides", annotator=annotator_id)
    record = summary[0]
    if not (record["known"] or trajectory or overrides):
        raise fail(
            LabeltrailError(
                f"no annotator {annotator_id!r}: no registration, assignment, vote, review "
                "or reliability update names it"
            ),
            UNKNOWN,
        )
    if as_json:
        doc = {**summary[0], "reliability_trajectory": trajectory, "overrides": overrides}
        _show([doc], True, "annotator")
        return
    _show([{"field": k, "value": v} for k, v in summary[0].items()], False, annotator_id)
    _show(trajectory, False, "reliability trajectory")
    _show(overrides, False, "adjudication overrides")


IAA_COLUMNS = (
    "source",
    "window",
    "window_start",
    "schema_version",
    "question",
    "slice",
    "metric",
    "agreement",
    "level",
    "gold_accuracy",
    "n_items",
)
"""The columns of the ``iaa`` table without ``--wide``."""


def iaa(
    days: Annotated[
        int, typer.Option(help="Window length in days (1: day, 7: week; from Mondays).")
    ] = 7,
    slice_key: SliceKey = "slice",
    schema_version: Version = "",
    as_json: JsonFlag = False,
    wide: WideFlag = False,
) -> None:
    """Agreement beside gold accuracy over time, per window, schema version, question, slice
    and metric; level reads agreement on its metric's own scale."""
    _known_version_or_fail(schema_version)
    rows = run_query("iaa", days=days, slice_key=slice_key, schema_version=schema_version)
    title = "agreement and gold accuracy"
    _show(_with_level(rows), as_json, title, () if wide else IAA_COLUMNS)


def _known_version_or_fail(schema_version: str) -> None:
    if schema_version:
        known = run_query("label_times", comment_id="", schema_version=schema_version)
        if not known[0]["schema_version_known"]:
            raise fail(LabeltrailError(f"no schema version {schema_version!r}"), UNKNOWN)


def blind_spots(
    min_agreement: Annotated[
        float,
        typer.Option(
            help="Pairwise agreement at least this (default: where its scale reads high)."
        ),
    ] = high_agreement_from(PAIRWISE_AGREEMENT),
    max_gold_accuracy: Annotated[float, typer.Option(help="Gold accuracy at most this.")] = 0.6,
    min_gold: Annotated[int, typer.Option(help="At least this many gold votes.")] = 5,
    slice_key: SliceKey = "slice",
    as_json: JsonFlag = False,
) -> None:
    """Slices where the crowd agrees with itself (pairwise agreement, high on its own scale by
    default) but not with gold."""
    rows = run_query(
        "blind_spots",
        min_agreement=min_agreement,
        max_gold_accuracy=max_gold_accuracy,
        min_gold=min_gold,
        slice_key=slice_key,
    )
    _show(_with_level(rows), as_json, "blind spots")


def pool(
    attribute: Annotated[str, typer.Option(help="locale, pool, or a demographic key.")] = "locale",
    target: Annotated[
        str, typer.Option(help="Target mix as JSON, e.g. '{\"en-US\": 0.25}'.")
    ] = "{}",
    slice_key: SliceKey = "slice",
    schema_version: Version = "",
    as_json: JsonFlag = False,
) -> None:
    """The make-up of the annotators behind the labels, per class and slice, against a target."""
    try:
        parsed = json.loads(target)
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"--target is not JSON: {exc}") from exc
    if not isinstance(parsed, dict):
        raise typer.BadParameter("--target must be a JSON object of value -> share")
    _known_version_or_fail(schema_version)
    rows = run_query(
        "pool",
        attribute=attribute,
        slice_key=slice_key,
        schema_version=schema_version,
        target=json.dumps(parsed),
    )
    _show(rows, as_json, f"annotator pool by {attribute}")


def cost(schema_version: Version = "", as_json: JsonFlag = False) -> None:
    """Cost per final label by route, counting redundancy, honeypots and adjudication."""
    _known_version_or_fail(schema_version)
    _show(run_query("cost", schema_version=schema_version), as_json, "cost per final label")


DEFAULT_EDGES = ",".join(format(edge, "g") for edge in DEFAULT_BANDS)


def _edges(value: str) -> list[float]:
    try:
        edges = [float(x) for x in value.split(",") if x.strip()]
    except ValueError as exc:
        raise typer.BadParameter(
            f"--edges is not a comma-separated list of numbers: {exc}"
        ) from exc
    if len(edges) < 2 or edges != sorted(set(edges)):
        raise typer.BadParameter("--edges needs at least two ascending, distinct band edges")
    return edges


def drafts(
    edges: Annotated[
        str, typer.Option(help="Confidence band edges, ascending; the last band includes its top.")
    ] = DEFAULT_EDGES,
    alert: Annotated[
        float, typer.Option(help="Flag anchoring when acceptance exceeds draft accuracy by more.")
    ] = 0.15,
    min_judged: Annotated[
        int, typer.Option(help="Flag only with at least this many votes judged against truth.")
    ] = 10,
    schema_version: Version = "",
    as_json: JsonFlag = False,
) -> None:
    """How often humans keep the model's draft, per confidence band and annotator, against the
    draft's accuracy on gold or expert verdicts: acceptance far above it means anchoring."""
    _known_version_or_fail(schema_version)
    rows = run_query(
        "draft_acceptance",
        schema_version=schema_version,
        edges=_edges(edges),
        anchoring_alert=alert,
        min_judged=max(min_judged, 0),
    )
    _show(rows, as_json, "draft acceptance per confidence band")


COMMANDS: dict[str, Callable[..., None]] = {
    "trace": trace,
    "label-as-of": label_as_of,
    "explain": explain,
    "annotator": annotator,
    "iaa": iaa,
    "blind-spots": blind_spots,
    "pool": pool,
    "cost": cost,
    "drafts": drafts,
}
"""The audit commands, by name."""


def register_audit(audit_app: typer.Typer) -> None:
    """Add the audit queries to ``labeltrail audit``."""
    for name, command in COMMANDS.items():
        audit_app.command(name)(command)
