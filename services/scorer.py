"""Scorer: the models and comments topics in; CommentScored out (onnxruntime, no torch).

Wiring only: :class:`labeltrail.folds.scorer.ScorerFold` run by
:func:`labeltrail.kafka.serve.serve`. A new ModelPublished on the compacted models topic is
picked up without a restart. Configure with ``KAFKA_BOOTSTRAP_SERVERS``,
``LABELTRAIL_TOPIC_PREFIX``, ``LABELTRAIL_LOW_MARGIN_THRESHOLD`` and ``LABELTRAIL_LEARNING_*``
(models dir, auto-accept threshold, onnxruntime threads). Not ``scalable``: every copy must
read the whole single-partition models topic.
"""

from labeltrail.kafka.serve import serve
from labeltrail.stages import STAGES

if __name__ == "__main__":
    stage = STAGES["scorer"]
    raise SystemExit(serve(stage.make, scalable=stage.scalable))
