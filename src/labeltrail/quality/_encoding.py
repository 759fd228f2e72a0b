"""Long format (item, annotator, label) <-> integer codes.

Every estimator in :mod:`labeltrail.quality` works on :class:`Votes`: three aligned integer
arrays of shape ``(n_votes,)`` plus the original ids that the codes stand for. Class codes follow
the sorted order of the original labels, so "lowest code" means "first label in sorted order"
(see :data:`labeltrail.quality.TIE_RULE`).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from labeltrail.exceptions import VoteFormatError

__all__ = ["NO_GOLD", "TIE_RULE", "Votes", "argmax_lowest"]

TIE_RULE = "lowest-label"
"""The one tie rule: among equally supported classes pick the first label in sorted order."""

NO_GOLD = -1
"""Code for "no gold label" in integer gold arrays of shape ``(n_items,)``."""

IntArray = NDArray[np.int64]


def argmax_lowest(scores: NDArray[Any]) -> IntArray:
    """Row-wise argmax with :data:`TIE_RULE`: exact ties go to the lowest class code.

    scores: (n_items, n_classes) -> (n_items,) class codes.
    """
    if scores.ndim != 2 or scores.shape[1] == 0:
        raise VoteFormatError(f"scores must be (n_items, n_classes), got shape {scores.shape}")
    return np.asarray(np.argmax(scores, axis=1), dtype=np.int64)


def _as_1d(name: str, values: ArrayLike) -> NDArray[Any]:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise VoteFormatError(f"{name} must be one-dimensional, got shape {arr.shape}")
    return arr


def _factorize(name: str, values: NDArray[Any]) -> tuple[NDArray[Any], IntArray]:
    if values.dtype.kind == "f" and np.isnan(values).any():
        raise VoteFormatError(f"{name} contains missing values (NaN)")
    if values.dtype == object and any(v is None for v in values):
        raise VoteFormatError(f"{name} contains missing values (None)")
    try:
        uniques, inverse = np.unique(values, return_inverse=True)
    except TypeError as exc:
        raise VoteFormatError(f"{name} mixes values that cannot be sorted together") from exc
    return uniques, inverse.astype(np.int64, copy=False)


@dataclass(frozen=True, eq=False)
class Votes:
    """Integer-coded votes.

    item, annotator, label: (n_votes,) int64 codes in ``[0, n_items)``, ``[0, n_annotators)``,
    ``[0, n_classes)``. item_ids, annotator_ids, classes: the original ids, indexed by code.
    Duplicate votes are kept (each row is one vote).
    """

    item: IntArray
    annotator: IntArray
    label: IntArray
    item_ids: NDArray[Any]
    annotator_ids: NDArray[Any]
    classes: NDArray[Any]

    @property
    def n_votes(self) -> int:
        return int(self.item.shape[0])

    @property
    def n_items(self) -> int:
        return int(self.item_ids.shape[0])

    @property
    def n_annotators(self) -> int:
        return int(self.annotator_ids.shape[0])

    @property
    def n_classes(self) -> int:
        return int(self.classes.shape[0])

    @classmethod
    def from_long(
        cls,
        items: ArrayLike,
        annotators: ArrayLike,
        labels: ArrayLike,
        *,
        classes: Sequence[Hashable] | None = None,
    ) -> Votes:
        """Encode long-format votes; ``classes`` (sorted) fixes the class set and its order."""
        it, an = _as_1d("items", items), _as_1d("annotators", annotators)
        la = _as_1d("labels", labels)
        if not (it.shape == an.shape == la.shape):
            raise VoteFormatError(
                f"items, annotators and labels differ in length: {it.shape[0]}, {an.shape[0]}, "
                f"{la.shape[0]}"
            )
        item_ids, item = _factorize("items", it)
        annotator_ids, annotator = _factorize("annotators", an)
        seen, label = _factorize("labels", la)
        if classes is not None:
            cls_arr = np.asarray(list(classes))
            if cls_arr.ndim != 1 or len(set(cls_arr.tolist())) != cls_arr.shape[0]:
                raise VoteFormatError("classes must be a sequence of distinct labels")
            lookup = {c: i for i, c in enumerate(cls_arr.tolist())}
            try:
                remap = np.array([lookup[c] for c in seen.tolist()], dtype=np.int64)
            except KeyError as exc:
                raise VoteFormatError(f"label {exc.args[0]!r} is not among classes") from exc
            label = remap[label] if remap.size else label
            seen = cls_arr
        return cls(item, annotator, label, item_ids, annotator_ids, seen)

    @classmethod
    def from_codes(
        cls,
        item: ArrayLike,
        annotator: ArrayLike,
        label: ArrayLike,
        *,
        n_items: int | None = None,
        n_annotators: int | None = None,
        n_classes: int | None = None,
    ) -> Votes:
        """Wrap integer codes without relabelling; ids become ``arange(n)``."""
        arrays = []
        for name, values in (("item", item), ("annotator", annotator), ("label", label)):
            arr = _as_1d(name, values)
            if arr.size and arr.dtype.kind not in "iu":
                raise VoteFormatError(f"{name} codes must be integers, got dtype {arr.dtype}")
            arr = arr.astype(np.int64, copy=False)
            if arr.size and arr.min() < 0:
                raise VoteFormatError(f"{name} codes must be non-negative")
            arrays.append(arr)
        if not (arrays[0].shape == arrays[1].shape == arrays[2].shape):
            raise VoteFormatError("item, annotator and label codes differ in length")
        sizes = []
        for arr, given, name in zip(
            arrays, (n_items, n_annotators, n_classes), ("item", "annotator", "label"), strict=True
        ):
            needed = int(arr.max()) + 1 if arr.size else 0
            size = needed if given is None else int(given)
            if size < needed:
                raise VoteFormatError(f"{name} code {needed - 1} out of range for n={size}")
            sizes.append(size)
        return cls(
            arrays[0],
            arrays[1],
            arrays[2],
            np.arange(sizes[0]),
            np.arange(sizes[1]),
            np.arange(sizes[2]),
        )

    def encode_gold(
        self, gold: Mapping[Hashable, Hashable] | Iterable[tuple[Any, Any]]
    ) -> IntArray:
        """Map ``{item id: label}`` to a gold code array (n_items,) with :data:`NO_GOLD` elsewhere.

        Gold for items without votes is ignored; an unknown label raises VoteFormatError.
        """
        pairs = gold.items() if isinstance(gold, Mapping) else gold
        item_pos = {v: i for i, v in enumerate(self.item_ids.tolist())}
        class_pos = {v: i for i, v in enumerate(self.classes.tolist())}
        out = np.full(self.n_items, NO_GOLD, dtype=np.int64)
        for item_id, lab in pairs:
            pos = item_pos.get(item_id)
            if pos is None:
                continue
            if lab not in class_pos:
                raise VoteFormatError(f"gold label {lab!r} for item {item_id!r} is not a class")
            out[pos] = class_pos[lab]
        return out

    def decode(self, codes: IntArray) -> NDArray[Any]:
        """Class codes (n,) -> original labels (n,)."""
        return self.classes[codes]
