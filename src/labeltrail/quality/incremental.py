"""Streaming consensus: add votes to a fitted Dawid-Skene model and update only the affected
items, with a periodic full refit; plus the per-item posterior functions the consensus service
calls with known annotator reliability."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from labeltrail.exceptions import NotFittedError, VoteFormatError
from labeltrail.quality._base import GoldLike, resolve_gold
from labeltrail.quality._em import VoteDesign, run_em
from labeltrail.quality._encoding import NO_GOLD, Votes
from labeltrail.quality.dawid_skene import DawidSkene, Init, initial_posteriors

__all__ = ["IncrementalDawidSkene", "item_posterior", "weighted_posterior"]


def item_posterior(
    confusion: NDArray[np.float64],
    priors: NDArray[np.float64],
    annotators: ArrayLike,
    labels: ArrayLike,
    eps: float = 1e-10,
) -> NDArray[np.float64]:
    """Dawid-Skene posterior of one item: (n_classes,).

    confusion: (n_annotators, n_true, n_given) rows summing to 1; priors: (n_classes,);
    annotators, labels: (n_votes,) codes of the item's votes.
    """
    a = np.asarray(annotators, dtype=np.int64)
    lab = np.asarray(labels, dtype=np.int64)
    if a.shape != lab.shape or a.ndim != 1:
        raise VoteFormatError("annotators and labels must be equal-length 1-D codes")
    logit = np.log(np.clip(priors, eps, None)) + np.log(
        np.clip(confusion[a, :, lab], eps, None)
    ).sum(axis=0)
    logit -= logit.max()
    p = np.exp(logit)
    out: NDArray[np.float64] = p / p.sum()
    return out


def weighted_posterior(
    labels: ArrayLike, weights: ArrayLike, n_classes: int
) -> NDArray[np.float64]:
    """Weighted vote shares of one item: (n_classes,); uniform when all weights are 0."""
    lab = np.asarray(labels, dtype=np.int64)
    w = np.asarray(weights, dtype=np.float64)
    if lab.shape != w.shape or lab.ndim != 1 or np.any(w < 0):
        raise VoteFormatError("labels and non-negative weights must be equal-length 1-D")
    s = np.bincount(lab, weights=w, minlength=n_classes).astype(np.float64)
    total = s.sum()
    if total <= 0:
        return np.full(n_classes, 1.0 / n_classes)
    out: NDArray[np.float64] = s / total
    return out


class IncrementalDawidSkene:
    """Dawid-Skene that absorbs votes one at a time.

    ``partial_fit`` recomputes the posterior of each touched item from all its votes under the
    current confusion matrices, swaps the item's old posterior for the new one in the expected
    counts (the sufficient statistics), and re-derives the confusion matrices of the touched
    annotators; nothing else is recomputed. Every ``refit_every`` new votes (0 = never) a full
    EM refit warm-started from the current posteriors runs.

    A new annotator starts from the pooled confusion of all annotators, worth
    ``prior_strength`` pseudo-votes. Classes are fixed at ``fit``.

    Gold (honeypot) items are held at their one-hot gold label, as in the batch model: pass
    ``gold`` to ``fit`` and/or to ``partial_fit`` (an item may get its gold later than its votes);
    their votes then teach the annotators' confusion matrices with the truth known, and refits
    keep them fixed. ``init`` is the batch model's EM start, so a cold ``refit()`` equals
    ``DawidSkene(init=init, precision="float64").fit(all votes, gold)``.
    """

    def __init__(
        self,
        refit_every: int = 100_000,
        max_iter: int = 100,
        tol: float = 1e-5,
        eps: float = 1e-10,
        prior_strength: float = 2.0,
        init: Init = "wmv",
    ) -> None:
        self.refit_every = refit_every
        self.max_iter = max_iter
        self.tol = tol
        self.eps = eps
        self.prior_strength = prior_strength
        self.init = init

    def _batch_model(self) -> DawidSkene:
        return DawidSkene(
            max_iter=self.max_iter, tol=self.tol, eps=self.eps, precision="float64", init=self.init
        )

    def fit(self, votes: Votes, gold: GoldLike = None) -> IncrementalDawidSkene:
        """Batch fit (float64 :class:`DawidSkene`, gold held fixed) that the stream extends.

        gold: ``{item id: label}`` or codes (n_items,) with ``NO_GOLD``.
        """
        codes = resolve_gold(votes, gold)
        ds = self._batch_model().fit(votes, codes)
        self._gold: dict[int, int] = (
            {} if codes is None else {int(i): int(codes[i]) for i in np.flatnonzero(codes >= 0)}
        )
        self.classes_ = votes.classes
        self._items = {v: i for i, v in enumerate(votes.item_ids.tolist())}
        self._annotators = {v: i for i, v in enumerate(votes.annotator_ids.tolist())}
        k = votes.n_classes
        self._by_item: list[list[tuple[int, int]]] = [[] for _ in range(votes.n_items)]
        for i, a, lab in zip(
            votes.item.tolist(), votes.annotator.tolist(), votes.label.tolist(), strict=True
        ):
            self._by_item[i].append((a, lab))
        self._post = np.asarray(ds.posteriors_, dtype=np.float64).copy()
        self._counts = np.zeros((votes.n_annotators, k, k))  # [a, true, given]
        flat = (votes.annotator * k)[:, None] * k + np.arange(k)[None, :] * k + votes.label[:, None]
        np.add.at(self._counts.reshape(-1), flat.reshape(-1), self._post[votes.item].reshape(-1))
        self._prior_counts = np.zeros_like(self._counts)
        self._prior_sum = self._post.sum(axis=0)
        self._confusion = np.asarray(ds.confusion_, dtype=np.float64).copy()
        self._pending = 0
        self.n_refits_ = 0
        return self

    def _check(self) -> None:
        if not hasattr(self, "_post"):
            raise NotFittedError("IncrementalDawidSkene is not fitted")

    @property
    def n_classes(self) -> int:
        return int(self.classes_.shape[0])

    @property
    def posteriors_(self) -> NDArray[np.float64]:
        """(n_items, n_classes) in item code order (see ``item_ids_``)."""
        self._check()
        return self._post

    @property
    def labels_(self) -> NDArray[np.int64]:
        return np.asarray(np.argmax(self.posteriors_, axis=1), dtype=np.int64)

    @property
    def item_ids_(self) -> list[Hashable]:
        return list(self._items)

    @property
    def gold_(self) -> dict[Hashable, Hashable]:
        """The gold labels held fixed: ``{item id: class label}``."""
        self._check()
        ids = list(self._items)
        return {ids[i]: self.classes_[k].item() for i, k in self._gold.items()}

    @property
    def confusion_(self) -> NDArray[np.float64]:
        """(n_annotators, n_true, n_given)."""
        self._check()
        return self._confusion

    @property
    def priors_(self) -> NDArray[np.float64]:
        out: NDArray[np.float64] = self._prior_sum / self._prior_sum.sum()
        return out

    def _annotator(self, key: Hashable) -> int:
        idx = self._annotators.get(key)
        if idx is not None:
            return idx
        idx = len(self._annotators)
        self._annotators[key] = idx
        pooled = self._counts.sum(axis=0) + self._prior_counts.sum(axis=0)
        pooled = pooled / np.clip(pooled.sum(axis=1, keepdims=True), self.eps, None)
        k = self.n_classes
        self._counts = np.concatenate([self._counts, np.zeros((1, k, k))])
        self._prior_counts = np.concatenate(
            [self._prior_counts, (self.prior_strength * pooled / k)[None]]
        )
        self._confusion = np.concatenate([self._confusion, pooled[None]])
        return idx

    def _item(self, key: Hashable) -> int:
        idx = self._items.get(key)
        if idx is not None:
            return idx
        idx = len(self._items)
        self._items[key] = idx
        self._by_item.append([])
        self._post = np.concatenate([self._post, np.zeros((1, self.n_classes))])
        return idx

    def partial_fit(
        self,
        items: Sequence[Hashable],
        annotators: Sequence[Hashable],
        labels: Sequence[Hashable],
        gold: Mapping[Hashable, Hashable] | None = None,
    ) -> NDArray[np.int64]:
        """Add votes given as ids and class labels, and optionally gold ``{item id: label}``
        (new or already seen items; held fixed from now on). Returns the updated item codes."""
        self._check()
        if not (len(items) == len(annotators) == len(labels)):
            raise VoteFormatError("items, annotators and labels differ in length")
        class_pos = {c: i for i, c in enumerate(self.classes_.tolist())}
        gold = {} if gold is None else gold
        if any(lab not in class_pos for lab in [*labels, *gold.values()]):
            raise VoteFormatError("a label is not one of the fitted classes")
        touched: dict[int, int] = {}  # item code -> number of votes it had before
        for item, lab in gold.items():
            i = self._item(item)
            touched.setdefault(i, len(self._by_item[i]))
            self._gold[i] = class_pos[lab]
        for item, ann, lab in zip(items, annotators, labels, strict=True):
            i, a = self._item(item), self._annotator(ann)
            touched.setdefault(i, len(self._by_item[i]))
            self._by_item[i].append((a, class_pos[lab]))
        self._update_items(touched)
        codes = np.fromiter(touched, dtype=np.int64)
        self._pending += len(items)
        if self.refit_every and self._pending >= self.refit_every:
            self.refit()
        return codes

    def _update_items(self, touched: dict[int, int]) -> None:
        touched_annotators: set[int] = set()
        log_conf = np.log(np.clip(self._confusion, self.eps, None))
        log_pri = np.log(np.clip(self.priors_, self.eps, None))
        for i, n_before in touched.items():
            votes = self._by_item[i]
            old = self._post[i].copy()
            logit = log_pri.copy()
            for a, lab in votes:
                logit += log_conf[a, :, lab]
            logit -= logit.max()
            new = np.exp(logit)
            new /= new.sum()
            if i in self._gold:
                new = np.zeros_like(new)
                new[self._gold[i]] = 1.0
            for j, (a, lab) in enumerate(votes):
                self._counts[a, :, lab] += new if j >= n_before else new - old
                touched_annotators.add(a)
            self._prior_sum += new - old
            self._post[i] = new
        for a in touched_annotators:
            c = np.clip(self._counts[a] + self._prior_counts[a], self.eps, None)
            self._confusion[a] = c / c.sum(axis=1, keepdims=True)

    def refit(self, warm_start: bool = False) -> IncrementalDawidSkene:
        """Full EM over every vote seen, gold held fixed. Cold (default) it is exactly the batch
        :class:`DawidSkene` fit (its ``init`` start); ``warm_start`` starts from the current
        posteriors (fewer rounds, but it may settle in a different local optimum)."""
        self._check()
        item, ann, lab = [], [], []
        for i, votes in enumerate(self._by_item):
            for a, label in votes:
                item.append(i)
                ann.append(a)
                lab.append(label)
        v = Votes.from_codes(
            item,
            ann,
            lab,
            n_items=len(self._items),
            n_annotators=len(self._annotators),
            n_classes=self.n_classes,
        )
        ds = self._batch_model()
        design = VoteDesign.from_votes(v, np.float64)
        start = self._post if warm_start else initial_posteriors(v, self.init)
        gold = np.full(v.n_items, NO_GOLD, dtype=np.int64)
        gold[list(self._gold)] = list(self._gold.values())
        res = run_em(
            design,
            start,
            ds._m_step,
            max_iter=self.max_iter,
            tol=self.tol,
            gold=gold if self._gold else None,
            dtype=np.float64,
        )
        self._post = np.asarray(res.posteriors, dtype=np.float64)
        self._confusion = np.exp(res.log_confusion).transpose(0, 2, 1)
        k = self.n_classes
        flat = (v.annotator * k)[:, None] * k + np.arange(k)[None, :] * k + v.label[:, None]
        self._counts = np.zeros_like(self._counts)
        np.add.at(self._counts.reshape(-1), flat.reshape(-1), self._post[v.item].reshape(-1))
        self._prior_counts = np.zeros_like(self._counts)
        self._prior_sum = self._post.sum(axis=0)
        self._pending = 0
        self.n_refits_ += 1
        return self
