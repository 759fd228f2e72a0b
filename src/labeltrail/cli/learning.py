"""Command line for the learning loop: ``labeltrail train``, ``score``, ``lf ...``, ``day30``.

Thin wrappers over :mod:`labeltrail.learning`; torch is imported only by ``train`` and
``day30``, onnxruntime only by ``score`` and ``day30``.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import numpy as np
import typer

from labeltrail.cli.common import console, err, fail, require_kafka
from labeltrail.exceptions import LabeltrailError

if TYPE_CHECKING:
    from labeltrail.learning.lf_analysis import VotesSummary
    from labeltrail.sim.scenario import Day30Config

__all__ = ["register"]

lf_app = typer.Typer(help="Labeling functions: analysis and the label model.", no_args_is_help=True)


def _read_lines(path: str) -> list[str]:
    text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    return [line for line in text.splitlines() if line.strip()]


def train(
    export: Annotated[
        str, typer.Argument(help="JSON lines: text, classes, distribution, confidence.")
    ],
    models_dir: Annotated[Path, typer.Option(help="Where the artifact is written.")] = Path(
        "var/models"
    ),
    version: Annotated[str, typer.Option(help="Model version (directory name).")] = "dev",
    epochs: Annotated[int, typer.Option(help="Training epochs.")] = 10,
    seed: Annotated[int, typer.Option(help="Training seed.")] = 0,
    buckets: Annotated[int, typer.Option(help="Hashed n-gram buckets.")] = 2**18,
    dim: Annotated[int, typer.Option(help="Embedding and hidden width.")] = 64,
    schema_version: Annotated[
        str, typer.Option(help="The label schema version it predicts (in its manifest).")
    ] = "v3",
) -> None:
    """Train on soft labels (confidence-weighted), export ONNX with its manifest (for
    `labeltrail model publish`), print its ModelPublished."""
    from labeltrail.learning.features import HashingFeaturizer
    from labeltrail.learning.publish import (
        ModelManifest,
        artifact_path,
        model_published,
        write_manifest,
    )
    from labeltrail.ml.training import SoftLabelTrainer

    try:
        rows = [json.loads(line) for line in _read_lines(export)]
        classes = list(rows[0]["classes"])
        targets = np.array([r["distribution"] for r in rows], dtype=np.float64)
        weights = np.array([r.get("confidence", 1.0) for r in rows], dtype=np.float64)
        trainer = SoftLabelTrainer(
            classes,
            featurizer=HashingFeaturizer(n_buckets=buckets, seed=seed),
            dim=dim,
            hidden=dim,
            epochs=epochs,
            seed=seed,
        )
        trainer.fit([r["text"] for r in rows], targets, weights)
        path = trainer.export_onnx(artifact_path(models_dir, version), metadata={"rows": len(rows)})
        manifest = ModelManifest(
            model_version=version, classes=classes, schema_version=schema_version, export_id=None
        )
        write_manifest(path, manifest)
        event = model_published(
            models_dir, version, classes, export_id=None, export_hash=None, metrics={}
        )
    except (OSError, KeyError, IndexError, ValueError, LabeltrailError) as exc:
        raise fail(exc, 2) from exc
    err.print(f"trained on {len(rows)} rows in {trainer.fit_seconds_:.1f}s")
    err.print(f"publish it through the gate: labeltrail model publish {path}")
    console.print_json(event.model_dump_json())


def score(
    model: Annotated[Path, typer.Argument(help="An ONNX artifact written by train.")],
    texts: Annotated[str, typer.Argument(help="One text per line, or - for stdin.")] = "-",
    threshold: Annotated[float, typer.Option(help="Margin below which to annotate.")] = 0.1,
) -> None:
    """Score texts with onnxruntime: JSON lines of probabilities, margin and route."""
    from labeltrail.learning.prelabel import route_for
    from labeltrail.ml.scoring import OnnxTextScorer, margins

    try:
        scorer = OnnxTextScorer(model)
        lines = _read_lines(texts)
    except (OSError, LabeltrailError) as exc:
        raise fail(exc, 2) from exc
    probs = scorer.predict_proba(lines)
    for text, p, m in zip(lines, probs, margins(probs), strict=True):
        row = {
            "text": text,
            "probabilities": dict(zip(scorer.classes, map(float, p), strict=True)),
            "margin": float(m),
            "route": route_for(float(m), float(p.max()), threshold),
        }
        print(json.dumps(row))


@lf_app.command("analyze")
def lf_analyze(
    matrix: Annotated[
        Path | None,
        typer.Argument(help="Label matrix .npy (n_items, n_lfs), -1 abstain (--from npy)."),
    ] = None,
    gold: Annotated[Path | None, typer.Option(help="Gold codes .npy (n_items,), -1 none.")] = None,
    names: Annotated[str | None, typer.Option(help="Comma-separated LF names.")] = None,
    source: Annotated[
        str,
        typer.Option(
            "--from",
            help="npy (the MATRIX file), log (the lf stage's votes on the weak.votes topic and "
            "the gold verdicts) or clickhouse (the weak_votes projection).",
        ),
    ] = "npy",
    schema_version: Annotated[
        str | None, typer.Option(help="The votes' schema version (default: the settings').")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per LF.")] = False,
) -> None:
    """Coverage, overlap, conflict and empirical accuracy against gold, per LF (and version,
    for the live votes)."""
    from labeltrail.learning.lf_analysis import LFSummary, label_coverage, lf_summary

    rows: Sequence[LFSummary]
    try:
        if source == "npy":
            if matrix is None:
                raise ValueError("--from npy reads a MATRIX file")
            L = np.load(matrix)
            g = None if gold is None else np.load(gold)
            rows = lf_summary(L, names=names.split(",") if names else None, gold=g)
            header = f"label coverage {label_coverage(L):.3f} over {L.shape[0]} items"
        elif source in ("log", "clickhouse"):
            summary = _live_votes_summary(source, schema_version)
            rows = summary.lfs
            header = (
                f"label coverage {summary.coverage:.3f} over {summary.n_items} comments "
                f"({summary.n_gold} with gold); classes {list(summary.classes)}"
            )
        else:
            raise ValueError("--from is npy, log or clickhouse")
    except (OSError, ValueError, LabeltrailError) as exc:
        raise fail(exc, 2) from exc
    if as_json:
        for r in rows:
            print(json.dumps(dataclasses.asdict(r)))
        return
    console.print(header)
    for r in rows:
        acc = "-" if r.empirical_accuracy is None else f"{r.empirical_accuracy:.3f}"
        console.print(
            f"{r.name:<24} polarity={list(r.polarity)} coverage={r.coverage:.3f} "
            f"overlap={r.overlap:.3f} conflict={r.conflict:.3f} accuracy={acc} "
            f"(n_gold={r.n_gold_labelled})",
            highlight=False,
        )


def _live_votes_summary(source: str, schema_version: str | None) -> VotesSummary:
    """The lf stage's votes and the gold verdicts, read from the log or from ClickHouse."""
    from labeltrail.config import Settings
    from labeltrail.learning.lf_analysis import votes_summary

    settings = Settings()
    version = schema_version or settings.weak.schema_version
    if source == "clickhouse":
        from labeltrail.clickhouse.client import client_from, run_named

        found = run_named(client_from(settings), "lf_votes", schema_version=version)
        votes = [(r["comment_id"], r["lf"], r["label"]) for r in found]
        gold = {r["comment_id"]: r["gold_label"] for r in found if r["gold_label"]}
        return votes_summary(votes, gold)
    from labeltrail.events.models import GOLD_REQUEST_PREFIX, AdjudicationRecorded, WeakVoteCast
    from labeltrail.events.topics import topic_name
    from labeltrail.kafka.log import read_kinds

    topics = [topic_name(settings.topic_prefix, t) for t in ("weak.votes", "adjudications")]
    events = read_kinds(settings, topics, frozenset({"WeakVoteCast", "AdjudicationRecorded"}))
    votes = [
        (e.comment_id, f"{e.source_name}@{e.source_version}", e.label)
        for e in events
        if isinstance(e, WeakVoteCast) and e.schema_version == version
    ]
    verdicts = sorted(
        (e.envelope.recorded_at, e.event_id, e.comment_id, e.label)
        for e in events
        if isinstance(e, AdjudicationRecorded)
        and e.schema_version == version
        and e.request_id.startswith(GOLD_REQUEST_PREFIX)
    )
    return votes_summary(votes, {c: label for _, _, c, label in verdicts})


