"""Labeling functions, pure: keyword, regex, model-output and production-signal heuristics.

An LF looks at one :class:`Example` and returns a class index or :data:`ABSTAIN`. Examples are
built from the log: the comment, the deployed model's CommentScored probabilities and the
FeedbackReceived signals for it (user flags, appeals, moderator overrides).
:func:`apply_lfs` builds the label matrix ``L: (n_examples, n_lfs)``.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from labeltrail.events.models import CommentPosted, CommentScored, FeedbackReceived

__all__ = [
    "ABSTAIN",
    "Example",
    "LabelingFunction",
    "apply_lfs",
    "examples_from_events",
    "feedback_lf",
    "keyword_lf",
    "model_lf",
    "regex_lf",
]

ABSTAIN = -1
"""What an LF returns when it has no opinion (snorkel's convention)."""

LFKind = Literal["keyword", "regex", "model", "feedback", "heuristic"]


@dataclass(frozen=True)
class Example:
    """What an LF sees about one comment."""

    comment_id: str
    text: str
    parent_ids: tuple[str, ...] = ()
    attributes: Mapping[str, str] = field(default_factory=dict)
    model_probabilities: tuple[float, ...] | None = None
    feedback: tuple[tuple[str, str | None], ...] = ()
    """(kind, label) pairs from FeedbackReceived, in log order."""


@dataclass(frozen=True)
class LabelingFunction:
    """A named heuristic: ``fn(example) -> class index | ABSTAIN``."""

    name: str
    fn: Callable[[Example], int]
    kind: LFKind = "heuristic"

    def __call__(self, example: Example) -> int:
        return int(self.fn(example))


def keyword_lf(name: str, keywords: Iterable[str], label: int) -> LabelingFunction:
    """Votes ``label`` when any keyword occurs as a whole word (case-insensitive)."""
    words = sorted({k.lower() for k in keywords})
    pattern = re.compile(r"(?<![\w'])(?:" + "|".join(map(re.escape, words)) + r")(?![\w'])")
    return LabelingFunction(
        name, lambda x: label if pattern.search(x.text.lower()) else ABSTAIN, "keyword"
    )


def regex_lf(
    name: str, pattern: str, label: int, *, flags: int = re.IGNORECASE
) -> LabelingFunction:
    """Votes ``label`` when ``pattern`` matches anywhere in the text."""
    compiled = re.compile(pattern, flags)
    return LabelingFunction(name, lambda x: label if compiled.search(x.text) else ABSTAIN, "regex")


def model_lf(name: str, *, min_confidence: float, label: int | None = None) -> LabelingFunction:
    """The deployed model as an LF: its top class when at least ``min_confidence`` (or, with
    ``label``, that class when its probability reaches ``min_confidence``)."""

    def fn(x: Example) -> int:
        if x.model_probabilities is None:
            return ABSTAIN
        p = np.asarray(x.model_probabilities)
        if label is not None:
            return label if p[label] >= min_confidence else ABSTAIN
        top = int(np.argmax(p))
        return top if p[top] >= min_confidence else ABSTAIN

    return LabelingFunction(name, fn, "model")


def feedback_lf(
    name: str,
    kind: Literal["user_flag", "appeal", "moderator_override"],
    classes: Sequence[str],
    *,
    label: int | None = None,
) -> LabelingFunction:
    """A production signal as an LF: the latest feedback of ``kind`` votes ``label``; for a
    moderator override without ``label``, the override's own label."""
    index = {c: i for i, c in enumerate(classes)}

    def fn(x: Example) -> int:
        for k, given in reversed(x.feedback):
            if k != kind:
                continue
            if label is not None:
                return label
            return index.get(given or "", ABSTAIN)
        return ABSTAIN

    return LabelingFunction(name, fn, "feedback")


def apply_lfs(lfs: Sequence[LabelingFunction], examples: Sequence[Example]) -> NDArray[np.int64]:
    """The label matrix ``L: (len(examples), len(lfs))``, entries in ``[-1, n_classes)``."""
    out = np.full((len(examples), len(lfs)), ABSTAIN, dtype=np.int64)
    for j, lf in enumerate(lfs):
        for i, x in enumerate(examples):
            out[i, j] = lf(x)
    return out


def examples_from_events(
    comments: Iterable[CommentPosted],
    scores: Iterable[CommentScored] = (),
    feedback: Iterable[FeedbackReceived] = (),
) -> list[Example]:
    """One example per comment, with its latest score and all its feedback, in comment order."""
    latest: dict[str, CommentScored] = {}
    for s in scores:
        latest[s.comment_id] = s
    signals: dict[str, list[tuple[str, str | None]]] = defaultdict(list)
    for f in feedback:
        signals[f.comment_id].append((f.kind, f.label))
    out: list[Example] = []
    for c in comments:
        scored = latest.get(c.comment_id)
        out.append(
            Example(
                comment_id=c.comment_id,
                text=c.text,
                parent_ids=tuple(c.parent_ids),
                attributes=dict(c.attributes),
                model_probabilities=tuple(scored.probabilities) if scored else None,
                feedback=tuple(signals.get(c.comment_id, ())),
            )
        )
    return out
