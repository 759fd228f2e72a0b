"""Labels: consensus and adjudications in; committed labels (only those that passed QC) out."""

from labeltrail.kafka.serve import serve
from labeltrail.stages import STAGES

if __name__ == "__main__":
    stage = STAGES["labels"]
    raise SystemExit(serve(stage.make, scalable=stage.scalable))
