"""Benchmark: active learning vs random sampling, labels needed to reach random's accuracy.

    python ops/bench/active_learning.py [--scale small|article] [--dataset sim|convabuse|both]

The learner is the production classifier (hashed n-grams, soft-label torch training). From a
random seed set, each round trains on the labelled items, scores the unlabelled pool and buys a
batch: random, least confidence, margin, or query-by-committee (3 models on bootstrap resamples),
the uncertainty strategies with the diversity term of ``select_batch``. Accuracy is measured on a
held-out test set after every round, averaged over seeds. The figure: the fewest labels with
which each strategy's mean accuracy reaches random sampling's mean accuracy at the full budget;
ratio = budget / that (>= 2 means at most half the labels).

sim: simulated platform comments (rich text), oracle = the hidden truth, 5 classes.
convabuse: ../shared/datasets/convabuse, train split as the pool (labels = the annotators' mean
vote as a soft target), test split for accuracy against the majority vote.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

DATASETS = Path(__file__).resolve().parents[2].parent / "shared" / "datasets"
# per dataset: seed size, batch size, budget, seeds, pool size (sim only)
SCALES = {
    "small": {"sim": (20, 20, 240, 3, 3000), "convabuse": (50, 50, 600, 3, 0)},
    "article": {"sim": (50, 50, 600, 5, 8000), "convabuse": (100, 50, 1200, 5, 0)},
}
MIN_STEPS = 150
STRATEGIES = ("random", "least_confidence", "margin", "qbc")


@dataclass(frozen=True)
class Task:
    name: str
    classes: tuple[str, ...]
    pool_texts: list[str]
    pool_targets: np.ndarray
    test_texts: list[str]
    test_labels: np.ndarray


def _sim(pool_size: int, seed: int) -> Task:
    from labeltrail.ontology.schema import MODERATION_CLASSES
    from labeltrail.sim import Platform, PlatformConfig

    p = Platform(
        PlatformConfig(n_comments=pool_size + 1000, n_gold=10, text_style="rich", seed=seed)
    )
    comments = [c for c in p.comments if c.slice != "thread_context"]
    y = np.array([MODERATION_CLASSES.index(c.truth) for c in comments])
    texts = [c.event.text for c in comments]
    targets = np.eye(5)[y]
    return Task(
        "sim",
        MODERATION_CLASSES,
        texts[:pool_size],
        targets[:pool_size],
        texts[pool_size:],
        y[pool_size:],
    )


def _convabuse() -> Task:
    from labeltrail.learning.convabuse import CLASSES, load_convabuse

    folder = DATASETS / "convabuse"
    train, test = load_convabuse(folder, "train"), load_convabuse(folder, "test")
    return Task(
        "convabuse", CLASSES, list(train.texts), train.targets, list(test.texts), test.labels
    )


def _fit_predict(task: Task, idx: np.ndarray, seed: int, committee: int) -> tuple[Any, Any]:
    """Pool and test probabilities; a committee returns (n_models, n, k) for the pool."""
    from labeltrail.learning.features import HashingFeaturizer
    from labeltrail.ml.training import SoftLabelTrainer

    rng = np.random.default_rng(seed)
    pool_probs, test_probs = [], []
    # Enough optimiser steps at every size, so a small labelled set is not also under-trained.
    epochs = max(5, -(-MIN_STEPS * 32 // max(idx.size, 1)))
    for m in range(committee):
        sample = idx if committee == 1 else rng.choice(idx, size=idx.size, replace=True)
        trainer = SoftLabelTrainer(
            task.classes,
            featurizer=HashingFeaturizer(n_buckets=2**16),
            dim=32,
            hidden=32,
            epochs=epochs,
            batch_size=32,
            seed=seed * 10 + m,
        ).fit([task.pool_texts[i] for i in sample], task.pool_targets[sample])
        pool_probs.append(trainer.predict_proba(task.pool_texts))
        test_probs.append(trainer.predict_proba(task.test_texts))
    return np.stack(pool_probs), np.mean(test_probs, axis=0)


def _curve(task: Task, strategy: str, seed: int, scale: tuple[int, ...]) -> list[tuple[int, float]]:
    from labeltrail.learning.active import seed_set, select_batch, sketch, uncertainty
    from labeltrail.learning.features import HashingFeaturizer

    seed_size, batch, budget = scale[:3]
    n = len(task.pool_texts)
    emb = sketch(HashingFeaturizer(n_buckets=2**16).transform(task.pool_texts), seed=seed)
    labelled = seed_set(n, seed_size, seed=seed)
    rng = np.random.default_rng(seed + 1000)
    curve = []
    while True:
        committee = 3 if strategy == "qbc" else 1
        pool_probs, test_probs = _fit_predict(task, labelled, seed, committee)
        curve.append((int(labelled.size), float(np.mean(test_probs.argmax(1) == task.test_labels))))
        if labelled.size >= budget:
            return curve
        if strategy == "random":
            rest = np.setdiff1d(np.arange(n), labelled)
            new = rng.choice(rest, size=batch, replace=False)
        else:
            scores = uncertainty(strategy, pool_probs if committee > 1 else pool_probs[0])  # type: ignore[arg-type]
            new = select_batch(scores, batch, embeddings=emb, diversity=0.3, exclude=labelled)
        labelled = np.union1d(labelled, new)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="small")
    parser.add_argument("--dataset", choices=("sim", "convabuse", "both"), default="both")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    tasks = []
    if args.dataset in ("sim", "both"):
        tasks.append(_sim(SCALES[args.scale]["sim"][4], args.seed))
    if args.dataset in ("convabuse", "both"):
        tasks.append(_convabuse())
    for task in tasks:
        scale = SCALES[args.scale][task.name]
        started = time.perf_counter()
        curves: dict[str, np.ndarray] = {}
        for strategy in STRATEGIES:
            if strategy == "margin" and len(task.classes) == 2:
                # With two classes the margin is 2 * max_p - 1: the same ranking as least
                # confidence, so the same curve.
                curves[strategy] = curves["least_confidence"]
                continue
            runs = [_curve(task, strategy, args.seed + s, scale) for s in range(scale[3])]
            curves[strategy] = np.array([[acc for _, acc in run] for run in runs]).mean(axis=0)
            sizes = [size for size, _ in runs[0]]
        target = float(curves["random"][-1])
        budget = sizes[-1]
        info = {"dataset": task.name, "sizes": sizes, "seconds": time.perf_counter() - started}
        info.update({k: [round(float(a), 4) for a in v] for k, v in curves.items()})
        print(json.dumps(info), file=sys.stderr)
        for strategy in STRATEGIES[1:]:
            reached = [
                size for size, acc in zip(sizes, curves[strategy], strict=True) if acc >= target
            ]
            needed = reached[0] if reached else None
            print(
                json.dumps(
                    {
                        "figure": f"al_labels_to_random_{task.name}_{strategy}_{args.scale}",
                        "value": needed,
                        "unit": "labels",
                        "peer": "random sampling",
                        "peer_value": budget,
                        "ratio": None if needed is None else budget / needed,
                    }
                )
            )
        print(
            json.dumps(
                {
                    "figure": f"al_random_accuracy_at_budget_{task.name}_{args.scale}",
                    "value": target,
                    "unit": "accuracy",
                    "peer": None,
                    "peer_value": None,
                    "ratio": None,
                }
            )
        )


if __name__ == "__main__":
    main()
