"""Agreement beside gold accuracy, per event-time window, schema version, question and slice.

Day and week windows close on an event-time watermark; each closed window gets Krippendorff's
alpha and pairwise agreement beside gold accuracy per slice, and a blind-spot alert where the
crowd agrees but gold says it is wrong. Late events are dead-lettered, closed windows never
revised. Windows, metrics, the alert's test and lateness: ``docs/pipeline.md`` ("Agreement
windows").
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from typing import ClassVar, Literal

import numpy as np
from scipy import stats

from labeltrail.events.base import Event, LogPosition
from labeltrail.events.models import CommentPosted, HoneypotScored, IaaWindowClosed, VoteCast
from labeltrail.folds.base import Output, Rejected
from labeltrail.folds.reliability import WEEK_ORIGIN
from labeltrail.quality.agreement import krippendorff_alpha_counts
from labeltrail.quality.blindspots import (
    KRIPPENDORFF_ALPHA_NOMINAL,
    PAIRWISE_AGREEMENT,
    high_agreement_from,
)
from labeltrail.quality.item import pairwise_agreement

__all__ = [
    "ALL",
    "IaaConfig",
    "IaaFold",
    "Kind",
    "SliceFigures",
    "alpha_nominal",
    "holm",
    "less_accurate_p",
    "pairwise_agreement",
    "window_start",
]

PRODUCER = "iaa"
ALL = "all"
LABEL = "label"
ALPHA = KRIPPENDORFF_ALPHA_NOMINAL
PAIRWISE = PAIRWISE_AGREEMENT
Kind = Literal["day", "week"]
LENGTH: dict[Kind, dt.timedelta] = {"day": dt.timedelta(days=1), "week": dt.timedelta(days=7)}
WindowKey = tuple[Kind, dt.datetime]


def window_start(kind: Kind, t: dt.datetime) -> dt.datetime:
    """Start of the ``kind`` window holding ``t`` (days at 00:00 UTC, weeks on Mondays)."""
    length = LENGTH[kind]
    return WEEK_ORIGIN + ((t - WEEK_ORIGIN) // length) * length


def alpha_nominal(units: list[list[str]]) -> float | None:
    """Krippendorff's alpha (nominal) over units with >= 2 values; None when no unit has two.

    One value everywhere gives 1.0 (the quality core's convention); NaN is returned as None.
    """
    pairable = [u for u in units if len(u) >= 2]
    if not pairable:
        return None
    values = sorted({v for u in pairable for v in u})
    pos = {v: i for i, v in enumerate(values)}
    counts = np.zeros((len(pairable), len(values)))
    for row, unit in enumerate(pairable):
        for v in unit:
            counts[row, pos[v]] += 1
    alpha = krippendorff_alpha_counts(counts, np.arange(len(values), dtype=np.float64))
    return None if np.isnan(alpha) else alpha


def less_accurate_p(correct: int, n: int, rest_correct: int, rest_n: int) -> float:
    """One-sided Fisher exact p-value that a slice's accuracy is below the rest's."""
    table = [[correct, n - correct], [rest_correct, rest_n - rest_correct]]
    return float(stats.fisher_exact(table, alternative="less").pvalue)


def holm(p: dict[str, float]) -> dict[str, float]:
    """Holm step-down adjusted p-values, by key."""
    order = sorted(p, key=lambda k: (p[k], k))
    out: dict[str, float] = {}
    running = 0.0
    for i, key in enumerate(order):
        running = max(running, min(1.0, p[key] * (len(order) - i)))
        out[key] = running
    return out


@dataclass(frozen=True)
class IaaConfig:
    """allowed_lateness: watermark lag; min_agreement, alpha, min_gold: the blind-spot rule."""

    allowed_lateness: dt.timedelta = dt.timedelta(days=1)
    windows: tuple[Kind, ...] = ("day", "week")
    min_agreement: float | None = None
    """None: where pairwise agreement reads high on its own scale
    (:func:`labeltrail.quality.blindspots.high_agreement_from`, 0.8)."""
    alpha: float = 0.05
    min_gold: int = 10
    close_on_drain: bool = True


@dataclass(frozen=True)
class SliceFigures:
    """One (window, version, question, slice): the figures an ``IaaWindowClosed`` carries."""

    slice: str
    n_items: int
    alpha: float | None
    pairwise: float | None
    n_gold_votes: int
    n_gold_correct: int
    n_gold_items: int

    @property
    def gold_accuracy(self) -> float | None:
        return self.n_gold_correct / self.n_gold_votes if self.n_gold_votes else None


@dataclass
class _Window:
    votes: dict[str, VoteCast] = field(default_factory=dict)
    gold: dict[str, HoneypotScored] = field(default_factory=dict)
    last_event: Event | None = None


@dataclass
class IaaFold:
    """State: slices by comment, vote times, open windows, the watermark, the late count."""

    config: IaaConfig = field(default_factory=IaaConfig)
    name: str = "iaa"
    inputs: tuple[str, ...] = ("comments", "votes", "quality")
    accepts: ClassVar[frozenset[str]] = frozenset({"CommentPosted", "VoteCast", "HoneypotScored"})
    """The event types ``apply`` handles; the runner skips others' bodies undecoded."""
    slices: dict[str, str] = field(default_factory=dict)
    vote_times: dict[str, dt.datetime] = field(default_factory=dict)
    held: dict[str, list[HoneypotScored]] = field(default_factory=dict)
    open: dict[WindowKey, _Window] = field(default_factory=dict)
    latest: dt.datetime | None = None
    closed_through: dt.datetime | None = None
    late: int = 0

    @property
    def watermark(self) -> dt.datetime | None:
        if self.latest is None:
            return self.closed_through
        mark = self.latest - self.config.allowed_lateness
        return max(mark, self.closed_through) if self.closed_through else mark

    def apply(self, event: Event, position: LogPosition) -> list[Output]:
        match event:
            case CommentPosted():
                self.slices[event.comment_id] = event.attributes.get("slice", "unknown")
                return []
            case VoteCast():
                t = event.envelope.occurred_at
                self.vote_times.setdefault(event.vote_id, t)
                out = self._add(event, t, event.vote_id, is_vote=True)
                for held in self.held.pop(event.vote_id, []):
                    out += self._add(held, t, f"{held.vote_id}/{held.event_id}", is_vote=False)
            case HoneypotScored():
                vote_time = self.vote_times.get(event.vote_id)
                if vote_time is None:
                    self.held.setdefault(event.vote_id, []).append(event)
                    out = []
                else:
                    key = f"{event.vote_id}/{event.event_id}"
                    out = self._add(event, vote_time, key, is_vote=False)
            case _:
                return []
        t = event.envelope.occurred_at
        if self.latest is None or t > self.latest:
            self.latest = t
        return out + self._close_due(event)

    def drain(self) -> list[Output]:
        """Close every open window (with ``close_on_drain``); nothing when none is open."""
        if not self.config.close_on_drain:
            return []
        out: list[Output] = []
        for vote_id in sorted(self.held):
            for held in self.held.pop(vote_id):
                t = held.envelope.occurred_at
                out += self._add(held, t, f"{vote_id}/{held.event_id}", is_vote=False)
        for key in sorted(self.open, key=lambda k: (k[1] + LENGTH[k[0]], k[0])):
            end = key[1] + LENGTH[key[0]]
            self.closed_through = max(self.closed_through or end, end)
            out += self._close(key, self.open.pop(key))
        return out

    # input -------------------------------------------------------------------------------

    def _add(self, event: Event, t: dt.datetime, key: str, *, is_vote: bool) -> list[Output]:
        mark = self.watermark
        missed: list[str] = []
        for kind in self.config.windows:
            start = window_start(kind, t)
            if mark is not None and start + LENGTH[kind] <= mark:
                missed.append(f"{kind} {start:%Y-%m-%d}")
                continue
            window = self.open.setdefault((kind, start), _Window())
            if is_vote and isinstance(event, VoteCast):
                window.votes.setdefault(key, event)
            elif isinstance(event, HoneypotScored):
                window.gold.setdefault(key, event)
            window.last_event = event
        if not missed:
            return []
        self.late += 1
        what = type(event).__name__
        windows = ", ".join(missed)
        reason = f"late: {what} {event.event_id} at {t:%Y-%m-%dT%H:%M:%SZ} for closed {windows}"
        return [Rejected(f"{reason} (watermark {mark:%Y-%m-%dT%H:%M:%SZ})")]

    def _close_due(self, cause: Event) -> list[Output]:
        mark = self.watermark
        if mark is None:
            return []
        due = [k for k in self.open if k[1] + LENGTH[k[0]] <= mark]
        out: list[Output] = []
        for key in sorted(due, key=lambda k: (k[1] + LENGTH[k[0]], k[0])):
            out += self._close(key, self.open.pop(key), cause)
        return out

    # closing -----------------------------------------------------------------------------

    def _close(self, key: WindowKey, window: _Window, cause: Event | None = None) -> list[Output]:
        kind, start = key
        end = start + LENGTH[kind]
        cause = cause or window.last_event
        window_id = ("iaa", kind, start.isoformat())
        versions = sorted(
            {v.schema_version for v in window.votes.values()}
            | {g.schema_version for g in window.gold.values()}
        )
        out: list[Output] = []
        for version in versions:
            votes = [v for v in window.votes.values() if v.schema_version == version]
            gold = [g for g in window.gold.values() if g.schema_version == version]
            questions = sorted({q for v in votes for q in v.answers})
            for question in [LABEL, *questions]:
                rows = self.figures(votes, gold if question == LABEL else [], question)
                flags = self.blind_spots(rows) if question == LABEL else set()
                for row in rows:
                    for metric, value in ((ALPHA, row.alpha), (PAIRWISE, row.pairwise)):
                        out.append(
                            IaaWindowClosed.create(
                                producer=PRODUCER,
                                id_parts=(*window_id, version, question, row.slice, metric),
                                occurred_at=cause.envelope.occurred_at if cause else end,
                                causation_id=cause.event_id if cause else None,
                                correlation_id=f"{kind}:{start:%Y-%m-%d}",
                                window=kind,
                                window_start=start,
                                window_end=end,
                                schema_version=version,
                                question=question,
                                slice=row.slice,
                                metric=metric,
                                agreement=value,
                                gold_accuracy=row.gold_accuracy,
                                n_items=row.n_items,
                                n_gold_items=row.n_gold_items,
                                # The alert is decided on pairwise agreement: only that row
                                # carries it (alpha near 0 is expected inside such a slice).
                                blind_spot=metric == PAIRWISE and row.slice in flags,
                            )
                        )
        self._forget(end)
        return out

    def figures(
        self, votes: list[VoteCast], gold: list[HoneypotScored], question: str
    ) -> list[SliceFigures]:
        """Per slice (and ``ALL``), sorted: agreement over the window's votes, gold counts."""
        units: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
        for vote in sorted(votes, key=lambda v: v.vote_id):
            answer = vote.label if question == LABEL else vote.answers.get(question)
            if answer is None:
                continue
            for s in (self.slices.get(vote.comment_id, "unknown"), ALL):
                units[s][vote.comment_id].append(answer)
        scored: dict[str, list[HoneypotScored]] = defaultdict(list)
        for g in gold:
            for s in (self.slices.get(g.comment_id, "unknown"), ALL):
                scored[s].append(g)
        rows = []
        for s in sorted(set(units) | set(scored)):
            items = list(units[s].values()) if s in units else []
            pairable = [u for u in items if len(u) >= 2]
            results = scored.get(s, [])
            rows.append(
                SliceFigures(
                    slice=s,
                    n_items=len(items),
                    alpha=alpha_nominal(items),
                    pairwise=(
                        float(np.mean([pairwise_agreement(u) for u in pairable]))
                        if pairable
                        else None
                    ),
                    n_gold_votes=len(results),
                    n_gold_correct=sum(g.correct for g in results),
                    n_gold_items=len({g.comment_id for g in results}),
                )
            )
        return rows

    def blind_spots(self, rows: list[SliceFigures]) -> set[str]:
        """Slices that agree but are significantly less accurate than the rest of the window."""
        cfg = self.config
        floor = (
            cfg.min_agreement
            if cfg.min_agreement is not None
            else high_agreement_from(PAIRWISE_AGREEMENT)
        )
        named = [r for r in rows if r.slice != ALL]
        total_n = sum(r.n_gold_votes for r in named)
        total_ok = sum(r.n_gold_correct for r in named)
        raw: dict[str, float] = {}
        for r in named:
            rest_n = total_n - r.n_gold_votes
            if r.n_gold_votes >= cfg.min_gold and rest_n > 0:
                rest_ok = total_ok - r.n_gold_correct
                raw[r.slice] = less_accurate_p(r.n_gold_correct, r.n_gold_votes, rest_ok, rest_n)
        adjusted = holm(raw)
        return {
            r.slice
            for r in named
            if r.slice in adjusted
            and adjusted[r.slice] < cfg.alpha
            and r.pairwise is not None
            and r.pairwise >= floor
        }

    def _forget(self, closed_end: dt.datetime) -> None:
        """Vote times are kept while a window could still hold the vote's gold results."""
        horizon = closed_end - LENGTH["week"] - self.config.allowed_lateness
        for vote_id in [v for v, t in self.vote_times.items() if t < horizon]:
            del self.vote_times[vote_id]
