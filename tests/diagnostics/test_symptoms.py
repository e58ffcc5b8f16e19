"""Issue 13's diagnosis fixes, each on hand-made curves shaped like the runs that fooled the rules."""

from __future__ import annotations

import math

from mlflow_tune.diagnostics.curves import Curves
from mlflow_tune.diagnostics.rules import relative_oscillations
from mlflow_tune.diagnostics.verdict import diagnose

LN10 = math.log(10)


def test_val_loss_rising_far_above_its_minimum_while_train_falls_is_overfit_though_val_accuracy_holds() -> None:
    # the promoted 'healthy converged' winner: val loss dips to 0.084, ends near 0.21
    curves = Curves(
        train_loss=[0.9, 0.3, 0.12, 0.06, 0.035, 0.022, 0.015, 0.011, 0.009, 0.008],
        val_loss=[0.259, 0.149, 0.187, 0.084, 0.222, 0.195, 0.231, 0.204, 0.217, 0.208],
        train_accuracy=[0.8, 0.92, 0.96, 0.98, 0.99, 0.995, 0.997, 0.998, 0.999, 0.999],
        val_accuracy=[0.93, 0.95, 0.95, 0.97, 0.95, 0.96, 0.95, 0.96, 0.96, 0.96],   # holds: gap 0.04
    )
    d = diagnose(curves, n_classes=10)
    assert (d.label, d.detail) == ("overfit", "high_variance"), d
    assert "epoch 3" in d.evidence
    # the same val loss with the train loss flat (not falling) is no loss-only overfit
    flat = Curves(train_loss=[0.2] * 10, val_loss=curves.val_loss, train_accuracy=curves.train_accuracy,
                  val_accuracy=curves.val_accuracy)
    assert diagnose(flat, n_classes=10).label != "overfit"


def test_a_run_that_spikes_then_settles_at_chance_is_never_healthy() -> None:
    # a huge first loss, then ln(C) and accuracy 1/C: it ended far below its start, yet learned nothing
    spike = [40.0, 9.0, 2.6, 2.31, 2.303, 2.302, 2.303, 2.302]
    curves = Curves(train_loss=spike, val_loss=[30.0, 5.0, 2.4, 2.305, 2.303, 2.303, 2.302, 2.303],
                    train_accuracy=[0.1, 0.1, 0.11, 0.1, 0.1, 0.1, 0.1, 0.1],
                    val_accuracy=[0.1, 0.09, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1])
    d = diagnose(curves, n_classes=10)
    assert d.label == "nonconvergent" and d.detail == "stalled", d
    # the val loss at chance with a lower train loss (a collapsed classifier) still counts ...
    collapsed = Curves(train_loss=[2.0, 1.5, 1.2, 1.0, 0.9, 0.9, 0.9, 0.9], val_loss=curves.val_loss,
                       val_accuracy=curves.val_accuracy)
    d = diagnose(collapsed, n_classes=10)
    assert d.label == "nonconvergent" and "chance level" in d.evidence, d
    # ... but heavy dropout (train-mode loss near chance, val loss and accuracy fine) is not chance
    dropout = Curves(train_loss=[2.3, 2.2, 2.15, 2.1, 2.08, 2.07, 2.06, 2.06],
                     val_loss=[1.5, 0.9, 0.6, 0.45, 0.4, 0.38, 0.37, 0.37],
                     val_accuracy=[0.6, 0.75, 0.85, 0.88, 0.9, 0.9, 0.91, 0.91])
    assert "chance level" not in diagnose(dropout, n_classes=10).evidence


def test_ending_at_the_majority_rate_with_chance_loss_is_chance_level() -> None:
    curves = Curves(train_loss=[0.72, 0.70, 0.69, 0.69, 0.69, 0.69], val_loss=[0.70, 0.69, 0.69, 0.69, 0.69, 0.69],
                    val_accuracy=[0.6, 0.6, 0.6, 0.6, 0.6, 0.6])
    d = diagnose(curves, n_classes=2, majority_rate=0.6)
    assert (d.label, d.detail) == ("nonconvergent", "stalled")
    # only the val loss at chance (train loss logged lower): the chance rule names it
    d = diagnose(Curves(train_loss=[0.6, 0.5, 0.45, 0.4, 0.4, 0.4], val_loss=curves.val_loss,
                        val_accuracy=curves.val_accuracy), n_classes=2, majority_rate=0.6)
    assert d.label == "nonconvergent" and "0.600 for always answering one class" in d.evidence, d


