"""Benchmark: onnxruntime scoring vs torch eager on the same model, tokenization included.

    python ops/bench/scoring.py [--scale small|article] [--seed 0]

Trains the default classifier (2**18 hashed buckets, 64-d embeddings) on simulated rich-text
comments with soft labels, exports it to ONNX, then scores the same comment stream both ways in
the same process: featurize (pure numpy) + forward, batches of ``--batch`` featurized at once and
run in the same trimmed 256-row sub-batches on both sides, one intra-op thread each (the machine
is shared). Also single-comment latency (the live per-event path).
``small`` scores 200,000 comments per side; ``article`` scores the article's full 12 million pool
with onnxruntime (texts cycle through 200,000 generated ones; each is featurized anew) and
extrapolates torch from 1 million. Prints one JSON object per figure; ratio > 1: ours is better.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

SCALES = {"small": (200_000, 200_000), "article": (12_000_000, 1_000_000)}
POOL = 12_000_000


def _texts(n: int, seed: int) -> tuple[list[str], np.ndarray]:
    from labeltrail.ontology.schema import MODERATION_CLASSES
    from labeltrail.sim.text import RichTextGenerator

    rng = np.random.default_rng(seed)
    gen = RichTextGenerator(seed)
    truth = rng.choice(5, size=n, p=[0.70, 0.15, 0.08, 0.05, 0.02])
    coded = (truth == 2) & (rng.random(n) < 0.3)
    texts = [
        gen.text(MODERATION_CLASSES[t], bool(c), i)
        for i, (t, c) in enumerate(zip(truth, coded, strict=True))
    ]
    return texts, truth


def _throughput(
    predict: Callable[[Sequence[str]], np.ndarray], texts: list[str], total: int, batch: int
) -> tuple[float, float]:
    """Comments per second over ``total`` comments cycling through ``texts``."""
    predict(texts[:batch])  # warm up
    done, i = 0, 0
    started = time.perf_counter()
    while done < total:
        chunk = texts[i : i + batch]
        if len(chunk) < batch:
            i, chunk = 0, texts[:batch]
        predict(chunk)
        i += batch
        done += len(chunk)
    seconds = time.perf_counter() - started
    return done / seconds, seconds


def _latency_us(predict: Callable[[Sequence[str]], np.ndarray], texts: list[str]) -> float:
    for t in texts[:50]:
        predict([t])
    started = time.perf_counter()
    for t in texts[:2000]:
        predict([t])
    return (time.perf_counter() - started) / 2000 * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="small")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch", type=int, default=1024)
    args = parser.parse_args()
    import torch

    from labeltrail.learning.scoring import OnnxTextScorer
    from labeltrail.learning.torch_model import predict_proba_torch
    from labeltrail.learning.training import SoftLabelTrainer
    from labeltrail.ontology.schema import MODERATION_CLASSES

    ours_total, torch_total = SCALES[args.scale]
    texts, truth = _texts(200_000, args.seed)
    train_n = 20_000
    targets = np.full((train_n, 5), 0.05)
    targets[np.arange(train_n), truth[:train_n]] = 0.8
    trainer = SoftLabelTrainer(MODERATION_CLASSES, epochs=2, batch_size=128, seed=args.seed)
    trainer.fit(texts[:train_n], targets, np.ones(train_n))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.onnx"
        started = time.perf_counter()
        trainer.export_onnx(path)
        export_seconds = time.perf_counter() - started
        scorer = OnnxTextScorer(path, threads=1, batch_size=args.batch)
        torch.set_num_threads(1)
        model = trainer.model_
        featurizer = trainer.featurizer

        def eager(batch: Sequence[str]) -> np.ndarray:
            # Same featurization and the same 256-row trimmed sub-batches as the ORT scorer.
            ids = featurizer.transform(batch)
            counts = (ids != 0).sum(axis=1)
            parts = []
            for start in range(0, ids.shape[0], scorer.run_batch):
                width = max(1, int(counts[start : start + scorer.run_batch].max()))
                block = np.ascontiguousarray(ids[start : start + scorer.run_batch, :width])
                parts.append(predict_proba_torch(model, block))
            return np.concatenate(parts)

        probe = texts[:4096]
        gap = float(np.abs(scorer.predict_proba(probe) - eager(probe)).max())
        ours_rate, ours_seconds = _throughput(scorer.predict_proba, texts, ours_total, args.batch)
        torch_rate, _ = _throughput(eager, texts, torch_total, args.batch)
        ours_lat = _latency_us(scorer.predict_proba, texts)
        torch_lat = _latency_us(eager, texts)
        feat_rate, _ = _throughput(featurizer.transform, texts, 100_000, args.batch)
    accuracy = float(np.mean(scorer.predict_proba(texts[-20_000:]).argmax(1) == truth[-20_000:]))
    info = {
        "scale": args.scale,
        "train_examples": train_n,
        "fit_seconds": trainer.fit_seconds_,
        "export_seconds": export_seconds,
        "max_abs_diff_onnx_vs_torch": gap,
        "holdout_accuracy_vs_sim_truth": accuracy,
        "featurize_only_per_s": feat_rate,
        "ours_seconds": ours_seconds,
    }
    print(json.dumps(info), file=sys.stderr)
    pool_minutes = POOL / ours_rate / 60
    rows = [
        (
            "scoring_throughput",
            ours_rate,
            "comments/s",
            "torch eager",
            torch_rate,
            ours_rate / torch_rate,
        ),
        (
            "scoring_latency_single",
            ours_lat,
            "us/comment",
            "torch eager",
            torch_lat,
            torch_lat / ours_lat,
        ),
        ("pool_12m_minutes", pool_minutes, "minutes", "goal", 10.0, 10.0 / pool_minutes),
        ("featurize_throughput", feat_rate, "comments/s", None, None, None),
        ("train_seconds_20k", trainer.fit_seconds_, "s", None, None, None),
        ("onnx_export_seconds", export_seconds, "s", None, None, None),
        ("onnx_torch_max_abs_diff", gap, "probability", "tolerance", 1e-5, 1e-5 / max(gap, 1e-12)),
    ]
    for figure, value, unit, peer, peer_value, ratio in rows:
        print(
            json.dumps(
                {
                    "figure": f"{figure}_{args.scale}",
                    "value": value,
                    "unit": unit,
                    "peer": peer,
                    "peer_value": peer_value,
                    "ratio": ratio,
                }
            )
        )


if __name__ == "__main__":
    main()
