"""Every piece of advice points the right way for the run's own values (issue 13, item 3)."""

from __future__ import annotations

import pytest

from mlflow_tune.diagnostics.advice import lr_position, nonconvergent_advice, overfit_advice, underfit_advice
from mlflow_tune.diagnostics.curves import Curves
from mlflow_tune.diagnostics.verdict import diagnose

STUCK = Curves(train_loss=[2.31, 2.305, 2.303, 2.302, 2.302, 2.302], val_loss=[2.303] * 6)


def _lr_advice(advice: tuple[str, ...]) -> list[str]:
    return [a for a in advice if "learning rate" in a]


def test_a_run_stalled_with_a_small_lr_for_momentum_sgd_is_told_to_raise_it_never_to_lower_it() -> None:
    # issue 13: 'nonconvergent stalled' with momentum SGD at 0.000578 was told 'lower ... -> 5.78e-05'
    d = diagnose(STUCK, n_classes=10, params={"optimizer": "momentum", "lr": "0.000578", "momentum": "0.9"})
    assert d.detail == "stalled"
    # more than a x10 step below the usual 0.01 for momentum SGD: straight to it
    assert _lr_advice(d.advice)[0] == "raise the learning rate 0.000578 -> 0.01 (the usual for momentum): " \
        "the loss barely moves"
    assert not any(a.startswith("lower the learning rate") for a in d.advice)
    assert any(a.startswith("switch to an adaptive optimizer: adam") for a in d.advice)


def test_a_run_stalled_with_a_large_lr_is_told_to_lower_it() -> None:
    d = diagnose(STUCK, n_classes=10, params={"optimizer": "adam", "lr": "0.1"})
    assert _lr_advice(d.advice) == ["lower the learning rate 0.1 -> 0.001 (the usual for adam)"]
    # within a step of the usual value, or the optimizer unknown: one x10 step
    assert nonconvergent_advice({"optimizer": "adam", "lr": "0.008"}, "diverged")[0] == \
        "lower the learning rate 0.008 -> 0.0008 (x0.1)"
    assert nonconvergent_advice({"optimizer": "sgd", "lr": "0.02"}, "stalled")[0] == \
        "raise the learning rate 0.02 -> 0.2 (x10): the loss barely moves"


def test_a_run_stalled_with_a_usual_lr_is_not_sent_either_way() -> None:
    d = diagnose(STUCK, n_classes=10, params={"optimizer": "adam", "lr": "0.001"})
    assert _lr_advice(d.advice) == [] and "check input scaling (standardise features) and the labels" in d.advice


@pytest.mark.parametrize("detail", ["nan", "diverged", "oscillating"])
def test_diverging_or_oscillating_runs_are_told_to_lower_the_lr(detail: str) -> None:
    advice = nonconvergent_advice({"optimizer": "sgd", "lr": "0.5"}, detail)
    assert advice[0] == "lower the learning rate 0.5 -> 0.05 (x0.1)"
    far = nonconvergent_advice({"optimizer": "sgd", "lr": "30"}, detail)   # x0.1 would still diverge
    assert far[0] == "lower the learning rate 30 -> 0.1 (the usual for sgd)"
    assert not any(a.startswith("raise the learning rate") for a in advice)


def test_tiny_batches_with_high_momentum_lower_the_momentum_and_raise_the_batch() -> None:
    advice = nonconvergent_advice({"optimizer": "momentum", "lr": "0.05", "momentum": "0.9", "batch_size": "4"},
                                  "oscillating")
    assert "lower momentum 0.9 -> 0.5 (batch size 4)" in advice and "raise batch size 4 -> 32" in advice


@pytest.mark.parametrize("dropout", ["0.5", "0.7", "0.9"])
def test_overfit_with_high_dropout_is_never_told_to_add_or_raise_dropout(dropout: str) -> None:
    advice = overfit_advice({"dropout": dropout, "weight_decay": "0.0001", "hidden_units": "256"}, 3)
    assert not any("dropout" in a for a in advice)
    assert advice[0] == "raise weight decay (L2) 0.0001 -> 0.001"


def test_overfit_with_little_or_unknown_dropout_raises_or_adds_it() -> None:
    assert overfit_advice({"dropout": "0.1"}, 3)[0] == "raise dropout 0.1 -> 0.3"
    assert overfit_advice({}, 3)[0] == "add dropout 0.5"
    # L2 already at PRACTICE.md's ceiling (1.0) is not raised further
    assert not any("weight decay" in a for a in overfit_advice({"dropout": "0.5", "weight_decay": "1.0"}, 3))


def test_underfit_lr_direction_follows_the_runs_own_lr() -> None:
    small = underfit_advice({"optimizer": "sgd", "lr": "0.001", "hidden_units": "64", "layers": "1"}, False)
    assert small[0] == "raise the learning rate 0.001 -> 0.003 (x3): small for this optimizer"
    large = underfit_advice({"optimizer": "adam", "lr": "0.05", "hidden_units": "64", "layers": "1"}, False)
    assert not any("learning rate" in a for a in large)
    usual = underfit_advice({"optimizer": "adam", "lr": "0.001"}, False)
    assert usual[-1] == "raise the learning rate 0.001 -> 0.003 (x3)"


def test_underfit_lowers_regularisation_only_where_there_is_some_and_trains_longer_when_improving() -> None:
    advice = underfit_advice({"dropout": "0.0", "weight_decay": "0.0", "epochs": "10", "hidden_units": "2048"}, True)
    assert advice[0] == "train longer: epochs 10 -> 20"
    assert not any(a.startswith("lower") for a in advice)          # nothing to lower
    assert not any(a.startswith("more units") for a in advice)     # 2048 units: more layers instead
    heavy = underfit_advice({"dropout": "0.7", "weight_decay": "0.1"}, False)
    assert heavy[:2] == ("lower dropout 0.7 -> 0.5", "lower weight decay (L2) 0.1 -> 0.01 (x0.1)")


def test_lr_position() -> None:
    assert [lr_position({"optimizer": o, "lr": lr}) for o, lr in
            (("momentum", 0.000578), ("adam", 0.1), ("sgd", 0.1), ("adadelta", 1.0), ("x", 1e-5))] == \
        ["low", "high", "usual", "usual", "low"]
    assert lr_position({}) == ""
