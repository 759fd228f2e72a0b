"""IAA: comments, votes and gold results in; agreement windows and blind-spot alerts out."""

from labeltrail.kafka.serve import serve
from labeltrail.stages import STAGES

if __name__ == "__main__":
    stage = STAGES["iaa"]
    raise SystemExit(serve(stage.make, scalable=stage.scalable))
