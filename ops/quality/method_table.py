"""Accuracy of every consensus method tried, on every reference set, under both protocols.

    .venv/bin/python ops/quality/method_table.py [--glad] [--stress] [--out table.md]

Rows: methods (the registry's plus the candidate priors tried for the default, docs/quality.md
"Default method"); columns: the reference sets of ``../shared/datasets``. Protocols
(labeltrail.quality.reference): ``crowdkit`` (duplicates kept, ties to the lowest label) and
``bayes`` (exact duplicates dropped, fractional ties). ``--stress`` adds the sparse stress test:
each annotator's votes split, in a seeded random order, into pseudo-annotators of 3 (or 10)
votes, which leaves majority vote unchanged and leaves every per-annotator model little
evidence per annotator (what real sparse crowds look like). ``--glad`` adds GLAD (slow on S_Rel).
Candidate settings are fixed for all sets: no per-set tuning.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from labeltrail.quality import (
    GLAD,
    MACE,
    DawidSkene,
    MajorityVote,
    OneCoinDawidSkene,
    PooledDawidSkene,
    Votes,
    WeightedMajorityVote,
)
from labeltrail.quality.reference import (
    REFERENCE_SETS,
    accuracy,
    drop_duplicate_votes,
    load_reference,
)

ROOT = Path(__file__).resolve().parents[2].parent / "shared" / "datasets"


class _Symmetric(PooledDawidSkene):
    """Prior mean: the pooled one-coin row (pooled skill on the diagonal, the rest even)."""

    def _prior_mean(self, rows: NDArray[np.float64], pooled: NDArray[np.float64]) -> NDArray[Any]:
        k = pooled.shape[0]
        skill = np.trace(rows.sum(axis=0)) / max(float(rows.sum()), 1e-12)
        eye = np.eye(k)
        return (skill * eye + (1 - skill) / max(k - 1, 1) * (1 - eye))[None]


class _OneCoinPooled(PooledDawidSkene):
    """Prior mean: the annotator's own (Beta(2)-shrunk) skill on the diagonal, errors spread
    like the pooled matrix's off-diagonal."""

    def _prior_mean(self, rows: NDArray[np.float64], pooled: NDArray[np.float64]) -> NDArray[Any]:
        eye = np.eye(pooled.shape[0])
        hits, n = np.trace(rows, axis1=1, axis2=2), rows.sum(axis=(1, 2))
        skill = (hits + 2.0 * hits.sum() / max(n.sum(), 1e-12)) / (n + 2.0)
        off = pooled * (1 - eye)
        off /= np.clip(off.sum(axis=1, keepdims=True), 1e-12, None)
        out: NDArray[Any] = skill[:, None, None] * eye + (1 - skill)[:, None, None] * off[None]
        return out


def _map(cls: type[PooledDawidSkene]) -> type[PooledDawidSkene]:
    """The same prior, point estimate (posterior mode with +prior pseudo-counts) instead of VB."""

    class MAP(cls):  # type: ignore[valid-type,misc]
        def _expected_log(self, post: NDArray[np.float64], total: Any) -> NDArray[np.float64]:
            out: NDArray[np.float64] = np.log(post / total)
            return out

    return MAP


Method = Callable[[Votes], NDArray[np.floating]]


def _fit_prior(cls: type[PooledDawidSkene], strength: float, votes: Votes) -> NDArray[Any]:
    return cls(strength=strength).fit_predict_proba(votes)


def methods(glad: bool) -> dict[str, Method]:
    out: dict[str, Method] = {
        "MV": lambda v: MajorityVote().fit_predict_proba(v),
        "WMV (Wawa)": lambda v: WeightedMajorityVote().fit_predict_proba(v),
        "one-coin DS": lambda v: OneCoinDawidSkene().fit_predict_proba(v),
        "DS": lambda v: DawidSkene().fit_predict_proba(v),
        "DS init=mv": lambda v: DawidSkene(init="mv").fit_predict_proba(v),
        "MACE (EM)": lambda v: MACE().fit_predict_proba(v),
        "MACE (VB)": lambda v: MACE(vb=True).fit_predict_proba(v),
        "MACE learn_priors": lambda v: MACE(learn_priors=True).fit_predict_proba(v),
        "**PDS (default)**": lambda v: PooledDawidSkene().fit_predict_proba(v),
    }
    families: dict[str, type[PooledDawidSkene]] = {
        "pooled": PooledDawidSkene,
        "one-coin-pooled": _OneCoinPooled,
        "symmetric": _Symmetric,
    }
    for fam, cls in families.items():
        for est, c in (("VB", cls), ("MAP", _map(cls))):
            for s in (0.25, 0.5, 1.0, 2.0, 4.0):
                if fam == "symmetric" and s not in (1.0, 2.0, 4.0):
                    continue
                out[f"{fam} {est} s={s:g}"] = partial(_fit_prior, c, s)
    if glad:
        out["GLAD"] = lambda v: GLAD().fit_predict_proba(v)
    return out


def split_annotators(votes: Votes, size: int, seed: int = 0) -> Votes:
    """Each annotator's votes, in a seeded random order, cut into pseudo-annotators of ``size``."""
    order = np.random.default_rng(seed).permutation(votes.n_votes)
    ann = votes.annotator[order]
    by_ann = np.argsort(ann, kind="stable")
    counts = np.bincount(ann, minlength=votes.n_annotators)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.empty(votes.n_votes, np.int64)
    rank[by_ann] = np.arange(votes.n_votes) - np.repeat(starts, counts)
    pseudo = np.empty(votes.n_votes, np.int64)
    pseudo[order] = ann * (votes.n_votes // size + 1) + rank // size
    ids, codes = np.unique(pseudo, return_inverse=True)
    return Votes(
        votes.item, codes.astype(np.int64), votes.label, votes.item_ids, ids, votes.classes
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--glad", action="store_true")
    ap.add_argument("--stress", action="store_true")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    sets = [r for r in REFERENCE_SETS if (ROOT / r.folder).exists()]
    data = {r.name: load_reference(ROOT / r.folder) for r in sets}
    variants: dict[str, Callable[[Votes], Votes]] = {
        "crowdkit": lambda v: v,
        "bayes": drop_duplicate_votes,
    }
    if args.stress:
        variants["split3"] = lambda v: split_annotators(v, 3)
        variants["split10"] = lambda v: split_annotators(v, 10)
    lines = []
    for variant, prepare in variants.items():
        ties = "fractional" if variant == "bayes" else "lowest"
        prepared = {n: (prepare(v), g) for n, (v, g) in data.items()}
        lines += [
            "",
            f"protocol {variant} (ties {ties})",
            "",
            "| method | " + " | ".join(r.name for r in sets) + " |",
            "|---|" + "---:|" * len(sets),
        ]
        for name, fit in methods(args.glad and variant == "crowdkit").items():
            t0 = time.perf_counter()
            accs = [accuracy(fit(v), g, ties) for v, g in prepared.values()]  # type: ignore[arg-type]
            lines.append(f"| {name} | " + " | ".join(f"{a:.4f}" for a in accs) + " |")
            print(lines[-1], f"({time.perf_counter() - t0:.1f} s)", file=sys.stderr, flush=True)
    text = "\n".join(lines) + "\n"
    if args.out:
        args.out.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
