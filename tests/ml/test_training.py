"""Soft-label training, ONNX export and torch/onnxruntime parity."""

from __future__ import annotations

import numpy as np
import pytest

from labeltrail.ontology.schema import MODERATION_CLASSES
from tests.learning.fixtures import TinyModel, require, toy_corpus


def test_model_learns_the_toy_corpus(tiny_model: TinyModel) -> None:
    trainer = tiny_model.trainer
    texts, targets = toy_corpus(repeat=2, seed=5)
    pred = trainer.predict_proba(texts).argmax(axis=1)
    assert np.mean(pred == targets.argmax(axis=1)) >= 0.9
    assert trainer.loss_history_[-1] < trainer.loss_history_[0]


def test_onnx_parity_within_1e_5(tiny_model: TinyModel) -> None:
    require("onnxruntime")
    from labeltrail.ml.scoring import OnnxTextScorer
    from labeltrail.ml.torch_model import predict_proba_torch

    scorer = OnnxTextScorer(tiny_model.path)
    texts = [*tiny_model.texts[:50], "never seen before 😂", "x", "a " * 300]
    ids = scorer.featurizer.transform(texts)
    torch_probs = predict_proba_torch(tiny_model.trainer.model_, ids)
    onnx_probs = scorer.predict_proba(texts)
    assert onnx_probs.shape == (len(texts), 5)
    np.testing.assert_allclose(onnx_probs, torch_probs, atol=1e-5, rtol=0)
    random_ids = np.random.default_rng(0).integers(0, 2**12, size=(300, 33))
    random_ids[::3, 5] = 0  # padding inside a row, not only at its end
    random_ids[1::4, 20:] = 0
    np.testing.assert_allclose(
        scorer.predict_ids(random_ids),
        predict_proba_torch(tiny_model.trainer.model_, random_ids),
        atol=1e-5,
        rtol=0,
    )
    assert scorer.classes == list(MODERATION_CLASSES)
    assert scorer.metadata == {"export_id": "toy"}
    assert scorer.session.get_inputs()[0].type == "tensor(int32)"


def test_scorer_rows_keep_their_order_whatever_the_batching(tiny_model: TinyModel) -> None:
    """Rows are run in blocks sorted by length; the output is in the caller's order."""
    require("onnxruntime")
    from labeltrail.ml.scoring import OnnxTextScorer

    texts = [*tiny_model.texts[:40], "", "a " * 200, "x"] * 3
    single = OnnxTextScorer(tiny_model.path)
    one_by_one = np.concatenate([single.predict_proba([t]) for t in texts])
    for batch_size, run_batch in ((1024, 64), (7, 3), (50, 1)):
        scorer = OnnxTextScorer(tiny_model.path, batch_size=batch_size, run_batch=run_batch)
        np.testing.assert_allclose(scorer.predict_proba(texts), one_by_one, atol=1e-6, rtol=0)
    assert OnnxTextScorer(tiny_model.path).predict_proba([]).shape == (0, 5)


def test_hard_labels_alone_are_refused() -> None:
    require("torch")
    from labeltrail.exceptions import LearningError
    from labeltrail.ml.training import SoftLabelTrainer

    trainer = SoftLabelTrainer(MODERATION_CLASSES, epochs=1)
    with pytest.raises(LearningError, match="soft distributions"):
        trainer.fit(["a", "b"], np.array([0, 1]))
    with pytest.raises(LearningError, match="probability distribution"):
        trainer.fit(["a"], np.array([[2.0, 0, 0, 0, 0]]))
    with pytest.raises(LearningError, match="weights"):
        trainer.fit(["a"], np.eye(5)[:1], np.array([0.0]))


def test_confidence_weights_decide_conflicting_labels() -> None:
    """The same text labelled both ways: the confident label wins, whatever the count."""
    require("torch")
    from labeltrail.learning.features import HashingFeaturizer
    from labeltrail.ml.training import SoftLabelTrainer

    texts = ["we all know what your kind is good for"] * 30 + ["great video"] * 30
    targets = np.zeros((60, 5))
    targets[:20, 0] = 1.0  # crowd: non-toxic, low confidence
    targets[20:30, 2] = 1.0  # experts: harassment, high confidence
    targets[30:, 0] = 1.0
    weights = np.r_[np.full(20, 0.1), np.full(10, 0.95), np.ones(30)]
    trainer = SoftLabelTrainer(
        MODERATION_CLASSES,
        featurizer=HashingFeaturizer(n_buckets=2**10),
        dim=8,
        hidden=8,
        epochs=20,
        batch_size=8,
        seed=1,
    ).fit(texts, targets, weights)
    probs = trainer.predict_proba(["we all know what your kind is good for", "great video"])
    assert probs[0].argmax() == 2 and probs[1].argmax() == 0
    assert probs[0, 2] > 0.7