def test_a_model_no_better_than_the_majority_class_is_flagged() -> None:
    # 95:5 data: a loss far below ln 2 (the class entropy), accuracy exactly the majority rate
    curves = Curves(train_loss=[0.4, 0.22, 0.2, 0.2, 0.2, 0.2], val_loss=[0.3, 0.21, 0.2, 0.2, 0.2, 0.2],
                    train_accuracy=[0.95] * 6, val_accuracy=[0.95] * 6)
    d = diagnose(curves, n_classes=2, majority_rate=0.95)
    assert (d.label, d.detail) == ("underfit", "majority_class")


def test_val_accuracy_swinging_10_to_30_points_is_oscillating_even_when_the_train_loss_is_smooth() -> None:
    curves = Curves(
        train_loss=[1.5, 0.9, 0.7, 0.6, 0.5, 0.45, 0.4, 0.37, 0.35, 0.33],
        val_loss=[1.2, 0.8, 1.6, 0.7, 1.9, 0.6, 1.4, 0.65, 1.7, 0.7],
        train_accuracy=[0.5, 0.7, 0.78, 0.82, 0.85, 0.87, 0.88, 0.89, 0.9, 0.9],
        val_accuracy=[0.6, 0.75, 0.5, 0.8, 0.55, 0.82, 0.6, 0.8, 0.52, 0.8],
    )
    d = diagnose(curves, n_classes=10)
    assert (d.label, d.detail) == ("nonconvergent", "oscillating"), d
    assert "val accuracy" in d.evidence and "val loss" in d.evidence
    # swings measured against the level: 0.08 <-> 0.22 counts, 1.00 <-> 1.10 does not
    assert relative_oscillations([0.2, 0.08, 0.22, 0.09, 0.21, 0.1], 0.5, 0.01) == 2
    assert relative_oscillations([1.1, 1.0, 1.1, 1.0, 1.1, 1.0], 0.5, 0.01) == 0


def test_a_budget_cut_short_while_the_loss_still_falls_is_underfit_train_longer_not_stalled() -> None:
    curves = Curves(train_loss=[2.30, 2.24, 2.17, 2.10], val_loss=[2.29, 2.22, 2.15, 2.08],
                    train_accuracy=[0.12, 0.2, 0.28, 0.33], val_accuracy=[0.13, 0.22, 0.3, 0.35])
    d = diagnose(curves, n_classes=10, params={"epochs": "4", "lr": "0.001", "optimizer": "sgd"})
    assert (d.label, d.detail) == ("underfit", "still_improving"), d
    assert d.advice[0] == "train longer: epochs 4 -> 8"
    # the same level, flat: stalled
    flat = Curves(train_loss=[2.30, 2.299, 2.298, 2.297, 2.297], val_loss=[2.3, 2.3, 2.299, 2.299, 2.298])
    assert diagnose(flat, n_classes=10).detail == "stalled"


def test_an_explosion_that_settles_back_at_chance_is_stalled_not_train_longer() -> None:
    """Seen on the Lightning example (Adam lr 0.15, 10 classes): the first epoch's loss is above
    chance and falls back to ln(10); the fall is recovery, not learning. Was underfit/still_improving
    with "train longer"."""
    curves = Curves(train_loss=[2.767, 2.314, 2.312], val_loss=[2.317, 2.309, 2.306],
                    val_accuracy=[0.102, 0.102, 0.102])
    d = diagnose(curves, n_classes=10, params={"lr": 0.145, "optimizer": "adam"})
    assert (d.label, d.detail) == ("nonconvergent", "stalled"), d
    assert not any(a.startswith("train longer") for a in d.advice), d.advice
    # the same fall, but below chance, is a budget cut short
    cut = diagnose(Curves(train_loss=[2.30, 2.10, 1.95], val_loss=[2.28, 2.12, 1.99]), n_classes=10)
    assert (cut.label, cut.detail) == ("underfit", "still_improving"), cut


