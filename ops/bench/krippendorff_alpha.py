"""Benchmark: labeltrail Krippendorff's alpha vs the ``krippendorff`` package, same inputs.

    python ops/bench/krippendorff_alpha.py [--scale small|article] [--seed 0]

Two inputs from one seeded synthetic crowd (article: 800,000 items x 3 votes, 5 classes):
value counts (n_units, n_values) for every level, and a coder-by-unit reliability matrix with
NaN for missing ratings (article: 40 coders x 100,000 units, to stay within memory). Each
figure is the best of 3 runs. Prints one JSON object per figure; ratio = peer time / our time.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

import krippendorff
import numpy as np

from labeltrail.quality.agreement import krippendorff_alpha, krippendorff_alpha_counts
from labeltrail.sim.crowd import simulate_crowd

SCALES = {"small": (50_000, 60, 20_000, 20), "article": (800_000, 240, 100_000, 40)}
LEVELS = ("nominal", "ordinal", "interval", "ratio")


def _best(fn: Callable[[], float], repeat: int = 3) -> tuple[float, float]:
    times, value = [], float("nan")
    for _ in range(repeat):
        t0 = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - t0)
    return min(times), value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="small")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    n_items, n_ann, n_units, n_coders = SCALES[args.scale]
    crowd = simulate_crowd(n_items, n_ann, 3, seed=args.seed)
    k = int(crowd.label.max()) + 1
    counts = np.bincount(crowd.item * k + crowd.label, minlength=n_items * k).reshape(n_items, k)
    values = np.arange(1, k + 1, dtype=np.float64)  # 1-based so ratio is defined
    small = simulate_crowd(n_units, n_coders, 3, seed=args.seed + 1)
    matrix = np.full((n_coders, n_units), np.nan)
    matrix[small.annotator, small.item] = small.label + 1.0
    peer = (
        "krippendorff " + krippendorff.__version__
        if hasattr(krippendorff, "__version__")
        else "krippendorff"
    )
    for level in LEVELS:
        cases = {
            "counts": (
                lambda lv=level: krippendorff_alpha_counts(counts, values, lv),
                lambda lv=level: float(
                    krippendorff.alpha(
                        value_counts=counts, value_domain=values, level_of_measurement=lv
                    )
                ),
            ),
            "matrix": (
                lambda lv=level: krippendorff_alpha(matrix, lv),
                lambda lv=level: float(
                    krippendorff.alpha(reliability_data=matrix, level_of_measurement=lv)
                ),
            ),
        }
        for shape, (ours_fn, peer_fn) in cases.items():
            t_ours, v_ours = _best(ours_fn)
            t_peer, v_peer = _best(peer_fn)
            name = f"alpha_{level}_{shape}_{args.scale}"
            print(
                json.dumps(
                    {
                        "figure": f"{name}_seconds",
                        "value": t_ours,
                        "unit": "s",
                        "peer": peer,
                        "peer_value": t_peer,
                        "ratio": t_peer / t_ours,
                    }
                )
            )
            print(
                json.dumps(
                    {
                        "figure": f"{name}_value",
                        "value": v_ours,
                        "unit": "alpha",
                        "peer": peer,
                        "peer_value": v_peer,
                        "ratio": v_ours / v_peer if v_peer else None,
                        "abs_diff": abs(v_ours - v_peer),
                    }
                )
            )


if __name__ == "__main__":
    main()
