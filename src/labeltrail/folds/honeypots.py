"""Which chosen crowd task meets which gold item as a honeypot: an order-free join.

A crowd task is chosen by a draw on its id (``rate``), and a chosen task pairs with each gold
item whose id draws the same of ``set_size`` buckets. Pairs depend on the two ids alone, so
the same honeypots, with the same ids, come out of any interleaving of the input topics
(``docs/pipeline.md``, "Honeypots: a join, not a race").
"""

from __future__ import annotations

from dataclasses import dataclass, field

from labeltrail.events.models import TaskCreated
from labeltrail.folds.base import stable_id
from labeltrail.folds.draws import draw

__all__ = ["HoneypotPairing"]


@dataclass
class HoneypotPairing:
    """The join's state: chosen tasks and gold items by bucket, and the honeypots emitted."""

    rate: float
    set_size: int
    chosen: dict[int, dict[str, TaskCreated]] = field(default_factory=dict)
    """Crowd tasks chosen to carry honeypots, by bucket, then task id (a gold item may come
    later)."""
    gold_buckets: dict[int, set[str]] = field(default_factory=dict)
    """Gold items by bucket."""
    emitted: set[str] = field(default_factory=set)
    """Honeypot task ids emitted."""

    def _bucket(self, kind: str, identifier: str) -> int:
        return int(draw(kind, identifier) * self.set_size)

    def choose(self, task: TaskCreated) -> list[str]:
        """Choose ``task`` by its id alone; the gold items of its bucket known so far, sorted
        (those that come later are paired by :meth:`tasks_for`). Empty when not chosen."""
        if draw("honeypot?", task.task_id) >= self.rate:
            return []
        bucket = self._bucket("honeypot-task-bucket", task.task_id)
        self.chosen.setdefault(bucket, {})[task.task_id] = task
        return sorted(self.gold_buckets.get(bucket, ()))

    def add_gold(self, item: str) -> None:
        """Put a new gold item in its bucket."""
        self.gold_buckets.setdefault(self._bucket("honeypot-item-bucket", item), set()).add(item)

    def tasks_for(self, item: str) -> list[TaskCreated]:
        """The chosen tasks in the gold item's bucket, by task id."""
        chosen = self.chosen.get(self._bucket("honeypot-item-bucket", item), {})
        return [chosen[task_id] for task_id in sorted(chosen)]

    def claim(self, task: TaskCreated, item: str) -> str | None:
        """The honeypot task id of the pair, the first time it is claimed; None after."""
        hp_id = stable_id("task", item, task.schema_version, "honeypot", task.task_id)
        if hp_id in self.emitted:
            return None
        self.emitted.add(hp_id)
        return hp_id
