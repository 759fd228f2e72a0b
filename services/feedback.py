"""Feedback: comments, labels and production feedback in; expert review requests out."""

from labeltrail.kafka.serve import serve
from labeltrail.stages import STAGES

if __name__ == "__main__":
    stage = STAGES["feedback"]
    raise SystemExit(serve(stage.make, scalable=stage.scalable))
