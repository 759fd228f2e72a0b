"""Reliability: gold results, votes and verdicts in; annotator reliability and feedback out."""

from labeltrail.kafka.serve import serve
from labeltrail.stages import STAGES

if __name__ == "__main__":
    stage = STAGES["reliability"]
    raise SystemExit(serve(stage.make, scalable=stage.scalable))
