"""Active learning: schemas, comments, scores, labels, tasks, requests in; task requests out."""

from labeltrail.kafka.serve import serve
from labeltrail.stages import STAGES

if __name__ == "__main__":
    stage = STAGES["active"]
    raise SystemExit(serve(stage.make, scalable=stage.scalable))
