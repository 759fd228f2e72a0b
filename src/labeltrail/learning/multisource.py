"""One label model across sources, pure numpy: human votes, LFs, model outputs, production
signals, each source's reliability learned.

Every source (an annotator, a labeling function, the deployed model, a feedback channel) has
its own class-conditional table, fitted by the same EM as :class:`LabelModel`, with two
differences that matter when sources are this unlike:

- whether a source's silence means anything is a property of its kind: an LF or a feedback
  channel that does not fire says something; an annotator who was not assigned an item does
  not (abstains are observations for the first, missing data for the second);
- sparse sources borrow strength: each table is pulled towards its kind's pooled table with
  ``pooling`` pseudo-observations, so an annotator with twelve votes gets a sensible
  reliability instead of a noisy one, while one with thousands speaks for herself.

Gold items are clamped. ``reliability_`` is each source's probability of being right when it
speaks, under the fitted model.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from labeltrail.learning.exceptions import NotFittedError
from labeltrail.learning.label_model import fit_em
from labeltrail.learning.lf import ABSTAIN

__all__ = ["SOURCE_KINDS", "MultiSourceLabelModel", "Observations"]

SourceKind = Literal["human", "lf", "model", "feedback"]
SOURCE_KINDS: tuple[SourceKind, ...] = ("human", "lf", "model", "feedback")
SILENCE_INFORMATIVE: frozenset[str] = frozenset({"lf", "model", "feedback"})
"""Kinds whose abstain is an observation; a human's missing vote is missing data."""

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class Observations:
    """Long format: ``item, source, label: (n_obs,)``; label -1 is an explicit abstain.

    ``source_names`` and ``source_kinds`` are indexed by source code.
    """

    item: IntArray
    source: IntArray
    label: IntArray
    n_items: int
    source_names: tuple[str, ...]
    source_kinds: tuple[SourceKind, ...]

    @classmethod
    def build(
        cls,
        n_items: int,
        *,
        votes: tuple[Sequence[int], Sequence[str], Sequence[int]] | None = None,
        lf_matrix: NDArray[np.int64] | None = None,
        lf_names: Sequence[str] = (),
        lf_kinds: Sequence[SourceKind] = (),
        model_probabilities: NDArray[np.floating] | None = None,
        model_min_confidence: float = 0.0,
        model_name: str = "model",
    ) -> Observations:
        """Assemble sources: ``votes`` = (item codes, annotator ids, label codes) from humans;
        ``lf_matrix: (n_items, n_lfs)`` with kinds ``lf`` or ``feedback`` (default ``lf``);
        ``model_probabilities: (n_items, k)`` votes its top class when confident enough."""
        items: list[IntArray] = []
        sources: list[IntArray] = []
        labels: list[IntArray] = []
        names: list[str] = []
        kinds: list[SourceKind] = []
        if votes is not None:
            it, annotators, lab = votes
            ann_ids = sorted(set(annotators))
            code = {a: i for i, a in enumerate(ann_ids)}
            items.append(np.asarray(it, np.int64))
            sources.append(np.array([code[a] for a in annotators], np.int64))
            labels.append(np.asarray(lab, np.int64))
            names += ann_ids
            kinds += ["human"] * len(ann_ids)
        if lf_matrix is not None:
            L = np.asarray(lf_matrix, np.int64)
            m = L.shape[1]
            lf_names = list(lf_names) or [f"lf_{j}" for j in range(m)]
            lf_kinds = list(lf_kinds) or ["lf"] * m
            base = len(names)
            items.append(np.repeat(np.arange(n_items), m))
            sources.append(np.tile(np.arange(base, base + m), n_items))
            labels.append(L.ravel())
            names += lf_names
            kinds += lf_kinds
        if model_probabilities is not None:
            p = np.asarray(model_probabilities, np.float64)
            top = p.argmax(axis=1)
            vote = np.where(p.max(axis=1) >= model_min_confidence, top, ABSTAIN)
            items.append(np.arange(n_items))
            sources.append(np.full(n_items, len(names)))
            labels.append(vote.astype(np.int64))
            names.append(model_name)
            kinds.append("model")
        if not names:
            raise ValueError("no source given")
        return cls(
            item=np.concatenate(items),
            source=np.concatenate(sources),
            label=np.concatenate(labels),
            n_items=n_items,
            source_names=tuple(names),
            source_kinds=tuple(kinds),
        )


