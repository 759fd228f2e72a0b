"""Benchmark: labeltrail DawidSkene vs Crowd-Kit DawidSkene(n_iter=50), same seeded crowd;
and labeltrail GLAD vs Crowd-Kit GLAD at a small scale (Crowd-Kit's GLAD runs in pandas).

    python ops/bench/dawid_skene.py [--scale small|article] [--seed 0] [--skip-peer] [--no-glad]

article: 800,000 items, 5 classes (priors 0.70/0.15/0.08/0.05/0.02), 240 annotators with their
own confusion matrices, 3 votes per item (2.4 million votes). The data are generated once, saved
as .npy, and each side runs in its own subprocess that loads them, so peak RSS (ru_maxrss) is
measured per side. Crowd-Kit needs a pandas DataFrame, which it builds from the same arrays.

Figures, each one JSON line {"figure", "value", "unit", "peer", "peer_value", "ratio"} with
ratio > 1 meaning labeltrail is better:

* ``ds_*_like_for_like_50_iterations_float32`` and ``..._float64``: both sides run exactly 50
  EM iterations (ours ``tol=0``; Crowd-Kit ``tol=-inf``, so its stopping rule never fires: with
  its default ``tol=1e-5`` it stopped early and the "like for like" peer did less work), ours
  in each of its two precisions (float32 is its default; Crowd-Kit computes in float64).
  ``em_iterations`` shows both sides' counts, which must be equal.
* ``ds_*_default_vs_default``: each side as shipped, ours ``DawidSkene()`` (tol=1e-5, at most
  100 iterations, float32) against Crowd-Kit's ``DawidSkene()`` (tol=1e-5, at most 100): each
  stops by its own rule; not like for like, the iteration counts say how far apart.
* ``glad_*_like_for_like_10_iterations_glad``: GLAD on GLAD_SCALE (5,000 items, 30 annotators,
  3 votes each = 15,000 votes), both sides exactly 10 EM iterations of 25 conjugate-gradient
  steps (ours tol=0; Crowd-Kit tol=-inf so its stopping rule never fires).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections.abc import Callable

import numpy as np

SCALES = {"small": (50_000, 60), "article": (800_000, 240)}
GLAD_SCALE = (5_000, 30)
DS_ITER, GLAD_ITER = 50, 10
PRECISIONS = ("float32", "float64")

WORKER = r"""
import json, resource, sys, time
import numpy as np
side, folder = sys.argv[1], sys.argv[2]
item = np.load(folder + "/item.npy"); ann = np.load(folder + "/annotator.npy")
lab = np.load(folder + "/label.npy"); truth = np.load(folder + "/truth.npy")
if side == "ours_glad":
    from labeltrail.quality import GLAD, Votes
    t0 = time.perf_counter()
    model = GLAD(max_iter=10, tol=0.0).fit(Votes.from_codes(item, ann, lab))
    pred = model.labels_
    seconds = time.perf_counter() - t0
    n_iter = model.n_iter_
elif side == "crowdkit_glad":
    import pandas as pd
    from crowdkit.aggregation import GLAD
    t0 = time.perf_counter()
    df = pd.DataFrame({"task": item, "worker": ann, "label": lab})
    model = GLAD(n_iter=10, tol=-float("inf"))
    res = model.fit_predict(df)
    pred = res.reindex(np.arange(truth.size)).to_numpy()
    seconds = time.perf_counter() - t0
    n_iter = len(model.loss_history_)
elif side.startswith("ours"):
    from labeltrail.quality import DawidSkene, Votes
    t0 = time.perf_counter()
    votes = Votes.from_codes(item, ann, lab)
    if side == "ours_default":
        model = DawidSkene()
    else:
        precision = "float64" if side.endswith("float64") else "float32"
        model = DawidSkene(max_iter=50, tol=0.0, precision=precision)
    model.fit(votes)
    pred = model.labels_
    seconds = time.perf_counter() - t0
    n_iter = model.n_iter_
else:
    import pandas as pd
    from crowdkit.aggregation import DawidSkene
    t0 = time.perf_counter()
    df = pd.DataFrame({"task": item, "worker": ann, "label": lab})
    model = DawidSkene() if side == "crowdkit_default" else DawidSkene(n_iter=50, tol=-float("inf"))
    res = model.fit_predict(df)
    pred = res.reindex(np.arange(truth.size)).to_numpy()
    seconds = time.perf_counter() - t0
    n_iter = len(model.loss_history_)
