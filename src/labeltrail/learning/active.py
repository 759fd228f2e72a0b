"""Active learning, pure: uncertainty scores, committee disagreement, diverse batch selection.

Scores are "higher = more worth labelling"; :func:`select_batch` takes the most uncertain
candidates, then trades uncertainty for distance to what is already picked (k-center style,
on :func:`sketch` projections), so a batch is not hundreds of near-duplicates of one
confusing comment.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from labeltrail.events.models import CommentScored, SamplingStrategy
from labeltrail.learning.features import PAD, HashingFeaturizer

__all__ = [
    "Strategy",
    "committee_disagreement",
    "entropy",
    "least_confidence",
    "margin_uncertainty",
    "next_batch",
    "seed_set",
    "select_batch",
    "sketch",
    "uncertainty",
]

Strategy = SamplingStrategy
"""The strategies by name (the event contract's, ``TaskRequested.strategy``)."""
FloatArray = NDArray[np.float64]


def _proba(p: NDArray[np.floating[Any]]) -> FloatArray:
    arr = np.asarray(p, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] < 2:
        raise ValueError("probabilities must be (n_items, n_classes >= 2)")
    return arr


def least_confidence(probabilities: NDArray[np.floating[Any]]) -> FloatArray:
    """``1 - max_c p``: ``(n, k) -> (n,)``."""
    return np.asarray(1.0 - _proba(probabilities).max(axis=1))


def margin_uncertainty(probabilities: NDArray[np.floating[Any]]) -> FloatArray:
    """``1 - (p_top1 - p_top2)``: the article's margin, turned so higher = less sure."""
    p = _proba(probabilities)
    top2 = np.partition(p, -2, axis=1)[:, -2:]
    return 1.0 - (top2[:, 1] - top2[:, 0])


def entropy(probabilities: NDArray[np.floating[Any]]) -> FloatArray:
    """Shannon entropy in nats: ``(n, k) -> (n,)``."""
    p = np.clip(_proba(probabilities), 1e-12, 1.0)
    return np.asarray(-(p * np.log(p)).sum(axis=1))


def committee_disagreement(
    committee: NDArray[np.floating[Any]], *, kind: Literal["vote", "kl"] = "kl"
) -> FloatArray:
    """Query-by-committee: ``committee: (n_models, n, k)`` -> ``(n,)``.

    ``vote``: entropy of the members' hard votes; ``kl``: mean KL divergence of each member
    from the committee's mean (soft; breaks the ties vote entropy leaves).
    """
    c = np.asarray(committee, dtype=np.float64)
    if c.ndim != 3 or c.shape[0] < 3:
        raise ValueError("a committee is (n_models >= 3, n_items, n_classes)")
    if kind == "vote":
        votes = c.argmax(axis=2)
        counts = np.stack([(votes == j).sum(axis=0) for j in range(c.shape[2])], axis=1)
        return entropy(counts / c.shape[0])
    mean = np.clip(c.mean(axis=0), 1e-12, 1.0)
    members = np.clip(c, 1e-12, 1.0)
    return np.asarray((members * (np.log(members) - np.log(mean))).sum(axis=2).mean(axis=0))


def uncertainty(strategy: Strategy, probabilities: NDArray[np.floating[Any]]) -> FloatArray:
    """Score by name; ``qbc`` expects ``(n_models, n, k)``."""
    if strategy == "least_confidence":
        return least_confidence(probabilities)
    if strategy == "margin":
        return margin_uncertainty(probabilities)
    if strategy == "entropy":
        return entropy(probabilities)
    if strategy == "qbc":
        return committee_disagreement(probabilities)
    raise ValueError(f"unknown strategy {strategy!r}")


def sketch(ids: NDArray[np.int64], dim: int = 64, seed: int = 0) -> FloatArray:
    """Unit-norm signed random projection of hashed n-gram ids: ``(n, width) -> (n, dim)``.

    Each bucket maps to a pseudo-random +-1 vector (a hash of bucket, coordinate and seed);
    a text is the sum over its buckets. Near-duplicate texts get near-identical sketches.
    """
    ids = np.asarray(ids, dtype=np.int64)
    mask = (ids != PAD).astype(np.float64)
    coords = np.arange(dim, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = ids.astype(np.uint64)[:, :, None] * np.uint64(0x9E3779B97F4A7C15)
        z = z + coords * np.uint64(0xBF58476D1CE4E5B9) + np.uint64(seed)
        z = (z ^ (z >> np.uint64(31))) * np.uint64(0x94D049BB133111EB)
        signs = np.where((z >> np.uint64(63)) == 1, 1.0, -1.0)
    vectors = (signs * mask[:, :, None]).sum(axis=1)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.asarray(vectors / np.where(norms > 0, norms, 1.0))


def select_batch(
    scores: NDArray[np.floating[Any]],
    batch_size: int,
    *,
    embeddings: NDArray[np.floating[Any]] | None = None,
    diversity: float = 0.5,
    candidate_factor: int = 10,
    exclude: Sequence[int] | NDArray[np.int64] = (),
) -> NDArray[np.int64]:
    """Indices of a batch: ``scores: (n,)`` higher = more useful; ``embeddings: (n, d)``.

    Without embeddings (or ``diversity == 0``) it is the top ``batch_size`` by score. With
    them: the top ``candidate_factor * batch_size`` candidates, then greedily the one that
    maximises ``(1 - diversity) * score + diversity * distance to the nearest pick`` (scores
    and distances rescaled to [0, 1]). Ties go to the lower index.
    """
    s = np.asarray(scores, dtype=np.float64).copy()
    if s.ndim != 1:
        raise ValueError("scores must be (n,)")
    if not 0.0 <= diversity <= 1.0:
        raise ValueError("diversity must be in [0, 1]")
    s[np.asarray(exclude, dtype=np.int64)] = -np.inf
    available = int(np.isfinite(s).sum())
    k = min(batch_size, available)
    order = np.lexsort((np.arange(s.size), -s))  # score desc, index asc
    if embeddings is None or diversity == 0.0 or k == 0:
        return order[:k].astype(np.int64)
    pool = order[: min(available, max(k, candidate_factor * k))]
    emb = np.asarray(embeddings, dtype=np.float64)[pool]
    span = s[pool].max() - s[pool].min()
    norm = (s[pool] - s[pool].min()) / span if span > 0 else np.ones(pool.size)
    picked = [0]
    nearest = np.linalg.norm(emb - emb[0], axis=1)
    for _ in range(k - 1):
        top = nearest.max()
        value = (1 - diversity) * norm + diversity * (nearest / top if top > 0 else nearest)
        value[picked] = -np.inf
        nxt = int(np.argmax(value))
        picked.append(nxt)
        nearest = np.minimum(nearest, np.linalg.norm(emb - emb[nxt], axis=1))
    return pool[picked].astype(np.int64)


def seed_set(
    n_items: int, size: int, *, seed: int, strata: NDArray[np.int64] | None = None
) -> NDArray[np.int64]:
    """The bootstrap set: ``size`` random items, stratified by ``strata`` codes when given
    (so a rare class is not missing from the first model)."""
    rng = np.random.default_rng(seed)
    if strata is None:
        return np.sort(rng.choice(n_items, size=min(size, n_items), replace=False))
    groups = [np.flatnonzero(strata == g) for g in np.unique(strata)]
    share = [max(1, round(size * g.size / n_items)) for g in groups]
    picks = [
        rng.choice(g, size=min(m, g.size), replace=False)
        for g, m in zip(groups, share, strict=True)
    ]
    return np.sort(np.concatenate(picks))[:size]


def next_batch(
    scored: Sequence[CommentScored],
    texts: Sequence[str],
    batch_size: int,
    *,
    strategy: Strategy = "margin",
    diversity: float = 0.5,
    labelled: Sequence[str] = (),
    featurizer: HashingFeaturizer | None = None,
    seed: int = 0,
) -> list[str]:
    """The next annotation batch from the deployed model's scores of the pool.

    ``scored`` and ``texts`` align (one CommentScored per pool comment); comments already
    ``labelled`` are skipped. Returns comment ids, most useful first, diverse by n-gram sketch.
    """
    if strategy == "qbc":
        raise ValueError("query-by-committee needs a committee, not one deployed model")
    if len(scored) != len(texts):
        raise ValueError("one text per scored comment")
    if not scored:
        return []
    probs = np.array([s.probabilities for s in scored], dtype=np.float64)
    ids = [s.comment_id for s in scored]
    done = set(labelled)
    exclude = [i for i, cid in enumerate(ids) if cid in done]
    emb = sketch((featurizer or HashingFeaturizer(n_buckets=2**16)).transform(texts), seed=seed)
    picked = select_batch(
        uncertainty(strategy, probs),
        batch_size,
        embeddings=emb,
        diversity=diversity,
        exclude=exclude,
    )
    return [ids[i] for i in picked]
