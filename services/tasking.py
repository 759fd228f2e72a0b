"""Tasking: scored comments and adjudication requests in; tasks and assignments out."""

from labeltrail.kafka.serve import serve
from labeltrail.stages import STAGES

if __name__ == "__main__":
    stage = STAGES["tasking"]
    raise SystemExit(serve(stage.make, scalable=stage.scalable))
