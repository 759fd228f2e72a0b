"""Scorer: the models and comments topics in; CommentScored out (onnxruntime, no torch).

Wiring only: :class:`labeltrail.learning.scorer_fold.ScorerFold` run by
:func:`labeltrail.kafka.serve.serve`. A new ModelPublished on the compacted models topic is
picked up without a restart. Configure with ``KAFKA_BOOTSTRAP_SERVERS``,
``LABELTRAIL_TOPIC_PREFIX``, ``LABELTRAIL_LOW_MARGIN_THRESHOLD`` and ``LABELTRAIL_LEARNING_*``
(models dir, auto-accept threshold, onnxruntime threads). Not ``scalable``: every copy must
read the whole single-partition models topic.
"""

from labeltrail.config import Settings
from labeltrail.kafka.serve import serve
from labeltrail.learning.scorer_fold import ScorerFold
from labeltrail.learning.settings import LearningSettings


def make(settings: Settings) -> ScorerFold:
    learning = LearningSettings()
    return ScorerFold(
        models_dir=learning.models_dir,
        threshold=settings.low_margin_threshold,
        auto_accept_threshold=learning.auto_accept_threshold,
        threads=learning.scorer_threads,
    )


if __name__ == "__main__":
    raise SystemExit(serve(make))
