"""Render audit query results for people: tables, JSON, and the trace timeline of a comment."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

__all__ = ["emit", "render_trace", "to_jsonable"]


def to_jsonable(value: Any) -> Any:
    """Query values as JSON values: times in ISO-8601 UTC, tuples as lists."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    return value


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dt.datetime):
        return f"{value:%Y-%m-%d %H:%M:%S}"
    if isinstance(value, list | tuple | dict):
        text = json.dumps(to_jsonable(value), separators=(",", ":"))
        return text if len(text) <= 60 else text[:57] + "..."
    return str(value)


def emit(
    rows: Sequence[dict[str, Any]],
    *,
    as_json: bool,
    title: str = "",
    console: Console,
    columns: Sequence[str] = (),
) -> None:
    """Print rows as a table, or as one JSON array (every column).

    ``columns``: the key columns the table shows (default: all); the others are named below
    it, with the way to see them (``--wide``, ``--json``).
    """
    if as_json:
        console.file.write(json.dumps(to_jsonable(list(rows)), indent=1) + "\n")
        return
    if not rows:
        console.print(f"{title}: no rows" if title else "no rows", style="dim")
        return
    shown = [c for c in columns if c in rows[0]] or list(rows[0])
    table = Table(title=title or None)
    for name in shown:
        table.add_column(name, overflow="fold")
    for row in rows:
        table.add_row(*(_cell(row[name]) for name in shown))
    console.print(table)
    hidden = [c for c in rows[0] if c not in shown]
    if hidden:
        console.print(f"not shown: {', '.join(hidden)} (--wide or --json)", style="dim")


def _fmt_probs(classes: Sequence[str], probs: Sequence[float]) -> str:
    return " ".join(f"P({c})={p:.2f}" for c, p in zip(classes, probs, strict=True) if p > 0)


