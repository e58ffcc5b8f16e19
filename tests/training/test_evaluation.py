"""The class-balance metrics: equal to sklearn's on the loop's own predictions, AUC for two classes only."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
import torch
from sklearn.metrics import balanced_accuracy_score, f1_score, roc_auc_score

from mlflow_tune.training.callbacks import TrainCallback
from mlflow_tune.training.config import TrainConfig
from mlflow_tune.training.data import DataSplits
from mlflow_tune.training.evaluation import class_scores, has_auc
from mlflow_tune.training.loop import TrainResult, train_model
from mlflow_tune.training.records import EPOCH_METRICS, TWO_CLASS_METRICS, EpochRecord


def cfg(**overrides: Any) -> TrainConfig:
    base: dict[str, Any] = {"dataset": "digits", "model": "mlp", "epochs": 3, "num_threads": 1,
                            "hidden_units": 16}
    return TrainConfig(**{**base, **overrides})


@torch.no_grad()
def _predict(model: Any, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    model.eval()
    proba = torch.softmax(model(torch.as_tensor(x)), dim=1).numpy()
    return proba.argmax(1), proba


class Checker(TrainCallback):
    """Recomputes each epoch's scores with sklearn from the model as it was evaluated."""

    def __init__(self) -> None:
        self.checked = 0

    def on_train_start(self, config: TrainConfig, data: DataSplits, model: Any) -> None:
        self.data, self.model = data, model

    def on_epoch_end(self, record: EpochRecord, history: Sequence[EpochRecord]) -> str | None:
        y = self.data.val.y
        pred, proba = _predict(self.model, self.data.val.x)
        assert record.val_f1 == pytest.approx(f1_score(y, pred, average="macro", zero_division=0))
        assert record.val_balanced_accuracy == pytest.approx(balanced_accuracy_score(y, pred))
        if self.data.n_classes == 2:
            assert record.val_auc == pytest.approx(roc_auc_score(y, proba[:, 1]))
        else:
            assert record.val_auc is None and "val_auc" not in record.metrics()
        self.checked += 1
        return None


def _check_test(result: TrainResult) -> None:
    y = result.data.test.y
    pred, proba = _predict(result.model, result.data.test.x)   # the best checkpoint, as tested
    final = result.final_metrics()
    assert final["test_f1"] == pytest.approx(f1_score(y, pred, average="macro", zero_division=0))
    assert final["test_balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, pred))
    assert final["test_accuracy"] == pytest.approx(float((pred == y).mean()))
    if result.n_classes == 2:
        assert final["test_auc"] == pytest.approx(roc_auc_score(y, proba[:, 1]))
    else:
        assert "test_auc" not in final


def test_ten_classes_f1_and_balanced_accuracy_no_auc() -> None:
    checker = Checker()
    result = train_model(cfg(), [checker])
    assert checker.checked == 3
    assert set(result.history[0].metrics()) == set(EPOCH_METRICS)
    assert {"val_f1", "val_balanced_accuracy"} <= set(EPOCH_METRICS)
    _check_test(result)


def test_two_classes_add_auc() -> None:
    checker = Checker()
    result = train_model(cfg(dataset="breast_cancer"), [checker])
    assert checker.checked == 3
    assert set(result.history[-1].metrics()) == {*EPOCH_METRICS, *TWO_CLASS_METRICS}
    assert 0.5 < result.history[-1].val_auc <= 1.0   # type: ignore[operator]
    _check_test(result)


def test_class_scores_match_sklearn_with_unseen_and_unpredicted_classes() -> None:
    y = np.array([0, 0, 0, 1, 1, 2, 2, 2])
    pred = np.array([0, 0, 3, 1, 0, 2, 2, 0])   # class 3 is predicted but absent from y
    f1, balanced, auc = class_scores(y, pred, None, 4)
    assert f1 == pytest.approx(f1_score(y, pred, average="macro", zero_division=0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # sklearn warns that y_pred has a class y lacks
        assert balanced == pytest.approx(balanced_accuracy_score(y, pred))
    assert auc is None


def test_auc_only_with_both_classes_present() -> None:
    proba = np.array([0.1, 0.4, 0.35, 0.8])
    y = np.array([0, 0, 1, 1])
    assert class_scores(y, (proba > 0.5).astype(int), proba, 2)[2] == pytest.approx(roc_auc_score(y, proba))
    one_class = np.zeros(4, np.int64)
    assert not has_auc(one_class, 2) and class_scores(one_class, one_class, proba, 2)[2] is None
    assert not has_auc(np.array([0, 1, 2]), 3)
    nan = class_scores(y, y, np.array([0.1, math.nan, 0.2, 0.3]), 2)[2]
    assert nan is not None and math.isnan(nan)   # defined, but the outputs were not finite


def test_nonfinite_epoch_keeps_auc_column_for_two_classes() -> None:
    result = train_model(cfg(dataset="breast_cancer", optimizer="sgd", lr=50.0, epochs=5))
    assert result.status == "nonfinite" and len(result.history) > 1
    last = result.history[-1]
    assert math.isnan(last.train_loss)   # the record made when the training step blew up
    # it still names val_auc (as NaN), so every row of the run's metrics table has the same columns
    assert all(set(r.metrics()) == {*EPOCH_METRICS, *TWO_CLASS_METRICS} for r in result.history)
    assert last.val_auc is not None and math.isnan(last.val_auc)


def test_class_scores_equal_sklearn_on_random_predictions_with_ties() -> None:
    """class_scores re-implements sklearn's three metrics for speed: any drift from them fails here."""
    rng = np.random.default_rng(7)
    for case in range(60):
        classes = 2 if case % 2 else int(rng.integers(3, 12))
        n = int(rng.integers(5, 400))
        y = rng.integers(0, classes, n)
        if classes == 2:
            y[:2] = [0, 1]   # both present, so the AUC is defined
        pred = np.where(rng.random(n) < 0.6, y, rng.integers(0, classes, n))
        score = np.round(rng.random(n), 1) if classes == 2 else None   # rounding makes ties
        f1, balanced, auc = class_scores(y, pred, score, classes)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert f1 == pytest.approx(f1_score(y, pred, average="macro", zero_division=0))
            assert balanced == pytest.approx(balanced_accuracy_score(y, pred))
        if classes == 2:
            assert auc == pytest.approx(roc_auc_score(y, score))
        else:
            assert auc is None
