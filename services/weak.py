"""Weak: crowd votes, LF votes, scores and feedback in; the joint label model's weak labels out."""

from labeltrail.kafka.serve import serve
from labeltrail.stages import STAGES

if __name__ == "__main__":
    stage = STAGES["weak"]
    raise SystemExit(serve(stage.make, scalable=stage.scalable))