@lf_app.command("fit")
def lf_fit(
    matrix: Annotated[Path, typer.Argument(help="Label matrix .npy (n_items, n_lfs).")],
    n_classes: Annotated[int, typer.Option("--classes", help="Number of classes.")],
    out: Annotated[Path, typer.Option(help="Where to write soft labels .npy (n_items, k).")],
    gold: Annotated[Path | None, typer.Option(help="Gold codes .npy, -1 none.")] = None,
) -> None:
    """Fit the label model and write its soft labels."""
    from labeltrail.learning.label_model import LabelModel

    try:
        L = np.load(matrix)
        model = LabelModel(n_classes).fit(L, None if gold is None else np.load(gold))
        np.save(out, model.predict_proba(L))
    except (OSError, ValueError) as exc:
        raise fail(exc, 2) from exc
    console.print(
        f"factors {model.factors_}; LF accuracy {np.round(model.accuracy_, 3).tolist()}; "
        f"class prior {np.round(model.class_prior_, 3).tolist()}; {model.fit_seconds_:.2f}s"
    )


def day30(
    models_dir: Annotated[Path, typer.Option(help="Where both artifacts go.")] = Path("var/models"),
    comments: Annotated[int, typer.Option(help="Simulated comments.")] = 1_500,
    seed: Annotated[int, typer.Option(help="Simulation and training seed.")] = 7,
    soft_labels: Annotated[
        str, typer.Option(help="v2 targets: pipeline (committed labels) or multisource.")
    ] = "pipeline",
    relabel: Annotated[bool, typer.Option(help="Send the flagged slice to experts.")] = True,
    live: Annotated[
        bool,
        typer.Option(
            help="Run the loop on the stage services on the broker, projected into ClickHouse "
            "(topics <prefix>.day30-<run>, deleted at the end unless --keep-topics)."
        ),
    ] = False,
    workdir: Annotated[
        Path, typer.Option(help="--live: the run's ClickHouse (chdb) and exports, under <run>/.")
    ] = Path("var/day30"),
    keep_topics: Annotated[
        bool, typer.Option(help="--live: keep the run's topics (to audit them afterwards).")
    ] = False,
    without: Annotated[
        list[str] | None,
        typer.Option(
            help="--live: leave this stage out (repeatable; not tasking, consensus, "
            "labels, scorer or trainer)."
        ),
    ] = None,
    weak: Annotated[
        bool,
        typer.Option(
            help="--live: the multi-source v2, trained on the weak labels' export with "
            "trainer.weak_labels=fill (weak labels fill comments no human label covers)."
        ),
    ] = False,
    crowd_share: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=1.0,
            help="--live: the share of the non-gold comments the crowd answers (the rest "
            "has no human label).",
        ),
    ] = 1.0,
) -> None:
    """The article's day-30 loop in simulation: v1 vs v2 recall per slice, from gold."""
    from labeltrail.sim.scenario import Day30Config, run_day30

    base = Day30Config()
    if soft_labels not in ("pipeline", "multisource"):
        raise fail(ValueError("--soft-labels is pipeline or multisource"), 2)
    if live and soft_labels != "pipeline":
        raise fail(ValueError("--live trains on the committed labels (--soft-labels pipeline)"), 2)
    if (weak or crowd_share < 1.0) and not live:
        raise fail(ValueError("--weak and --crowd-share are options of --live"), 2)
    config = dataclasses.replace(
        base,
        platform=dataclasses.replace(base.platform, n_comments=comments, seed=seed),
        soft_labels="multisource" if soft_labels == "multisource" else "pipeline",
        relabel=relabel,
    )
    if live:
        _day30_live(
            config,
            models_dir,
            workdir,
            keep_topics=keep_topics,
            without=without or [],
            weak=weak,
            crowd_share=crowd_share,
        )
        return
    result = run_day30(config, models_dir=models_dir)
    console.print(f"flagged slices {result.flagged}; relabel requests {result.relabel_requests}")
    console.print(f"training rows v1={result.train_sizes[0]} v2={result.train_sizes[1]}")
    for name in result.before:
        b, a = result.before[name], result.after[name]
        console.print(
            f"{name:<18} n={b.n:<4} accuracy {b.accuracy:.3f} -> {a.accuracy:.3f}  "
            f"recall {json.dumps({k: round(v, 3) for k, v in b.recall.items()})} -> "
            f"{json.dumps({k: round(v, 3) for k, v in a.recall.items()})}",
            highlight=False,
        )


