"""Reliability: gold results, votes and verdicts in; annotator reliability and feedback out."""

from labeltrail.config import Settings
from labeltrail.kafka.serve import serve
from labeltrail.pipeline.reliability import ReliabilityConfig, ReliabilityFold


def make(settings: Settings) -> ReliabilityFold:
    # Live: refits happen on event-time boundaries only, never when the runner is caught up.
    return ReliabilityFold(ReliabilityConfig(refit_on_drain=False))


if __name__ == "__main__":
    raise SystemExit(serve(make))
