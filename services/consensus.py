"""Consensus: votes in; rolling consensus, adjudication requests and honeypot scores out."""

from labeltrail.kafka.serve import serve
from labeltrail.stages import STAGES

if __name__ == "__main__":
    stage = STAGES["consensus"]
    raise SystemExit(serve(stage.make, scalable=stage.scalable))
