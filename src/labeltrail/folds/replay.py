"""Run folds over events in memory, in log order, for tests and batch backfills.

Each fold sees the events of its input topics in the order they were appended to the
in-memory log; outputs are appended to their topics and processed in turn. This is the
batch path; the live path feeds the same folds from Kafka.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from labeltrail.events.base import Event, LogPosition
from labeltrail.folds.base import Fold, Rejected

__all__ = ["Replay"]

TopicOf = Callable[[Event], str]


@dataclass
class Replay:
    """An in-memory log of suffix-named topics and the folds that read them."""

    folds: Sequence[Fold]
    topic_of: TopicOf
    log: dict[str, list[Event]] = field(default_factory=dict)
    rejected: list[tuple[str, Rejected, Event]] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)

    def append(self, events: Iterable[Event]) -> None:
        for event in events:
            self.log.setdefault(self.topic_of(event), []).append(event)

    def run(self) -> None:
        """Process until no fold has unread input; then drain folds that hold input."""
        cursors: dict[tuple[str, str], int] = {}
        while True:
            progressed = self._step(cursors)
            if not progressed:
                drained = False
                for fold in self.folds:
                    drain = getattr(fold, "drain", None)
                    if drain is not None:
                        for out in drain():
                            drained = True
                            self._emit(fold, out, None)
                if not drained:
                    return

    def _step(self, cursors: dict[tuple[str, str], int]) -> bool:
        progressed = False
        for fold in self.folds:
            queue: deque[tuple[str, int]] = deque()
            for topic in fold.inputs:
                start = cursors.get((fold.name, topic), 0)
                end = len(self.log.get(topic, []))
                queue.extend((topic, i) for i in range(start, end))
                cursors[(fold.name, topic)] = end
            for topic, offset in queue:
                progressed = True
                event = self.log[topic][offset]
                self.counts[f"{fold.name}.in"] += 1
                for out in fold.apply(event, LogPosition(topic=topic, partition=0, offset=offset)):
                    self._emit(fold, out, event)
        return progressed

    def _emit(self, fold: Fold, out: Event | Rejected, source: Event | None) -> None:
        if isinstance(out, Rejected):
            self.counts[f"{fold.name}.rejected"] += 1
            if source is not None:
                self.rejected.append((fold.name, out, source))
            return
        self.counts[f"{fold.name}.out"] += 1
        self.append([out])