acc = float(np.mean(pred == truth))
rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "accuracy": acc, "peak_rss_mb": rss_mb, "n_iter": n_iter}))
"""


def _run(side: str, folder: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", WORKER, side, folder], check=True, capture_output=True, text=True
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


FIGURES: list[tuple[str, str, str, Callable[[float, float], float]]] = [
    ("fit_seconds", "seconds", "s", lambda o, p: p / o),
    ("peak_rss", "peak_rss_mb", "MB", lambda o, p: p / o),
    ("accuracy", "accuracy", "fraction", lambda o, p: o / p),
    ("em_iterations", "n_iter", "iterations", lambda o, p: p / o),
]


def _rows(prefix: str, ours: dict[str, float], peer: dict[str, float] | None, name: str) -> None:
    """One JSON line per figure: ratio > 1 means ours is better (None without a peer run)."""
    for figure, key, unit, ratio in FIGURES:
        peer_value = None if peer is None else peer[key]
        row = {
            "figure": f"{prefix.split('*')[0]}{figure}{prefix.split('*')[1]}",
            "value": ours[key],
            "unit": unit,
            "peer": name,
            "peer_value": peer_value,
            "ratio": None if peer_value is None else ratio(ours[key], peer_value),
        }
        print(json.dumps(row))


def _save(crowd: object, folder: str) -> None:
    for name in ("item", "annotator", "label", "truth"):
        np.save(f"{folder}/{name}.npy", getattr(crowd, name))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="small")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-peer", action="store_true", help="time labeltrail only")
    parser.add_argument("--no-glad", action="store_true", help="skip the GLAD comparison")
    args = parser.parse_args()
    from labeltrail.sim.crowd import simulate_crowd

    n_items, n_annotators = SCALES[args.scale]
    crowd = simulate_crowd(n_items, n_annotators, 3, seed=args.seed)
    glad_crowd = simulate_crowd(*GLAD_SCALE, 3, seed=args.seed)
    glad_ours = glad_peer = None
    with tempfile.TemporaryDirectory() as folder:
        _save(crowd, folder)
        fixed = {p: _run(f"ours_fixed50_{p}", folder) for p in PRECISIONS}
        peer = None if args.skip_peer else _run("crowdkit_fixed50", folder)
        ours = _run("ours_default", folder)
        default_peer = None if args.skip_peer else _run("crowdkit_default", folder)
        if not args.no_glad:
            _save(glad_crowd, folder)
            glad_ours = _run("ours_glad", folder)
            glad_peer = None if args.skip_peer else _run("crowdkit_glad", folder)
    info = {"scale": args.scale, "votes": int(crowd.item.size), "seed": args.seed}
    raw = {
        "info": info,
        **{f"ds_ours_50_iterations_{p}": fixed[p] for p in PRECISIONS},
        "ds_crowdkit_50_iterations": peer,
        "ds_ours_default": ours,
        "ds_crowdkit_default": default_peer,
        "glad_votes": int(glad_crowd.item.size),
        "glad_ours_10_iterations": glad_ours,
        "glad_crowdkit_10_iterations": glad_peer,
    }
    print(json.dumps(raw), file=sys.stderr)
    ds_peer = f"crowd-kit DawidSkene(n_iter={DS_ITER}, tol=-inf), float64"
    for p in PRECISIONS:
        _rows(f"ds_*_like_for_like_{DS_ITER}_iterations_{p}_{args.scale}", fixed[p], peer, ds_peer)
    default_name = "crowd-kit DawidSkene() (n_iter=100, tol=1e-5)"
    _rows(f"ds_*_default_vs_default_{args.scale}", ours, default_peer, default_name)
    if glad_ours is not None:
        glad_peer_name = f"crowd-kit GLAD(n_iter={GLAD_ITER}, tol=-inf)"
        _rows(
            f"glad_*_like_for_like_{GLAD_ITER}_iterations_glad",
            glad_ours,
            glad_peer,
            glad_peer_name,
        )


if __name__ == "__main__":
    main()
