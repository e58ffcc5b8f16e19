"""class_weight=balanced: n / (C * count_c) weights on the training loss only."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
import torch
from sklearn.metrics import recall_score

from mlflow_tune.training.callbacks import TrainCallback
from mlflow_tune.training.config import TrainConfig
from mlflow_tune.training.data import DataSplits, split
from mlflow_tune.training.loop import class_weights, train_model
from mlflow_tune.training.records import EpochRecord

CPU = torch.device("cpu")


def cfg(**overrides: Any) -> TrainConfig:
    base: dict[str, Any] = {"dataset": "synthetic", "imbalance": 10.0, "n_classes": 3, "model": "mlp",
                            "epochs": 15, "num_threads": 1, "hidden_units": 32}
    return TrainConfig(**{**base, **overrides})


def test_weights_follow_the_formula_on_the_training_split() -> None:
    config = cfg(class_weight="balanced")
    data = split(config)
    weights = class_weights(config, data, CPU)
    assert weights is not None
    counts = np.bincount(data.train.y)
    expected = len(data.train.y) / (data.n_classes * counts)
    np.testing.assert_allclose(weights.numpy(), expected, rtol=1e-6)
    assert weights[2] > 5 * weights[0]   # the minority class, 10x rarer, weighs ~10x more


def test_no_weights_unless_asked_or_when_already_balanced() -> None:
    assert class_weights(cfg(), split(cfg()), CPU) is None
    batches = cfg(class_weight="balanced", balance="batches")
    assert class_weights(batches, split(batches), CPU) is None   # balanced batches: no double correction
    over = cfg(class_weight="balanced", balance="oversample")
    weights = class_weights(over, split(over), CPU)
    assert weights is not None and torch.allclose(weights, torch.ones(3))


class ValLoss(TrainCallback):
    """Checks that the logged val loss is the plain, unweighted cross-entropy."""

    def on_train_start(self, config: TrainConfig, data: DataSplits, model: Any) -> None:
        self.x, self.y, self.model = torch.as_tensor(data.val.x), torch.as_tensor(data.val.y), model

    def on_epoch_end(self, record: EpochRecord, history: Sequence[EpochRecord]) -> str | None:
        with torch.no_grad():
            plain = float(torch.nn.functional.cross_entropy(self.model(self.x), self.y))
        assert record.val_loss == pytest.approx(plain, rel=1e-5)
        return None


def _minority_recall(config: TrainConfig) -> float:
    result = train_model(config, [ValLoss()])
    with torch.no_grad():
        pred = result.model(torch.as_tensor(result.data.val.x)).argmax(1).numpy()
    return float(recall_score(result.data.val.y, pred, labels=[2], average=None)[0])


def test_balanced_weights_raise_minority_recall() -> None:
    plain, weighted = _minority_recall(cfg()), _minority_recall(cfg(class_weight="balanced"))
    assert weighted > plain + 0.3, (plain, weighted)
