"""Questions: schemas, votes, consensus in; per-question labels and needs-context requests out."""

from labeltrail.kafka.serve import serve
from labeltrail.stages import STAGES

if __name__ == "__main__":
    stage = STAGES["questions"]
    raise SystemExit(serve(stage.make, scalable=stage.scalable))
