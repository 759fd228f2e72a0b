"""``labeltrail model publish MODEL.onnx``: publish a team's model through the publish gate.

A thin call into :func:`labeltrail.ml.publish.publish_model` (onnxruntime is imported only
when the command runs). Exit codes: 0 published (or already was), 2 the file, its manifest or
what they name is invalid (every problem listed, nothing published), 3 refused by the gate
(a ``ModelRefused`` recorded, nothing published), 1 no broker or an unreadable live model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from labeltrail.cli.common import console, err, fail, require_kafka
from labeltrail.config import Settings
from labeltrail.events.models import ModelPublished, ModelRefused
from labeltrail.exceptions import LabeltrailError

__all__ = ["model_app"]

model_app = typer.Typer(
    help="Models: publish one through the gate, list what was published and refused.",
    no_args_is_help=True,
)

REFUSED = 3


@model_app.command("publish")
def publish(
    model: Annotated[Path, typer.Argument(help="The ONNX file (a labeltrail-format model).")],
    manifest: Annotated[
        Path | None,
        typer.Option(help="Its manifest (default: MODEL.manifest.json beside it)."),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Publish even if worse on gold (recorded).")
    ] = False,
    reason: Annotated[str, typer.Option(help="Why --force (required with it; recorded).")] = "",
) -> None:
    """Check the model and its manifest, compare it with the live model on the gold set per
    slice, and publish it (ModelPublished) or refuse it (ModelRefused, exit 3)."""
    from labeltrail.ml.publish import InvalidModelError, publish_model

    settings = Settings()
    require_kafka(settings)
    try:
        result = publish_model(settings, model, manifest, force=force, reason=reason)
    except InvalidModelError as exc:
        for problem in exc.problems:
            err.print(f"[bold red]error:[/] {escape(problem)}", highlight=False, soft_wrap=True)
        raise fail(f"{model}: nothing published ({len(exc.problems)} problem(s))", 2) from exc
    except LabeltrailError as exc:
        raise fail(exc) from exc
    event = result.event
    if result.status == "already":
        console.print(f"model {event.model_version} is already published: nothing to do")
        return
    decision = result.decision
    if decision is not None:
        for s in decision.slices:
            mark = "WORSE" if s.worse else "ok"
            baseline = f"{s.baseline:.3f}" if decision.baseline_version else "-"
            console.print(
                f"  {s.slice:<24} n={s.n:<5} live {baseline:>5}  candidate {s.candidate:.3f}  "
                f"{mark}",
                highlight=False,
            )
    if result.status == "refused":
        said = "recorded" if result.new else "already recorded"
        err.print(f"[bold red]refused:[/] {escape(decision.reason() if decision else '')}")
        raise fail(
            f"model {event.model_version} not published; ModelRefused {said} "
            "(--force --reason '...' to publish it anyway)",
            REFUSED,
        )
    if getattr(event, "forced", False):
        forced = " (FORCED over the gate: recorded)"
    else:
        forced = " (--force not needed: the gate passed it)" if force else ""
    console.print(
        f"published model {event.model_version} ({result.gold_items} gold items; "
        f"{decision.reason() if decision else ''}){forced}",
        highlight=False,
        soft_wrap=True,
    )
    temperature = getattr(event, "temperature", None)
    if temperature is not None:
        m = event.metrics
        console.print(
            f"auto-accept calibrated: temperature {temperature:.3f} on "
            f"{m['calibration.n_gold']:.0f} gold items, ECE {m['calibration.ece_before']:.3f} "
            f"-> {m['calibration.ece_after']:.3f}",
            highlight=False,
            soft_wrap=True,
        )


def _row(event: ModelPublished | ModelRefused, status: str, reason: str) -> dict[str, Any]:
    return {
        "model_version": event.model_version,
        "status": status,
        "schema_version": event.schema_version or "",
        "baseline_version": event.baseline_version or "",
        "gold_accuracy": event.metrics.get("gold.all.accuracy"),
        "reason": reason,
        "at": event.envelope.occurred_at,
        "producer": event.envelope.producer,
        "artifact_sha256": event.artifact_sha256,
        "export_id": event.export_id or "",
    }


@model_app.command("list")
def list_models(
    as_json: Annotated[bool, typer.Option("--json", help="Print the rows as JSON.")] = False,
) -> None:
    """Every model on the log, oldest first (the last is live), and every refusal: the
    gate's baseline, forced publishes with their reason, the slices a refusal was worse on."""
    from labeltrail.audit import emit
    from labeltrail.ml.publish import read_model_log

    settings = Settings()
    require_kafka(settings)
    try:
        log = read_model_log(settings)
    except LabeltrailError as exc:
        raise fail(exc) from exc
    rows = [
        _row(m, "forced" if m.forced else "published", m.force_reason) for m in log.models.values()
    ]
    rows += [_row(r, "refused", r.reason) for r in log.refusals.values()]
    columns = ("model_version", "status", "baseline_version", "gold_accuracy", "reason", "at")
    emit(rows, as_json=as_json, title="models", console=console, columns=columns)