def test_validation_swings_are_judged_against_the_validation_sets_own_noise() -> None:
    """Issue 25: a healthy run on a small validation set (60 rows: an accuracy near 0.8 carries a
    standard error of 0.05) swings 10-12 points between epochs by sampling alone; on 2,000 rows the
    same swings are the model's own instability."""
    train = [1.2, 0.8, 0.6, 0.5, 0.45, 0.42, 0.40, 0.39, 0.38, 0.37]
    val = [1.2, 0.9, 0.75, 0.7, 0.68, 0.66, 0.66, 0.65, 0.65, 0.65]
    acc = [0.55, 0.72, 0.83, 0.71, 0.83, 0.72, 0.84, 0.73, 0.83, 0.82]
    curves = Curves(train_loss=train, val_loss=val, val_accuracy=acc)
    small = diagnose(curves, n_classes=3, n_val=60)
    assert small.detail != "oscillating", small
    large = diagnose(curves, n_classes=3, n_val=2000)
    assert (large.label, large.detail) == ("nonconvergent", "oscillating"), large
    assert "val accuracy: " in large.evidence
    assert diagnose(curves, n_classes=3).detail == "oscillating"   # size unknown: the fixed 10 points


def test_an_explosion_that_recovers_only_part_way_is_diverged_not_underfit() -> None:
    # Adagrad at lr 10: the train loss peaks at 244 nats in epoch 2, then falls to 0.34 ln C and
    # stays there (val accuracy 0.71 where the task allows 0.98): unstable, not too small a model
    train = [3.1, 60.0, 244.0, 40.0, 5.0, 1.2, 0.95, 0.86, 0.82, 0.80, 0.79, 0.79]
    curves = Curves(train_loss=train, val_loss=[2.5, 30.0, 90.0, 12.0, 2.0, 1.0, 0.9, 0.85, 0.82, 0.8, 0.8, 0.79],
                    train_accuracy=[0.3, 0.2, 0.1, 0.3, 0.5, 0.6, 0.66, 0.69, 0.7, 0.7, 0.71, 0.71],
                    val_accuracy=[0.35, 0.2, 0.1, 0.3, 0.55, 0.64, 0.68, 0.7, 0.7, 0.71, 0.71, 0.71])
    d = diagnose(curves, n_classes=10, planned_epochs=12)
    assert (d.label, d.detail) == ("nonconvergent", "diverged"), d
    assert "exploded to 244" in d.evidence and "epoch 2" in d.evidence
    assert d.advice[0].startswith("lower the learning rate")
    # the same end without the explosion is a poor fit (underfit), and a spike that recovers fully is healthy
    calm = Curves(train_loss=[3.1, 2.0, 1.5, 1.2, 1.0, 0.95, 0.9, 0.86, 0.82, 0.80, 0.79, 0.79],
                  val_loss=[2.5, 2.0, 1.6, 1.3, 1.1, 1.0, 0.9, 0.85, 0.82, 0.8, 0.8, 0.79],
                  train_accuracy=curves.train_accuracy, val_accuracy=curves.val_accuracy)
    assert diagnose(calm, n_classes=10, planned_epochs=12).label == "underfit"
    healed = Curves(train_loss=[3.1, 60.0, 9.0, 1.0, 0.4, 0.2, 0.12, 0.1, 0.09, 0.085, 0.08, 0.08],
                    val_loss=[2.5, 30.0, 5.0, 0.9, 0.4, 0.2, 0.14, 0.12, 0.11, 0.1, 0.1, 0.1],
                    train_accuracy=[0.3, 0.2, 0.5, 0.75, 0.9, 0.95, 0.96, 0.97, 0.97, 0.97, 0.98, 0.98],
                    val_accuracy=[0.35, 0.2, 0.5, 0.75, 0.9, 0.94, 0.95, 0.96, 0.96, 0.96, 0.96, 0.96])
    assert diagnose(healed, n_classes=10, planned_epochs=12).label == "healthy"
