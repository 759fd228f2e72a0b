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
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from labeltrail.exceptions import NotFittedError
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
    source_groups: tuple[str, ...] = ()
    """Pooling group per source (default: its kind); sparse sources borrow from their group."""

    def groups(self) -> tuple[str, ...]:
        return self.source_groups or tuple(self.source_kinds)

    def split_by_slice(
        self,
        item_slices: Sequence[str],
        slices: Collection[str],
        *,
        only_groups: Collection[str] | None = None,
    ) -> Observations:
        """Give sources a separate identity on the items of each listed slice.

        ``item_slices: (n_items,)``; ``only_groups``: split only sources of these pooling
        groups (default all). A crowd that is reliable overall but blind on one slice then
        gets a reliability for that slice of its own (``name@slice``, pooled in
        ``group@slice``), learned against the sources left whole there (the experts who found
        the blind spot). Split every source and the slice has no reference left: EM is then
        free to side with whichever story has more votes.
        """
        if len(item_slices) != self.n_items:
            raise ValueError("one slice per item")
        names, kinds = list(self.source_names), list(self.source_kinds)
        groups = list(self.groups())
        obs_slice = np.asarray(item_slices, dtype=object)[self.item]
        split = np.isin(obs_slice, list(slices))
        if only_groups is not None:
            allowed = np.array([g in only_groups for g in self.groups()])
            split &= allowed[self.source]
        source = self.source.copy()
        pairs = sorted(
            {(int(b), str(sl)) for b, sl in zip(source[split], obs_slice[split], strict=True)}
        )
        code = {}
        for base, sl in pairs:
            code[(base, sl)] = len(names)
            names.append(f"{self.source_names[base]}@{sl}")
            kinds.append(self.source_kinds[base])
            groups.append(f"{self.groups()[base]}@{sl}")
        for (base, sl), new in code.items():
            source[split & (self.source == base) & (obs_slice == sl)] = new
        return Observations(
            self.item, source, self.label, self.n_items, tuple(names), tuple(kinds), tuple(groups)
        )

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
        annotator_pools: Mapping[str, str] | None = None,
    ) -> Observations:
        """Assemble sources: ``votes`` = (item codes, annotator ids, label codes) from humans;
        ``lf_matrix: (n_items, n_lfs)`` with kinds ``lf`` or ``feedback`` (default ``lf``);
        ``model_probabilities: (n_items, k)`` votes its top class when confident enough;
        ``annotator_pools``: annotator -> pooling group (e.g. crowd, expert; default human)."""
        items: list[IntArray] = []
        sources: list[IntArray] = []
        labels: list[IntArray] = []
        names: list[str] = []
        kinds: list[SourceKind] = []
        groups: list[str] = []
        if votes is not None:
            it, annotators, lab = votes
            ann_ids = sorted(set(annotators))
            code = {a: i for i, a in enumerate(ann_ids)}
            items.append(np.asarray(it, np.int64))
            sources.append(np.array([code[a] for a in annotators], np.int64))
            labels.append(np.asarray(lab, np.int64))
            names += ann_ids
            kinds += ["human"] * len(ann_ids)
            groups += [(annotator_pools or {}).get(a, "human") for a in ann_ids]
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
            groups += lf_kinds
        if model_probabilities is not None:
            p = np.asarray(model_probabilities, np.float64)
            top = p.argmax(axis=1)
            vote = np.where(p.max(axis=1) >= model_min_confidence, top, ABSTAIN)
            items.append(np.arange(n_items))
            sources.append(np.full(n_items, len(names)))
            labels.append(vote.astype(np.int64))
            names.append(model_name)
            kinds.append("model")
            groups.append("model")
        if not names:
            raise ValueError("no source given")
        return cls(
            item=np.concatenate(items),
            source=np.concatenate(sources),
            label=np.concatenate(labels),
            n_items=n_items,
            source_names=tuple(names),
            source_kinds=tuple(kinds),
            source_groups=tuple(groups),
        )


class MultiSourceLabelModel:
    """Soft labels from every kind of source, each source's reliability learned.

    ``known_accuracy``: pooling group -> accuracy that is a measured fact, not a parameter
    (the experts' gold accuracy from the quality pipeline): those sources keep a symmetric
    table with that accuracy. Without such a reference EM may explain a shared blind spot
    by making the minority (the experts) wrong, since a consistent majority fits better.

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
        known_accuracy: Mapping[str, float] | None = None,
    ) -> None:
        self.n_classes = n_classes
        self.known_accuracy = dict(known_accuracy or {})
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
        self,
        obs: Observations,
        gold: NDArray[np.int64] | None = None,
        *,
        init: NDArray[np.floating] | None = None,
    ) -> MultiSourceLabelModel:
        """Fit on all observations; ``gold: (n_items,)`` codes, -1 = unknown.

        ``init: (n_items, k)`` starting posterior (default: the share of votes per class).
        EM finds a local optimum: where a majority shares a blind spot, start from the
        labels the pipeline committed (adjudications over crowd), not from the majority.
        """
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
        start = (votes + 1e-3) / (votes + 1e-3).sum(axis=1, keepdims=True)
        if init is not None:
            start = np.asarray(init, dtype=np.float64)
            if start.shape != (obs.n_items, k):
                raise ValueError("init must be (n_items, n_classes)")
        names = sorted(set(obs.groups()))
        group = np.array([names.index(g) for g in obs.groups()], np.int64)
        result = fit_em(
            item,
            source,
            outcome,
            n_items=obs.n_items,
            n_factors=n_sources,
            n_outcomes=k + 1,
            n_classes=k,
            init=start,
            prior_counts=prior_counts,
            gold=gold,
            max_iter=self.max_iter,
            tol=self.tol,
            group=group,
            pooling=self.pooling,
            fixed_tables=self._fixed(obs, informative),
        )
        self.posterior_ = result.posteriors
        self.tables_ = result.params.tables
        self.class_prior_ = result.params.prior
        self.n_iter_ = result.n_iter
        self.source_names_ = obs.source_names
        self.source_kinds_ = obs.source_kinds
        spoken = self.tables_[:, :, 1:]
        right = np.einsum("c,scc->s", self.class_prior_, spoken)
        said = np.einsum("c,scv->s", self.class_prior_, spoken)
        self.reliability_ = right / np.maximum(said, 1e-12)
        self.fit_seconds_ = time.perf_counter() - started
        return self

    def _fixed(self, obs: Observations, informative: NDArray[np.bool_]) -> FloatArray | None:
        if not self.known_accuracy:
            return None
        k = self.n_classes
        fixed = np.full((len(obs.source_names), k, k + 1), np.nan)
        for s, g in enumerate(obs.groups()):
            acc = self.known_accuracy.get(g.split("@")[0])
            if acc is None or informative[s]:
                continue
            table = np.full((k, k + 1), (1.0 - acc) / max(k - 1, 1))
            table[:, 0] = 0.0
            table[np.arange(k), np.arange(k) + 1] = acc
            fixed[s] = table
        return fixed

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
