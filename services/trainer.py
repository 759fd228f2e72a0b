"""Trainer: comments, gold verdicts, votes, labels and exports in; exports and models out.

Wiring only: :class:`labeltrail.folds.trainer.RetrainFold` run by
:func:`labeltrail.kafka.serve.serve`, given the torch trainer and the onnxruntime loader it
checks parity with. Every ``LABELTRAIL_TRAINER_EVERY_LABELS`` new committed labels (and on every
``labeltrail export create``) it trains on the export's soft labels, evaluates on the gold set
per slice, gates it against the live model (the last on the models topic: worse on any gold
slice by more than ``LABELTRAIL_LEARNING_GATE_TOLERANCE``, it is a ModelRefused on
``models.refused`` instead) and publishes ModelPublished to the compacted models topic, where
the scorer picks it up. Artifacts go to ``LABELTRAIL_LEARNING_MODELS_DIR`` (shared with the
scorer). Not ``scalable``: one copy reads every partition.
"""

from labeltrail.kafka.serve import serve
from labeltrail.stages import STAGES

if __name__ == "__main__":
    stage = STAGES["trainer"]
    raise SystemExit(serve(stage.make, scalable=stage.scalable))
