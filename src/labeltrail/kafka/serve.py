"""Run one fold as a long-lived process under the configured runner: signals, logging, a loud
exit on failure. ``LABELTRAIL_RUNNER`` picks the runner (docs/streaming.md)."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType

from labeltrail.config import Settings, settings
from labeltrail.exceptions import LabeltrailError
from labeltrail.folds.base import Fold
from labeltrail.kafka.admin import ensure_topics
from labeltrail.kafka.runner import StageRunner
from labeltrail.kafka.scaleout import GroupStageRunner

__all__ = ["run_until_signalled", "serve", "topics_ready"]

log = logging.getLogger(__name__)


def serve(make_fold: Callable[[Settings], Fold], *, scalable: bool = False) -> int:
    """Run ``make_fold(settings)`` until SIGTERM or SIGINT; returns the exit code.

    ``scalable``: the fold's keyed inputs are co-partitioned, so any number of copies of this
    process share them through the consumer group (see :mod:`labeltrail.kafka.scaleout`);
    under the faust runner a stage runs as one worker, whatever ``scalable`` says.
    A crash of the loop exits non-zero so the supervisor restarts the process (state is
    rebuilt from the log on start), instead of idling with zero progress.
    """
    config = settings()
    if not topics_ready(config):
        return 1
    if config.runner == "faust":
        from labeltrail.kafka.faust_stage import serve_faust  # faust loads only when used

        return serve_faust(make_fold, config=config)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    runner: StageRunner
    if scalable:
        runner = GroupStageRunner(lambda: make_fold(config), config)
    else:
        runner = StageRunner(make_fold(config), config)
    return run_until_signalled(runner)


def topics_ready(config: Settings) -> bool:
    """Create the pipeline's topics; False (said in one line) when no broker answers, which
    it tells within seconds."""
    try:
        ensure_topics(config)
    except LabeltrailError as exc:
        log.error("%s", exc)
        return False
    return True


def run_until_signalled(runner: StageRunner) -> int:
    """Run ``runner`` until SIGTERM or SIGINT; returns the exit code (1 on a failure)."""
    fold = runner.fold
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("%s: signal %s, finishing the current batch", fold.name, signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    log.info("%s: reading %s", fold.name, ", ".join(runner.topics))
    try:
        stats = runner.run(stop)
    except LabeltrailError as exc:  # a taken metrics port and the like: one line, the cause
        log.error("%s: %s", fold.name, exc)
        return 1
    except Exception:
        log.exception("%s: stopped by an error", fold.name)
        return 1
    log.info("%s: stopped; %s", fold.name, stats)
    return 0