def _day30_live(
    config: Day30Config,
    models_dir: Path,
    workdir: Path,
    *,
    keep_topics: bool,
    without: list[str],
    weak: bool = False,
    crowd_share: float = 1.0,
) -> None:
    """``day30 --live``: its own topics and ClickHouse, so it never mixes with the demo's."""
    import time

    from labeltrail.config import Settings
    from labeltrail.kafka.admin import delete_topics
    from labeltrail.sim.scenario_live import run_day30_live

    base = Settings()
    require_kafka(base)
    run = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    where = workdir / run
    settings = base.model_copy(
        update={
            "topic_prefix": f"{base.topic_prefix}.day30-{run}",
            "clickhouse_dsn": f"chdb://{where / 'clickhouse'}",
        }
    )
    t0 = time.monotonic()
    console.print(f"topics {settings.topic_prefix}.* . clickhouse {settings.clickhouse_dsn}")
    try:
        result = run_day30_live(
            settings,
            config,
            models_dir=models_dir,
            exports_dir=where / "exports",
            without=without,
            weak=weak,
            crowd_share=crowd_share,
            progress=lambda m: console.print(f"[dim]- {time.monotonic() - t0:6.1f}s {m}[/]"),
        )
    except (LabeltrailError, RuntimeError, TimeoutError) as exc:
        raise fail(exc) from exc
    finally:
        if not keep_topics:
            delete_topics(settings)
    console.print(f"stages {', '.join(result.stages)}; {result.seconds:.0f}s")
    console.print(
        f"flagged slices {result.flagged}; relabel requests {result.relabel_requests}; "
        f"expert requests by producer {result.expert_requests}"
    )
    for alert in result.blind_spot_alerts:
        console.print(
            f"iaa blind-spot alert: {alert.window} window, slice {alert.slice}, agreement "
            f"{alert.agreement or 0:.2f}, gold accuracy {alert.gold_accuracy or 0:.2f} "
            f"({alert.n_gold_items} gold items)",
            soft_wrap=True,
        )
    console.print(f"export rows v1={result.exports[0].row_count} v2={result.exports[1].row_count}")
    console.print(f"scored by v1 {result.v1_scored}; crowd tasks from them {result.v1_tasks}")
    console.print(
        f"training rows by source v1={result.train_sources[0]} v2={result.train_sources[1]}; "
        f"weak labels committed {result.weak_labels}; comments the crowd left unanswered "
        f"{result.unanswered}"
    )
    v1, v2 = result.v1.metrics, result.v2.metrics
    kind = type(result.v2).__name__
    console.print(f"v1 {result.v1.model_version} -> v2 {result.v2.model_version} ({kind})")
    for name in sorted({k.split(".")[1] for k in v1 if k.startswith("gold.") and k.endswith(".n")}):
        recall = {
            k.rsplit(".", 1)[1]: (round(v1[k], 3), round(v2.get(k, 0.0), 3))
            for k in v1
            if k.startswith(f"gold.{name}.recall.")
        }
        console.print(
            f"{name:<18} n={int(v1[f'gold.{name}.n']):<4} accuracy "
            f"{v1[f'gold.{name}.accuracy']:.3f} -> {v2.get(f'gold.{name}.accuracy', 0.0):.3f}  "
            f"recall (v1, v2) {json.dumps(recall)}",
            highlight=False,
            soft_wrap=True,
        )


def register(app: typer.Typer) -> None:
    """Add ``train``, ``score``, ``day30`` and the ``lf`` group to ``app``."""
    app.command("train")(train)
    app.command("score")(score)
    app.command("day30")(day30)
    app.add_typer(lf_app, name="lf")
