"""Trainer: comments, gold verdicts, votes, labels and exports in; exports and models out.

Wiring only: :class:`labeltrail.learning.retrain_fold.RetrainFold` run by
:func:`labeltrail.kafka.serve.serve`, given the torch trainer and the onnxruntime loader it
checks parity with. Every ``LABELTRAIL_TRAINER_EVERY_LABELS`` new committed labels (and on every
``labeltrail export create``) it trains on the export's soft labels, evaluates on the gold set
per slice and publishes ModelPublished to the compacted models topic, where the scorer picks it
up. Artifacts go to ``LABELTRAIL_LEARNING_MODELS_DIR`` (shared with the scorer). Not
``scalable``: one copy reads every partition.
"""

from labeltrail.config import Settings
from labeltrail.kafka.serve import serve
from labeltrail.learning.retrain_fold import RetrainFold
from labeltrail.learning.retrain_settings import TrainerSettings
from labeltrail.learning.settings import LearningSettings
from labeltrail.learning.train_job import onnx_scorer, torch_trainer


def make(settings: Settings) -> RetrainFold:
    return RetrainFold(
        models_dir=LearningSettings().models_dir,
        make_trainer=torch_trainer,
        load_scorer=onnx_scorer,
        config=TrainerSettings().config(),
    )


if __name__ == "__main__":
    raise SystemExit(serve(make))
