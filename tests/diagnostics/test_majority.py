"""The majority-class rule: a run no better than always answering the most frequent class is never healthy."""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

import pytest

from mlflow_tune.diagnostics.curves import Curves
from mlflow_tune.diagnostics.guard import DiagnosisGuard
from mlflow_tune.diagnostics.rules import MAJORITY_MARGIN
from mlflow_tune.diagnostics.runs import diagnose_run
from mlflow_tune.diagnostics.verdict import diagnose
from mlflow_tune.training.config import TrainConfig
from mlflow_tune.training.loop import train_model

# A 95:5 binary run that answers the majority class throughout: its loss falls to the class entropy
# (0.2 nats, 0.29x ln 2) and then well below as the model grows confident, so the loss rules see a fit.
LOSS = [0.55, 0.3, 0.2, 0.15, 0.12, 0.1, 0.09, 0.085, 0.083, 0.082]
STUCK = Curves(train_loss=LOSS, val_loss=[x * 1.05 for x in LOSS], train_accuracy=[0.95] * 10,
               val_accuracy=[0.955] * 10)


def test_healthy_by_the_loss_rules_alone() -> None:
    assert diagnose(STUCK, n_classes=2).label == "healthy"   # what the rule is for


def test_no_better_than_majority_is_underfit() -> None:
    d = diagnose(STUCK, n_classes=2, majority_rate=0.955, params={"balance": "none", "class_weight": "none"})
    assert (d.label, d.detail) == ("underfit", "majority_class")
    assert "no better than the majority class" in d.evidence
    assert "val accuracy 0.955 vs majority class 0.955" in d.evidence
    assert d.confidence > 0.9
    advice = " ".join(d.advice)
    for fix in ("balance=oversample", "balance=batches", "class_weight=balanced", "val_f1"):
        assert fix in advice, fix


def test_margin_is_one_point() -> None:
    just_below = Curves(**{**_fields(STUCK), "val_accuracy": [0.955 + MAJORITY_MARGIN - 0.001] * 10})
    just_above = Curves(**{**_fields(STUCK), "val_accuracy": [0.955 + MAJORITY_MARGIN + 0.001] * 10})
    assert diagnose(just_below, n_classes=2, majority_rate=0.955).detail == "majority_class"
    assert diagnose(just_above, n_classes=2, majority_rate=0.955).label == "healthy"


def test_best_epoch_counts_not_the_last() -> None:
    once = Curves(**{**_fields(STUCK), "val_accuracy": [0.955, 0.99, *[0.955] * 8]})
    assert diagnose(once, n_classes=2, majority_rate=0.955).label == "healthy"


def test_balanced_accuracy_above_chance_clears_a_weighted_run() -> None:
    # class weights find the minority at the cost of majority hits: accuracy under the majority rate
    weighted = Curves(**{**_fields(STUCK), "val_accuracy": [0.93] * 10, "val_balanced_accuracy": [0.9] * 10})
    assert diagnose(weighted, n_classes=2, majority_rate=0.955).label == "healthy"
    at_chance = Curves(**{**_fields(weighted), "val_balanced_accuracy": [0.52] * 10})
    d = diagnose(at_chance, n_classes=2, majority_rate=0.955)
    assert d.detail == "majority_class" and "balanced accuracy 0.520 (chance 0.500)" in d.evidence


def test_advice_when_classes_are_already_balanced() -> None:
    d = diagnose(STUCK, n_classes=2, majority_rate=0.955, params={"balance": "oversample"})
    assert "features" in d.advice[0] and not any(a.startswith("oversample") for a in d.advice)
    assert any("val_f1" in a for a in d.advice)


def test_other_labels_keep_precedence_and_unknown_rate_changes_nothing() -> None:
    broken = Curves(train_loss=[0.7, 0.6, math.nan], val_accuracy=[0.5, 0.5, 0.5])
    assert diagnose(broken, n_classes=2, majority_rate=0.955).label == "nonconvergent"
    assert diagnose(STUCK, n_classes=2, majority_rate=None) == diagnose(STUCK, n_classes=2)
    assert diagnose(Curves(train_loss=LOSS), n_classes=2, majority_rate=0.955).label == "healthy"


def test_guard_compares_with_the_validation_split() -> None:
    # 100:1 synthetic data and L2: the net answers the majority class; labelled healthy before the rule
    config = TrainConfig(dataset="synthetic", n_classes=2, imbalance=100, lr=3e-3, weight_decay=0.01,
                         epochs=20, num_threads=1, hidden_units=16)
    guard = DiagnosisGuard()
    result = train_model(config, [guard])
    assert guard.majority_rate == pytest.approx(result.data.val.majority_rate)
    assert result.final_metrics()["val_majority_rate"] == pytest.approx(guard.majority_rate)
    assert result.diagnosis is not None
    assert (result.diagnosis.label, result.diagnosis.detail) == ("underfit", "majority_class")
    assert f"majority class {guard.majority_rate:.3f}" in result.diagnosis.evidence


def test_runs_read_back_use_the_logged_rate() -> None:
    series = {"train_loss": LOSS, "val_loss": [x * 1.05 for x in LOSS], "val_accuracy": [0.955] * 10}
    client = SimpleNamespace(get_metric_history=lambda run_id, key: [
        SimpleNamespace(step=i, timestamp=i, value=v) for i, v in enumerate(series[key])])
    metrics = {k: v[-1] for k, v in series.items()}
    run = SimpleNamespace(info=SimpleNamespace(run_id="r1", run_name="t"), data=SimpleNamespace(
        params={"epochs": "10"}, tags={"mlflow_tune.n_classes": "2"},
        metrics={**metrics, "val_majority_rate": 0.955}))
    assert diagnose_run(client, run, write=False).diagnosis.detail == "majority_class"
    run.data.metrics = metrics   # another tool's run: no rate logged, no rule
    assert diagnose_run(client, run, write=False).diagnosis.label == "healthy"


def _fields(c: Curves) -> dict[str, Any]:
    return {name: getattr(c, name) for name in ("train_loss", "val_loss", "train_accuracy", "val_accuracy",
                                                "val_balanced_accuracy")}
