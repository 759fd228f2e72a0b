"""The scorer service: ``models`` + ``comments`` in, ``scores`` (CommentScored) out.

Wiring only: :class:`labeltrail.learning.scorer_fold.ScorerFold` (onnxruntime, no torch) run by
:class:`labeltrail.kafka.runner.StageRunner`. A new ModelPublished on the compacted models topic
is picked up without a restart. Configure with ``KAFKA_BOOTSTRAP_SERVERS``,
``LABELTRAIL_TOPIC_PREFIX``, ``LABELTRAIL_LOW_MARGIN_THRESHOLD`` and ``LABELTRAIL_LEARNING_*``.
"""

from __future__ import annotations

import logging
import signal
import threading

from labeltrail.config import Settings
from labeltrail.kafka.runner import StageRunner
from labeltrail.learning.scorer_fold import ScorerFold
from labeltrail.learning.settings import LearningSettings

__all__ = ["main"]


def main() -> None:
    """Score until SIGTERM or SIGINT."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    settings, learning = Settings(), LearningSettings()
    fold = ScorerFold(
        models_dir=learning.models_dir,
        threshold=settings.low_margin_threshold,
        auto_accept_threshold=learning.auto_accept_threshold,
        threads=learning.scorer_threads,
    )
    runner = StageRunner(fold, settings, batch_size=learning.scorer_batch_size)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stats = runner.run(stop)
    logging.getLogger("scorer").info("stopped: %s", stats)


if __name__ == "__main__":
    main()
