"""The weak stage as a fold: the joint label model over every source, committed on route weak.

Reads the crowd's votes, the LFs' votes (``WeakVoteCast``, the lf stage), the model's scores and
production feedback, for one schema version (``LABELTRAIL_WEAK_SCHEMA_VERSION``). Every
``refit_every`` of event time (on the grid the reliability stage's refits use) and, with
``refit_on_drain``, when the input is drained, it fits
:class:`~labeltrail.learning.multisource.MultiSourceLabelModel` to every comment it has an
observation of, and commits each comment's posterior as a ``LabelCommitted`` on route
``weak``, ``machine_made``, method ``multisource-em``, run id ``weak``: written to
``weak.labels``, never to the human labels' topic, and read like a labeling run's labels, so no
stage, export or audit takes it for a human label without naming it
(``labeltrail export create --run weak``, ``labeltrail audit label-as-of --run weak``).

Sources and their kinds (whose silence counts, :mod:`labeltrail.learning.multisource`):

- each crowd annotator (``human``): their latest vote on the comment;
- each LF by ``name@version`` (``lf``): its vote or abstain;
- the model (``model``): its latest score's top class from ``model_min_confidence`` on;
- user flags (``feedback``, the item 1 feedback stage's weak source): the class flagged most
  (ties: the schema's order); flags naming no class and appeals or overrides are not votes
  here (an expert reviews those, and the verdict is a human label).

Gold-set verdicts (``AdjudicationRecorded`` with a ``gold:`` request id) are clamped, as the
reliability stage's refits fix gold: on a gold item the posterior is its gold class, and every
source's table is learned against it there (``method_params["gold"]`` says so on the label).

A comment's label is committed again only when its rounded posterior changed: the label id is
derived from the comment, the schema version and the posterior to 4 decimals, so a replay over
the same inputs commits the same ids.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from labeltrail.events.base import Event, LogPosition
from labeltrail.events.ids import derive_id
from labeltrail.events.models import (
    GOLD_REQUEST_PREFIX,
    AdjudicationRecorded,
    CommentScored,
    FeedbackReceived,
    LabelCommitted,
    LabelSchemaPublished,
    VoteCast,
    WeakVoteCast,
)
from labeltrail.events.topics import WEAK_ROUTE, WEAK_RUN
from labeltrail.folds.active import score_problem
from labeltrail.folds.base import Output, Rejected, build_event
from labeltrail.folds.reliability import boundary_after
from labeltrail.learning.lf import ABSTAIN
from labeltrail.learning.multisource import MultiSourceLabelModel, Observations, SourceKind

__all__ = ["WEAK_METHOD", "WeakConfig", "WeakFold"]

PRODUCER = "weak"
WEAK_METHOD = "multisource-em"
FLAGS = "feedback:user_flag"
"""The source name of production user flags in the joint model."""


@dataclass(frozen=True)
class WeakConfig:
    schema_version: str = "v3"
    refit_every: dt.timedelta = dt.timedelta(days=1)
    refit_on_drain: bool = False
    model_min_confidence: float = 0.6


@dataclass
class WeakFold:
    """State: each comment's observations by source, the labels committed, the refit clock."""

    accepts: ClassVar[frozenset[str]] = frozenset(
        {
            "LabelSchemaPublished",
            "VoteCast",
            "WeakVoteCast",
            "CommentScored",
            "FeedbackReceived",
            "AdjudicationRecorded",
        }
    )
    config: WeakConfig = field(default_factory=WeakConfig)
    name: str = "weak"
    inputs: tuple[str, ...] = (
        "schemas",
        "votes",
        "weak.votes",
        "scores",
        "feedback",
        "adjudications",
    )
    classes: tuple[str, ...] | None = None
    humans: dict[str, dict[str, tuple[str, str]]] = field(default_factory=dict)
    """comment -> annotator -> (label, vote id), the latest vote."""
    lfs: dict[str, dict[str, tuple[str | None, str]]] = field(default_factory=dict)
    """comment -> ``name@version`` -> (label or None, vote id)."""
    scores: dict[str, tuple[dict[str, float], str]] = field(default_factory=dict)
    """comment -> (class -> probability, model version) of its latest score."""
    flags: dict[str, Counter[str]] = field(default_factory=dict)
    gold: dict[str, str] = field(default_factory=dict)
    """comment -> its gold-set verdict (the latest), clamped in every fit."""
    committed: dict[str, str] = field(default_factory=dict)
    """comment -> the label id last committed."""
    clock: dt.datetime | None = None
    next_refit: dt.datetime | None = None
    fits: int = 0
    dirty: bool = False

    def apply(self, event: Event, position: LogPosition) -> list[Output]:
        version = self.config.schema_version
        match event:
            case LabelSchemaPublished():
                if event.version == version and self.classes is None:
                    self.classes = tuple(event.classes)
                return []
            case VoteCast() if event.schema_version == version:
                self.humans.setdefault(event.comment_id, {})[event.annotator_id] = (
                    event.label,
                    event.vote_id,
                )
            case WeakVoteCast() if event.schema_version == version:
                key = f"{event.source_name}@{event.source_version}"
                self.lfs.setdefault(event.comment_id, {})[key] = (event.label, event.vote_id)
            case CommentScored():
                problem = score_problem(event, None)
                if problem is not None:
                    return [
                        Rejected(f"score of {event.comment_id} ({event.model_version}): {problem}")
                    ]
                probs = dict(zip(event.classes, event.probabilities, strict=True))
                self.scores[event.comment_id] = (probs, event.model_version)
            case FeedbackReceived() if event.kind == "user_flag" and event.label:
                self.flags.setdefault(event.comment_id, Counter())[event.label] += 1
            case AdjudicationRecorded() if (
                event.schema_version == version and event.request_id.startswith(GOLD_REQUEST_PREFIX)
            ):
                self.gold[event.comment_id] = event.label
            case _:
                return []
        self.dirty = True
        return self._tick(event)

    def drain(self) -> list[Output]:
        """With ``refit_on_drain``: fit now over what has been read (once per new input)."""
        if not self.config.refit_on_drain or not self.dirty or self.clock is None:
            return []
        return self.refit(self.clock, None)

    def _tick(self, event: Event) -> list[Output]:
        t = event.envelope.occurred_at
        every = self.config.refit_every
        if self.next_refit is None:
            self.next_refit = boundary_after(t, every)
        if self.clock is None or t > self.clock:
            self.clock = t
        out: list[Output] = []
        if self.next_refit <= self.clock:
            boundary = self.next_refit
            self.next_refit = boundary_after(self.clock, every)
            out += self.refit(boundary, event)
        return out

    def observations(self) -> tuple[list[str], Observations] | None:
        """The comments observed (sorted) and their observations: humans by annotator, then
        LFs (sorted by name@version), the model and the flags as columns of one matrix."""
        if self.classes is None:
            return None
        code = {c: i for i, c in enumerate(self.classes)}
        ids = sorted(set(self.humans) | set(self.lfs) | set(self.scores) | set(self.flags))
        if not ids:
            return None
        index = {c: i for i, c in enumerate(ids)}
        items: list[int] = []
        who: list[str] = []
        said: list[int] = []
        for cid, votes in self.humans.items():
            for annotator, (label, _) in sorted(votes.items()):
                if label in code:
                    items.append(index[cid])
                    who.append(annotator)
                    said.append(code[label])
        lf_keys = sorted({k for votes in self.lfs.values() for k in votes})
        names: list[str] = [*lf_keys]
        kinds: list[SourceKind] = ["lf"] * len(lf_keys)
        if self.scores:
            names.append("model")
            kinds.append("model")
        if self.flags:
            names.append(FLAGS)
            kinds.append("feedback")
        matrix = np.full((len(ids), len(names)), ABSTAIN, dtype=np.int64)
        column = {n: j for j, n in enumerate(names)}
        for cid, lf_votes in self.lfs.items():
            for key, (said_by_lf, _) in lf_votes.items():
                if said_by_lf is not None and said_by_lf in code:
                    matrix[index[cid], column[key]] = code[said_by_lf]
        for cid, (probs, _) in self.scores.items():
            p = np.array([probs.get(c, 0.0) for c in self.classes])
            if p.max() >= self.config.model_min_confidence:
                matrix[index[cid], column["model"]] = int(p.argmax())
        for cid, counts in self.flags.items():
            known = [(-n, code[c]) for c, n in counts.items() if c in code]
            if known:
                matrix[index[cid], column[FLAGS]] = min(known)[1]
        obs = Observations.build(
            len(ids),
            votes=(items, who, said) if items else None,
            lf_matrix=matrix if names else None,
            lf_names=names,
            lf_kinds=kinds,
        )
        return ids, obs

    def refit(self, boundary: dt.datetime, cause: Event | None) -> list[Output]:
        """Fit the joint model and commit each comment whose rounded posterior changed."""
        self.dirty = False
        built = self.observations()
        if built is None:
            return []
        assert self.classes is not None
        ids, obs = built
        code = {c: i for i, c in enumerate(self.classes)}
        gold = np.array([code.get(self.gold.get(c, ""), ABSTAIN) for c in ids], dtype=np.int64)
        model = MultiSourceLabelModel(len(self.classes)).fit(obs, gold)
        self.fits += 1
        posterior = model.predict_proba()
        out: list[Output] = []
        for cid, p in zip(ids, posterior, strict=True):
            rounded = [round(float(x), 4) for x in p]
            label_id = derive_id("weak-label", cid, self.config.schema_version, rounded)
            if self.committed.get(cid) == label_id:
                continue
            self.committed[cid] = label_id
            out.append(self._label(cid, label_id, p, boundary, cause, obs.source_names))
        return out

    def _label(
        self,
        comment_id: str,
        label_id: str,
        p: np.ndarray,
        at: dt.datetime,
        cause: Event | None,
        sources: tuple[str, ...],
    ) -> LabelCommitted:
        assert self.classes is not None
        humans = self.humans.get(comment_id, {})
        lf_votes = self.lfs.get(comment_id, {})
        score = self.scores.get(comment_id)
        params = {
            "sources": str(len(sources)),
            "lfs": ",".join(sorted(lf_votes)),
            "lf_vote_ids": ",".join(v for _, (_, v) in sorted(lf_votes.items())),
            "user_flags": str(sum(self.flags.get(comment_id, Counter()).values())),
        }
        if comment_id in self.gold:
            params["gold"] = self.gold[comment_id]
        if score is not None:
            params["model_version"] = score[1]
        return build_event(
            LabelCommitted,
            event_id=derive_id("LabelCommitted", label_id),
            producer=PRODUCER,
            occurred_at=at,
            causation_id=None if cause is None else cause.event_id,
            correlation_id=comment_id,
            label_id=label_id,
            comment_id=comment_id,
            schema_version=self.config.schema_version,
            label=self.classes[int(np.argmax(p))],
            classes=list(self.classes),
            distribution=[float(x) for x in p],
            confidence=min(1.0, float(np.max(p))),
            route=WEAK_ROUTE,
            method=WEAK_METHOD,
            method_params=params,
            vote_ids=[v for _, (_, v) in sorted(humans.items())],
            annotator_ids=sorted(humans),
            machine_made=True,
            run_id=WEAK_RUN,
        )