def _describe(event_type: str, p: dict[str, Any], annotator: str) -> list[str]:
    match event_type:
        case "CommentPosted":
            return [
                f"comment {p['comment_id']} posted on video {p['video_id']} ({p['source']})",
                f'"{p["text"]}"',
                f"{len(p['text'])} chars; thread parents: {', '.join(p['parent_ids']) or '-'}",
            ]
        case "CommentScored":
            return [
                f"model {p['model_version']} scores: "
                + _fmt_probs(p["classes"], p["probabilities"]),
                f"margin = {p['margin']:.2f} (threshold {p['threshold']:.2f})"
                f" -> route {p['route']}",
            ]
        case "TaskRequested":
            return [
                f"sampled by {p['reason']}: strategy={p['strategy']} value={p['score']:.3f} "
                f"rank {p['rank']}/{p['batch_size']} in batch {p['batch_id'][:8]}",
                f"trigger={p['trigger']} diversity={p['diversity']:.2f} "
                f"models={', '.join(p['model_versions'])} cost=${p['cost_usd']:.2f}",
            ]
        case "TaskCreated":
            extra = f", expected {p['expected_label']}" if p.get("expected_label") else ""
            if p["reason"] == "reassigned":
                extra += ": a suspended annotator's open share, given to the next of its draw"
            return [
                f"task {p['task_id'][:8]} kind={p['kind']} reason={p['reason']} "
                f"schema={p['schema_version']} x{p['redundancy']}{extra}",
                "decomposed: " + ", ".join(p["questions"]),
            ]
        case "TaskAssigned":
            lines = [f"assigned to {annotator} ({p['pool']}, ${p['cost_usd']:.2f})"]
            if p.get("context"):
                lines.append("context granted: " + " | ".join(p["context"]))
            return lines
        case "VoteCast":
            conf = p.get("confidence")
            answers = " ".join(f"{k}={v}" for k, v in sorted(p.get("answers", {}).items()))
            return [
                f"{annotator} -> {p['label']!r}"
                + (f" (confidence {conf:.2f})" if conf is not None else "")
                + f" in {p['time_spent_ms'] / 1000:.1f}s",
                answers,
            ]
        case "ConsensusUpdated":
            return [
                f"consensus ({p['method']}, {len(p['vote_ids'])}/{p['votes_expected']} votes): "
                f"{p['label']} agreement={p['agreement']:.2f} status={p['status']}"
            ]
        case "AdjudicationRequested":
            return [f"adjudication requested: {p['reason']}"]
        case "AdjudicationRecorded":
            return [
                f"expert {p['reviewer_id']} verdict: {p['label']}"
                f" (confidence {p['confidence']:.2f})",
                f'note: "{p["note"]}"; context seen: {", ".join(p["context_seen"]) or "-"}',
            ]
        case "FeedbackReceived":
            said = f" says {p['label']!r}" if p.get("label") else ""
            note = f': "{p["note"]}"' if p.get("note") else ""
            return [
                f"feedback {p['feedback_id']}: {p['kind']} by {p.get('actor_kind', 'unknown')} "
                f"{p['actor_hash'][:12]}{said}{note}"
            ]
        case "WeakVoteCast":
            said = f"votes {p['label']!r}" if p.get("label") is not None else "abstains"
            return [f"{p['source']} {p['source_name']}@{p['source_version']} {said}"]
        case "LabelCommitted":
            run = f" . labeling run {p['run_id']}" if p.get("run_id") else ""
            run += " . machine-made" if p.get("machine_made") else ""
            return [
                f"label committed: {p['label']} . {p['schema_version']} . route={p['route']} "
                f"confidence={p['confidence']:.2f}{run}",
                f"method={p['method']} votes={len(p['vote_ids'])} "
                f"annotators={', '.join(p['annotator_ids']) or '-'}"
                + (f" adjudication={p['adjudication_id'][:8]}" if p.get("adjudication_id") else ""),
                (
                    f"supersedes the label after feedback {p['method_params']['feedback']}"
                    if "feedback" in p.get("method_params", {})
                    else ""
                ),
                "from log positions: "
                + ", ".join(
                    f"{s['topic']}[{s['partition']}]@{s['offset']}" for s in p["source_positions"]
                ),
            ]
        case "HoneypotScored":
            ok = "correct" if p["correct"] else "WRONG"
            against = {"adjudication": "expert verdict", "gold": "gold", "honeypot": "honeypot"}
            source = against.get(p["source"], p["source"])
            return [
                f"scored against the {source}: {annotator} answered {p['given_label']}, "
                f"expected {p['expected_label']} ({ok})"
            ]
        case "AnnotatorReliabilityUpdated":
            before = p.get("previous_accuracy")
            moved = f"{before:.2f} -> " if before is not None else ""
            return [
                f"reliability of {annotator}: {moved}{p['accuracy']:.2f} "
                f"[{p['accuracy_lower']:.2f}, {p['accuracy_upper']:.2f}] ({p['method']}, "
                f"n={p['n_observations']})"
            ]
        case "ExportCreated":
            return [
                f"export {p['export_id'][:8]} ({p['schema_version']}, {p['row_count']} rows, "
                f"{p['aggregator']}) {p['content_hash'][:19]}",
                p["uri"],
            ]
        case "ModelPublished":
            metrics = " ".join(f"{k}={v:.2f}" for k, v in sorted(p.get("metrics", {}).items()))
            return [f"model {p['model_version']} published; {metrics}"]
        case _:
            return [json.dumps(p, sort_keys=True)[:160]]


def render_trace(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The timeline of one comment's events, in the article's trace layout."""
    if not rows:
        return []
    t0: dt.datetime = rows[0]["occurred_at"]
    day0 = t0.replace(hour=0, minute=0, second=0, microsecond=0)
    lines: list[str] = []
    for row in rows:
        when: dt.datetime = row["occurred_at"]
        stamp = f"day {(when - day0).days} . {when:%H:%M}"
        payload = json.loads(row["payload"]) if isinstance(row["payload"], str) else row["payload"]
        body = _describe(row["event_type"], payload, row.get("annotator_id", ""))
        if row.get("link"):
            body[0] += f"  <- {row['link']}"
        lines.append(f"{stamp:>14} | [{row['event_type']}] {body[0]}")
        lines += [f"{'':>14} |   {b}" for b in body[1:] if b]
    return lines
