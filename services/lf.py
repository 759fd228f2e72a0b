"""LF: schemas and comments in; each labeling function's vote (WeakVoteCast) out."""

from labeltrail.kafka.serve import serve
from labeltrail.stages import STAGES

if __name__ == "__main__":
    stage = STAGES["lf"]
    raise SystemExit(serve(stage.make, scalable=stage.scalable))
