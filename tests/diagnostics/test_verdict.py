"""Unit tests for mlflow_tune.diagnostics: every rule on hand-made curves, plus the edge cases."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys

import pytest

from mlflow_tune.diagnostics.curves import LABELS, Curves, Diagnosis, advice_line
from mlflow_tune.diagnostics.rules import generalisation_loss, oscillations, training_progress
from mlflow_tune.diagnostics.verdict import diagnose, early_verdict

NAN = math.nan

# a healthy 10-class run: loss from near ln(10) to near 0, val loss flat at its minimum at the end
HEALTHY = Curves(
    train_loss=[1.9, 0.6, 0.3, 0.18, 0.12, 0.1, 0.09, 0.085, 0.083, 0.082],
    val_loss=[1.2, 0.5, 0.3, 0.22, 0.18, 0.16, 0.15, 0.15, 0.149, 0.15],
    train_accuracy=[0.55, 0.85, 0.92, 0.95, 0.96, 0.97, 0.975, 0.977, 0.978, 0.978],
    val_accuracy=[0.7, 0.88, 0.92, 0.94, 0.95, 0.955, 0.96, 0.96, 0.96, 0.96],
)


def test_module_imports_without_torch_or_mlflow() -> None:
    code = (
        "import sys; import mlflow_tune.diagnostics; "
        "assert 'torch' not in sys.modules and 'mlflow' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_curves_converts_sequences_none_and_strings() -> None:
    c = Curves(train_loss=[1, "0.5", None], val_accuracy=(0.5,))  # type: ignore[list-item]
    assert c.train_loss[:2] == (1.0, 0.5) and math.isnan(c.train_loss[2])
    assert c.val_accuracy == (0.5,) and c.lr == ()


def test_healthy_converged() -> None:
    d = diagnose(HEALTHY, n_classes=10)
    assert (d.label, d.detail) == ("healthy", "converged")
    assert d.advice == () and "ln(C)=2.3" in d.evidence


def test_nan_in_the_middle() -> None:
    d = diagnose(
        Curves(train_loss=[2.3, 1.5, NAN, NAN]), n_classes=10, params={"lr": "0.5", "grad_clip": "0"}
    )
    assert (d.label, d.detail) == ("nonconvergent", "nan")
    assert "epoch 2" in d.evidence and "1.5" in d.evidence
    assert d.advice[0] == "lower the learning rate 0.5 -> 0.05 (x0.1)"
    assert "clip gradients at global norm 5" in d.advice


def test_nan_at_epoch_0_and_inf_in_val() -> None:
    assert diagnose(Curves(train_loss=[NAN])).detail == "nan"
    d = diagnose(Curves(train_loss=[1.0, 0.5, 0.4], val_loss=[1.0, math.inf, 0.5]))
    assert d.detail == "nan" and "val_loss" in d.evidence and "epoch 1" in d.evidence


def test_diverged() -> None:
    d = diagnose(Curves(train_loss=[2.3, 4.0, 12.0, 40.0, 80.0]), n_classes=10)
    assert (d.label, d.detail) == ("nonconvergent", "diverged")
    assert "60" in d.evidence and "ln(C)=2.3" in d.evidence


def test_diverged_without_classes_uses_first_loss() -> None:
    d = diagnose(Curves(train_loss=[1.0, 2.0, 5.0, 9.0]))
    assert d.detail == "diverged" and "first train loss 1" in d.evidence


def test_stalled_at_chance_level() -> None:
    d = diagnose(
        Curves(train_loss=[2.35, 2.31, 2.30, 2.30, 2.30, 2.30]),
        n_classes=10,
        params={"lr": "1e-05", "optimizer": "sgd"},
    )
    assert (d.label, d.detail) == ("nonconvergent", "stalled")
    assert "chance loss" in d.evidence and "2.3" in d.evidence
    assert d.advice[0] == "raise the learning rate 1e-05 -> 0.1 (the usual for sgd): the loss barely moves"
    assert not any("clip" in a for a in d.advice)  # clipping cannot help tiny steps


def test_stalled_by_heavy_weight_decay_advises_less_l2_first() -> None:
    d = diagnose(
        Curves(train_loss=[0.7, 0.69, 0.69, 0.69]), n_classes=2, params={"weight_decay": 1.0, "lr": 0.01}
    )
    assert d.detail == "stalled" and d.advice[0].startswith("lower weight decay (L2) 1 -> 0.1")


def test_stalled_with_heavy_dropout_advises_less_dropout_first() -> None:
    d = diagnose(
        Curves(train_loss=[1.1, 1.09, 1.1, 1.1]), n_classes=3, params={"dropout": "0.9", "lr": "0.001"}
    )
    assert d.detail == "stalled" and d.advice[0].startswith("lower dropout 0.9 -> 0.7")


def test_constant_loss_without_classes_is_stalled() -> None:
    d = diagnose(Curves(train_loss=[0.5] * 6))
    assert (d.label, d.detail) == ("nonconvergent", "stalled") and "0.0%" in d.evidence


def test_constant_low_loss_with_classes_is_not_stalled() -> None:
    d = diagnose(Curves(train_loss=[0.01] * 6, val_loss=[0.02] * 6), n_classes=10)
    assert d.label == "healthy"


def test_oscillating() -> None:
    loss = [2.0, 1.0, 2.0, 0.9, 2.1, 1.0, 2.2, 1.1, 2.0, 1.5]
    d = diagnose(Curves(train_loss=loss), n_classes=10, params={"optimizer": "momentum", "momentum": "0.99"})
    assert (d.label, d.detail) == ("nonconvergent", "oscillating")
    assert "4 peak/trough pairs" in d.evidence
    assert "lower momentum 0.99 -> 0.9" in d.advice
    assert any(a.startswith("switch to an adaptive optimizer") for a in d.advice)


def test_oscillation_that_ends_at_its_best_is_not_flagged() -> None:
    loss = [2.0, 1.0, 1.5, 0.6, 1.0, 0.3, 0.5, 0.1, 0.08, 0.05]
    assert diagnose(Curves(train_loss=loss), n_classes=10).label == "healthy"


def test_overfit_generalisation_loss_and_gap() -> None:
    c = Curves(
        train_loss=[1.5, 0.8, 0.4, 0.2, 0.1, 0.05, 0.02],
        val_loss=[1.0, 0.6, 0.5, 0.55, 0.7, 0.9, 1.1],
        train_accuracy=[0.6, 0.8, 0.9, 0.95, 0.98, 1.0, 1.0],
        val_accuracy=[0.6, 0.75, 0.8, 0.8, 0.8, 0.8, 0.8],
    )
    d = diagnose(
        c, n_classes=10, params={"dropout": "0.0", "weight_decay": "0", "hidden_units": "512", "layers": 3}
    )
    assert (d.label, d.detail) == ("overfit", "high_variance")
    assert "epoch 2" in d.evidence and "+100%" in d.evidence and "gap 0.20" in d.evidence
    assert d.advice[0] == "raise dropout 0 -> 0.3"
    assert "early stopping on validation loss (best validation loss at epoch 2)" in d.advice
    assert "smaller model: hidden_units 512 -> 256" in d.advice


def test_overfit_by_gap_alone() -> None:
    c = Curves(train_accuracy=[0.7, 0.9, 0.99, 1.0, 1.0], val_accuracy=[0.65, 0.75, 0.78, 0.8, 0.8])
    d = diagnose(c, n_classes=3)
    assert d.label == "overfit" and "gap 0.20" in d.evidence


def test_overfit_loss_only() -> None:
    c = Curves(train_loss=[1.0, 0.5, 0.2, 0.1, 0.05, 0.02], val_loss=[1.0, 0.6, 0.6, 0.8, 1.0, 1.2])
    d = diagnose(c, n_classes=3)
    assert d.label == "overfit" and "GL +83%" in d.evidence


def test_small_val_loss_wiggle_is_not_overfitting() -> None:
    # the val loss doubles, but from 0.003 to 0.006 nats: the floor on E_opt keeps GL small
    c = Curves(
        train_loss=[0.5, 0.05, 0.01, 0.005, 0.003, 0.002],
        val_loss=[0.4, 0.02, 0.004, 0.003, 0.005, 0.006],
        train_accuracy=[0.8, 1, 1, 1, 1, 1],
        val_accuracy=[0.8, 1, 1, 1, 1, 1],
    )
    assert diagnose(c, n_classes=3).label == "healthy"


def test_underfit_high_bias() -> None:
    c = Curves(
        train_loss=[2.3, 1.6, 1.45, 1.42, 1.41, 1.40, 1.40, 1.40],
        val_loss=[2.2, 1.6, 1.46, 1.43, 1.42, 1.41, 1.41, 1.41],
        train_accuracy=[0.2, 0.4, 0.48, 0.5, 0.5, 0.5, 0.5, 0.5],
        val_accuracy=[0.2, 0.4, 0.47, 0.49, 0.5, 0.5, 0.5, 0.5],
    )
    d = diagnose(
        c,
        n_classes=10,
        params={
            "dropout": "0.7",
            "hidden_units": "8",
            "layers": "1",
            "epochs": "8",
            "lr": "0.001",
            "weight_decay": "0",
        },
    )
    assert (d.label, d.detail) == ("underfit", "high_bias")
    assert "1.4" in d.evidence and "0.61x" in d.evidence
    assert d.advice[:3] == (
        "lower dropout 0.7 -> 0.5",
        "more units: hidden_units 8 -> 32",
        "more layers: layers 1 -> 2",
    )
    assert (
        "train longer: epochs 8 -> 16" in d.advice
        and "raise the learning rate 0.001 -> 0.003 (x3)" in d.advice
    )


def test_underfit_still_improving_says_train_longer_first() -> None:
    c = Curves(train_loss=[2.3, 2.0, 1.8, 1.6, 1.4, 1.2], val_loss=[2.3, 2.0, 1.8, 1.6, 1.4, 1.2])
    d = diagnose(c, n_classes=10, params={"epochs": 6})
    assert (d.label, d.detail) == ("underfit", "still_improving")
    assert d.advice[0] == "train longer: epochs 6 -> 12" and "% above their lowest" in d.evidence


def test_underfit_depends_on_chance_level_not_one_accuracy() -> None:
    acc = [0.6, 0.75, 0.79, 0.8, 0.8, 0.8]
    c = Curves(train_accuracy=acc, val_accuracy=acc)
    assert diagnose(c, n_classes=2).label == "underfit"  # 0.8 is skill 0.6 above a coin flip
    assert diagnose(c, n_classes=20).label == "healthy"  # 0.8 of 20 classes is skill 0.79


def test_heavy_dropout_train_loss_is_read_with_val_loss() -> None:
    # train-mode loss inflated by dropout while the val loss is low: fit judged on the better of the two
    c = Curves(train_loss=[1.5, 1.0, 0.8, 0.75, 0.74, 0.74], val_loss=[1.0, 0.3, 0.15, 0.12, 0.11, 0.11])
    assert diagnose(c, n_classes=10).label == "healthy"


def test_healthy_still_improving() -> None:
    c = Curves(train_loss=[2.0, 1.0, 0.5, 0.3, 0.2, 0.15], val_loss=[1.8, 0.9, 0.5, 0.35, 0.28, 0.25])
    d = diagnose(c, n_classes=10, params={"epochs": "6"})
    assert (d.label, d.detail) == ("healthy", "still_improving")
    assert d.advice == ("train longer: epochs 6 -> 12",)


def test_missing_validation_metrics() -> None:
    d = diagnose(Curves(train_loss=HEALTHY.train_loss, train_accuracy=HEALTHY.train_accuracy), n_classes=10)
    assert d.label == "healthy" and "no validation curve" in d.evidence


def test_accuracy_only_and_loss_only() -> None:
    acc_only = Curves(train_accuracy=HEALTHY.train_accuracy, val_accuracy=HEALTHY.val_accuracy)
    assert diagnose(acc_only, n_classes=10).label == "healthy"
    loss_only = Curves(train_loss=HEALTHY.train_loss, val_loss=HEALTHY.val_loss)
    assert diagnose(loss_only, n_classes=10).label == "healthy"
    assert diagnose(loss_only).label == "healthy"  # no class count either


def test_accuracy_only_at_chance_is_stalled() -> None:
    d = diagnose(Curves(train_accuracy=[0.1, 0.11, 0.1, 0.1]), n_classes=10)
    assert d.detail == "stalled" and "chance 0.100" in d.evidence


def test_one_epoch_and_empty() -> None:
    d = diagnose(Curves(train_loss=[2.0], val_loss=[1.9]), n_classes=10)
    assert (d.label, d.detail) == ("unknown", "too_few_epochs") and "1 epoch" in d.evidence
    d = diagnose(Curves(lr=[0.1, 0.1]))
    assert (d.label, d.detail) == ("unknown", "missing_metrics") and "train_loss" in d.evidence


@pytest.mark.parametrize("n_classes", [None, 1, 2, 10])
@pytest.mark.parametrize(
    "curves",
    [
        Curves(),
        Curves(train_loss=[0.0, 0.0, 0.0]),
        Curves(val_loss=[-1.0, 2.0, 0.5]),
        Curves(train_accuracy=[1.0, 1.0, 1.0]),
        Curves(val_accuracy=[0.0, 0.0, 0.0]),
        Curves(train_loss=[1.0, 0.5], val_accuracy=[0.5, 0.6, 0.7, 0.8]),
        Curves(grad_norm=[NAN]),
    ],
)
def test_edge_cases_never_raise(curves: Curves, n_classes: int | None) -> None:
    d = diagnose(curves, n_classes=n_classes, planned_epochs=0, params={"lr": "oops", "epochs": None})
    assert d.label in (*LABELS, "unknown") and 0.0 <= d.confidence <= 1.0
    assert early_verdict(curves, n_classes=n_classes, stop_stalled=True) is None or d.label == "nonconvergent"


def test_planned_epochs_makes_an_early_stop_still_improving() -> None:
    loss = [2.3, 1.5, 1.45, 1.44, 1.44, 1.44, 1.44]
    c = Curves(train_loss=loss, val_loss=loss)
    assert diagnose(c, n_classes=10).detail == "high_bias"
    assert diagnose(c, n_classes=10, planned_epochs=100).detail == "still_improving"


def test_recurrent_model_advice() -> None:
    d = diagnose(Curves(train_loss=[2.3, NAN]), params={"model": "rnn", "lr": 0.01, "optimizer": "adam"})
    assert d.advice[0] == "lower the learning rate 0.01 -> 0.001 (x0.1)"
    assert d.advice[1].startswith("recurrent model")


def test_early_verdict() -> None:
    assert early_verdict(Curves(train_loss=[2.3, NAN])) is not None
    noisy_sgd = Curves(train_loss=[2.3, 2.6, 1.9, 2.4, 1.2])
    assert early_verdict(noisy_sgd, n_classes=10, stop_stalled=True) is None
    diverging = Curves(train_loss=[2.3, 5.0, 9.0, 30.0])
    d = early_verdict(diverging, n_classes=10)
    assert d is not None and d.detail == "diverged" and "30" in d.evidence
    stalled = Curves(train_loss=[2.31, 2.303, 2.302, 2.302, 2.302, 2.302])
    assert early_verdict(stalled, n_classes=10) is None
    s = early_verdict(stalled, n_classes=10, stop_stalled=True)
    assert s is not None and s.detail == "stalled"
    for k in range(1, len(HEALTHY.train_loss) + 1):
        assert (
            early_verdict(Curves(train_loss=HEALTHY.train_loss[:k]), n_classes=10, stop_stalled=True) is None
        )


def test_early_verdict_stall_needs_the_val_loss_at_chance_too() -> None:
    # heavy dropout: the train-mode loss hovers at ln(3) while the val loss is already falling
    c = Curves(
        train_loss=[1.22, 1.14, 1.105, 1.13, 1.147, 1.152],
        val_loss=[1.118, 1.11, 1.104, 1.098, 1.092, 1.086],
    )
    assert early_verdict(c, n_classes=3, stop_stalled=True) is None
    flat = Curves(train_loss=[1.1, 1.099, 1.099, 1.1, 1.099], val_loss=[1.1, 1.1, 1.099, 1.1, 1.1])
    assert early_verdict(flat, n_classes=3, stop_stalled=True) is not None


def test_oscillating_above_chance_is_not_called_stalled() -> None:
    loss = [1.5, 3.0, 1.4, 3.2, 1.6, 2.9, 1.5, 3.1, 2.8, 3.0]
    d = diagnose(Curves(train_loss=loss), n_classes=4)
    assert (d.label, d.detail) == ("nonconvergent", "oscillating")


def test_advice_line_and_to_dict() -> None:
    d = Diagnosis("underfit", "high_bias", 0.8, "e", tuple(f"advice number {i}" for i in range(60)))
    line = advice_line(d)
    assert len(line) <= 500 and line.startswith("advice number 0; advice number 1")
    out = d.to_dict()
    assert json.loads(json.dumps(out))["advice"][0] == "advice number 0"
    assert set(out) == {"label", "detail", "confidence", "evidence", "advice"}


def test_rule_helpers() -> None:
    gl, best = generalisation_loss([1.0, 0.5, 0.6, 0.7], floor=0.0)
    assert best == 1 and gl == pytest.approx(30.0)
    assert generalisation_loss([0.001, 0.002], floor=0.1)[0] == pytest.approx(-98.5)
    assert training_progress([1.0, 1.0, 1.0]) == 0.0
    assert training_progress([2.0, 1.0]) == pytest.approx(500.0)
    assert oscillations([0, 1, 0, 1, 0, 1, 0], amplitude=0.5) == 2
    assert oscillations([0, 1, 0, 1, 0, 1, 0], amplitude=1.5) == 0


def test_the_evidence_says_how_much_the_loss_still_moves_in_words() -> None:
    falling = [2.0, 1.6, 1.3, 1.1, 0.9, 0.75, 0.62, 0.5]
    c = Curves(train_loss=falling, val_loss=[v + 0.05 for v in falling],
               train_accuracy=[0.5 + 0.05 * i for i in range(8)], val_accuracy=[0.48 + 0.05 * i for i in range(8)])
    d = diagnose(c, n_classes=10)
    assert "per mille" not in d.evidence and "P5" not in d.evidence
    assert re.search(r"loss of the last 5 epochs [\d.]+% above their lowest", d.evidence), d.evidence


def test_a_flag_raised_near_its_threshold_says_its_evidence_is_weak() -> None:
    # moons with noise 0.25: the loss floor (0.19 nats = 0.27x ln 2) sits just above the underfit bar
    flat = [0.35, 0.25, 0.21, 0.2, 0.195, 0.19, 0.19, 0.19, 0.19, 0.19]
    curves = Curves(train_loss=flat, val_loss=[x + 0.005 for x in flat], train_accuracy=[0.9] * 10,
                    val_accuracy=[0.91] * 10)
    d = diagnose(curves, n_classes=2, planned_epochs=10)
    assert d.label == "underfit" and d.confidence < 0.6
    assert d.evidence.endswith(f"weak evidence (confidence {d.confidence:.2f}: near the rule's threshold)")
    far = Curves(train_loss=[x * 2.5 for x in flat], val_loss=[x * 2.5 for x in flat],
                 train_accuracy=[0.7] * 10, val_accuracy=[0.7] * 10)
    assert "weak evidence" not in diagnose(far, n_classes=2, planned_epochs=10).evidence
