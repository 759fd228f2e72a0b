"""Command line for the quality core: ``labeltrail aggregate`` and ``labeltrail agreement``.

Thin wrappers: read a vote CSV (columns item, annotator, label), call
:mod:`labeltrail.quality`, write CSV or print. ``register(app)`` adds the commands to the main
typer app.
"""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd
import typer

from labeltrail.cli.common import fail
from labeltrail.exceptions import QualityError
from labeltrail.quality import TIE_RULE, Votes
from labeltrail.quality._base import Aggregator
from labeltrail.quality.agreement import (
    cohen_kappa_table,
    fleiss_kappa,
    krippendorff_alpha_counts,
)
from labeltrail.quality.agreement_items import bootstrap_ci
from labeltrail.quality.methods import make_method

__all__ = ["register"]

VOTE_COLUMNS = ("item", "annotator", "label")


class Method(StrEnum):
    mv = "mv"
    wmv = "wmv"
    ds = "ds"
    ods = "ods"
    mace = "mace"
    glad = "glad"
    pds = "pds"


class Metric(StrEnum):
    alpha = "alpha"
    fleiss = "fleiss"
    cohen = "cohen"


class Level(StrEnum):
    nominal = "nominal"
    ordinal = "ordinal"
    interval = "interval"
    ratio = "ratio"


def _read_csv(path: Path, columns: tuple[str, ...]) -> pd.DataFrame:
    if not path.is_file():
        raise fail(f"{path}: no such file", 2)
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise fail(f"{path}: not a readable CSV ({exc})", 2) from exc
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise fail(f"{path}: missing column(s) {', '.join(missing)}; need {', '.join(columns)}", 2)
    frame = frame[list(columns)]
    empty = (frame == "").any(axis=1)
    if empty.any():
        line = int(np.flatnonzero(empty.to_numpy())[0]) + 2
        raise fail(f"{path}: empty value on line {line}", 2)
    if frame.empty:
        raise fail(f"{path}: no rows", 2)
    return frame


def _labels(values: pd.Series) -> np.ndarray[Any, Any]:
    """Integers when every label is an integer (so 2 < 10 sorts numerically), else strings."""
    try:
        ints: np.ndarray[Any, Any] = values.astype(np.int64).to_numpy()
    except ValueError:
        strs: np.ndarray[Any, Any] = values.astype(str).to_numpy(dtype=object)
        return strs
    return ints


def _votes(path: Path) -> Votes:
    frame = _read_csv(path, VOTE_COLUMNS)
    try:
        return Votes.from_long(
            frame["item"].to_numpy(dtype=object),
            frame["annotator"].to_numpy(dtype=object),
            _labels(frame["label"]),
        )
    except QualityError as exc:
        raise fail(f"{path}: {exc}", 2) from exc


GOLD_METHODS = (Method.ds, Method.glad, Method.pds)


def _model(method: Method) -> Aggregator:
    return make_method(method.value)


def aggregate(
    votes_csv: Annotated[Path, typer.Argument(help="CSV with columns item, annotator, label")],
    method: Annotated[
        Method, typer.Option(help="consensus method (default pds: docs/quality.md)")
    ] = Method.pds,
    gold: Annotated[
        Path | None,
        typer.Option(help="CSV item,label; held fixed by ds, pds and glad (others ignore it)"),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="output CSV (default: stdout)")] = None,
) -> None:
    """Aggregate votes: writes item, label, confidence and p_<class> per item."""
    votes = _votes(votes_csv)
    gold_map = None
    if gold is not None:
        frame = _read_csv(gold, ("item", "label"))
        labels = _labels(frame["label"])
        gold_map = dict(zip(frame["item"].tolist(), labels.tolist(), strict=True))
    model = _model(method)
    try:
        model.fit(votes, gold_map if method in GOLD_METHODS else None)
    except QualityError as exc:
        raise fail(str(exc), 2) from exc
    result = pd.DataFrame(
        {
            "item": votes.item_ids,
            "label": votes.decode(model.labels_),
            "confidence": model.confidence_,
        }
    )
    for k, cls in enumerate(votes.classes.tolist()):
        result[f"p_{cls}"] = np.asarray(model.posteriors_[:, k], dtype=np.float64)
    if out is None:
        result.to_csv(sys.stdout, index=False, float_format="%.6g")
    else:
        result.to_csv(out, index=False, float_format="%.6g")
        typer.echo(f"wrote {len(result)} items to {out} (method {method.value}, ties {TIE_RULE})")


def _agreement_units(votes: Votes, metric: Metric, level: Level) -> tuple[Any, Any]:
    """Returns (statistic over unit rows, unit rows) for the chosen metric."""
    k = votes.n_classes
    counts = np.bincount(votes.item * k + votes.label, minlength=votes.n_items * k)
    counts = counts.reshape(votes.n_items, k).astype(np.float64)
    if metric is Metric.fleiss:
        return fleiss_kappa, counts
    if metric is Metric.alpha:
        values = np.arange(k, dtype=np.float64)
        if level is not Level.nominal:
            try:
                values = votes.classes.astype(np.float64)
            except (TypeError, ValueError) as exc:
                raise fail(f"{level.value} alpha needs numeric labels", 2) from exc
        return (lambda c: krippendorff_alpha_counts(c, values, level.value)), counts
    if votes.n_annotators != 2:
        raise fail(f"cohen needs exactly 2 annotators, found {votes.n_annotators}", 2)
    pairs = np.full((votes.n_items, 2), -1, dtype=np.int64)
    pairs[votes.item, votes.annotator] = votes.label
    pairs = pairs[(pairs >= 0).all(axis=1)]
    weights = {Level.nominal: None, Level.ordinal: "linear", Level.interval: "quadratic"}.get(
        level, "quadratic"
    )

    def cohen(p: np.ndarray[Any, Any]) -> float:
        table = np.bincount(p[:, 0] * k + p[:, 1], minlength=k * k).reshape(k, k)
        return cohen_kappa_table(table, weights)  # type: ignore[arg-type]

    return cohen, pairs


def agreement(
    votes_csv: Annotated[Path, typer.Argument(help="CSV with columns item, annotator, label")],
    metric: Annotated[Metric, typer.Option(help="agreement statistic")] = Metric.alpha,
    level: Annotated[
        Level,
        typer.Option(help="alpha level; cohen: ordinal=linear weights, interval/ratio=quadratic"),
    ] = Level.nominal,
    ci: Annotated[bool, typer.Option("--ci", help="add a 95% bootstrap interval")] = False,
    n_boot: Annotated[int, typer.Option(help="bootstrap resamples")] = 1000,
    seed: Annotated[int, typer.Option(help="bootstrap seed")] = 0,
) -> None:
    """Print an agreement statistic (and with --ci a percentile bootstrap interval over items)."""
    votes = _votes(votes_csv)
    statistic, units = _agreement_units(votes, metric, level)
    try:
        if not ci:
            typer.echo(f"{statistic(units):.6f}")
            return
        res = bootstrap_ci(statistic, units, n_boot=n_boot, seed=seed)
    except QualityError as exc:
        raise fail(str(exc), 2) from exc
    typer.echo(
        f"{res.estimate:.6f} [{res.low:.6f}, {res.high:.6f}] ({res.level:.0%} bootstrap, "
        f"{res.n_boot} resamples)"
    )


def register(app: typer.Typer) -> None:
    """Add ``aggregate`` and ``agreement`` to ``app``."""
    app.command("aggregate")(aggregate)
    app.command("agreement")(agreement)