class MultiSourceLabelModel:
    """Soft labels from every kind of source, each source's reliability learned.

    Learned: ``posterior_: (n_items, k)``, ``tables_: (n_sources, k, k + 1)`` (outcome 0 is
    abstain), ``reliability_: (n_sources,)``, ``class_prior_``, ``n_iter_``, ``fit_seconds_``.
    """

    def __init__(
        self,
        n_classes: int,
        *,
        pooling: float = 10.0,
        smoothing: float = 1.0,
        accuracy_prior: float = 2.0,
        max_iter: int = 200,
        tol: float = 1e-7,
    ) -> None:
        self.n_classes = n_classes
        self.pooling = pooling
        self.smoothing = smoothing
        self.accuracy_prior = accuracy_prior
        self.max_iter = max_iter
        self.tol = tol

    def _codes(self, obs: Observations) -> tuple[IntArray, IntArray, IntArray]:
        kinds = np.array([k in SILENCE_INFORMATIVE for k in obs.source_kinds])
        keep = (obs.label != ABSTAIN) | kinds[obs.source]
        label = obs.label[keep]
        if label.size and (label.min() < ABSTAIN or label.max() >= self.n_classes):
            raise ValueError("labels must be in [-1, n_classes)")
        return obs.item[keep], obs.source[keep], label + 1

    def fit(
        self, obs: Observations, gold: NDArray[np.int64] | None = None
    ) -> MultiSourceLabelModel:
        """Fit on all observations; ``gold: (n_items,)`` codes, -1 = unknown."""
        started = time.perf_counter()
        k, n_sources = self.n_classes, len(obs.source_names)
        item, source, outcome = self._codes(obs)
        informative = np.array([kind in SILENCE_INFORMATIVE for kind in obs.source_kinds])
        prior_counts = np.full((n_sources, k, k + 1), self.smoothing / (k + 1))
        prior_counts[~informative, :, 0] = 0.0  # a human's silence is not an outcome
        prior_counts[:, np.arange(k), np.arange(k) + 1] += self.accuracy_prior
        votes = np.zeros((obs.n_items, k))
        spoke = outcome > 0
        np.add.at(votes, (item[spoke], outcome[spoke] - 1), 1.0)
        init = (votes + 1e-3) / (votes + 1e-3).sum(axis=1, keepdims=True)
        group = np.array([SOURCE_KINDS.index(kd) for kd in obs.source_kinds], np.int64)
        result = fit_em(
            item,
            source,
            outcome,
            n_items=obs.n_items,
            n_factors=n_sources,
            n_outcomes=k + 1,
            n_classes=k,
            init=init,
            prior_counts=prior_counts,
            gold=gold,
            max_iter=self.max_iter,
            tol=self.tol,
            group=group,
            pooling=self.pooling,
        )
        self.posterior_ = result.posterior
        self.tables_ = result.tables
        self.class_prior_ = result.prior
        self.n_iter_ = result.n_iter
        self.source_names_ = obs.source_names
        self.source_kinds_ = obs.source_kinds
        spoken = result.tables[:, :, 1:]
        right = np.einsum("c,scc->s", result.prior, spoken)
        said = np.einsum("c,scv->s", result.prior, spoken)
        self.reliability_ = right / np.maximum(said, 1e-12)
        self.fit_seconds_ = time.perf_counter() - started
        return self

    def predict_proba(self) -> FloatArray:
        """Posterior ``(n_items, k)`` of the fitted items (the soft labels to train on)."""
        post: FloatArray | None = getattr(self, "posterior_", None)
        if post is None:
            raise NotFittedError("call fit first")
        return post

    def predict(self) -> IntArray:
        return np.asarray(self.predict_proba().argmax(axis=1), dtype=np.int64)

    def reliability(self) -> dict[str, tuple[str, float]]:
        """Source name -> (kind, learned probability of being right when it speaks)."""
        if not hasattr(self, "reliability_"):
            raise NotFittedError("call fit first")
        return {
            n: (kd, float(r))
            for n, kd, r in zip(
                self.source_names_, self.source_kinds_, self.reliability_, strict=True
            )
        }
