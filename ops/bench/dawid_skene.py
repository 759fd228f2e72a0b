"""Benchmark: labeltrail DawidSkene vs Crowd-Kit DawidSkene(n_iter=50), same seeded crowd.

    python ops/bench/dawid_skene.py [--scale small|article] [--seed 0]

article: 800,000 items, 5 classes (priors 0.70/0.15/0.08/0.05/0.02), 240 annotators with their
own confusion matrices, 3 votes per item (2.4 million votes). The data are generated once, saved
as .npy, and each side runs in its own subprocess that loads them, so peak RSS (ru_maxrss) is
measured per side. Crowd-Kit needs a pandas DataFrame, which it builds from the same arrays.
Prints one JSON object per figure; ratio > 1 means labeltrail is better.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile

import numpy as np

SCALES = {"small": (50_000, 60), "article": (800_000, 240)}

WORKER = r"""
import json, resource, sys, time
import numpy as np
side, folder = sys.argv[1], sys.argv[2]
item = np.load(folder + "/item.npy"); ann = np.load(folder + "/annotator.npy")
lab = np.load(folder + "/label.npy"); truth = np.load(folder + "/truth.npy")
if side.startswith("ours"):
    from labeltrail.quality import DawidSkene, Votes
    t0 = time.perf_counter()
    votes = Votes.from_codes(item, ann, lab)
    tol = 0.0 if side == "ours_fixed50" else 1e-5
    model = DawidSkene(max_iter=50, tol=tol).fit(votes)
    pred = model.labels_
    seconds = time.perf_counter() - t0
    n_iter = model.n_iter_
else:
    import pandas as pd
    from crowdkit.aggregation import DawidSkene
    t0 = time.perf_counter()
    df = pd.DataFrame({"task": item, "worker": ann, "label": lab})
    model = DawidSkene(n_iter=50)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="small")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-peer", action="store_true", help="time labeltrail only")
    args = parser.parse_args()
    from labeltrail.quality.simulate import simulate_crowd

    n_items, n_annotators = SCALES[args.scale]
    crowd = simulate_crowd(n_items, n_annotators, 3, seed=args.seed)
    with tempfile.TemporaryDirectory() as folder:
        for name in ("item", "annotator", "label", "truth"):
            np.save(f"{folder}/{name}.npy", getattr(crowd, name))
        ours = _run("ours", folder)
        fixed = _run("ours_fixed50", folder)
        peer = None if args.skip_peer else _run("crowdkit", folder)
    info = {"scale": args.scale, "votes": int(crowd.item.size), "seed": args.seed}
    raw = {"info": info, "ours_tol1e-5": ours, "ours_fixed50": fixed, "crowdkit": peer}
    print(json.dumps(raw), file=sys.stderr)
    figures = [
        ("ds_fit_seconds", "seconds", "s", lambda o, p: p / o),
        ("ds_peak_rss", "peak_rss_mb", "MB", lambda o, p: p / o),
        ("ds_accuracy", "accuracy", "fraction", lambda o, p: o / p),
        ("ds_em_iterations", "n_iter", "iterations", lambda o, p: p / o),
    ]
    runs = [(ours, "tol1e-5"), (fixed, "fixed50")]
    for (run, tag), (figure, key, unit, ratio) in ((r, f) for r in runs for f in figures):
        value = run[key]
        peer_value = None if peer is None else peer[key]
        row = {
            "figure": f"{figure}_{tag}_{args.scale}",
            "value": value,
            "unit": unit,
            "peer": "crowd-kit DawidSkene(n_iter=50)",
            "peer_value": peer_value,
            "ratio": None if peer_value is None else ratio(value, peer_value),
        }
        print(json.dumps(row))


if __name__ == "__main__":
    main()
