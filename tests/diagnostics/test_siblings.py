"""A trial judged against its siblings: far below the best of them is underfit, within the validation
set's noise is not."""

from __future__ import annotations

from mlflow_tune.diagnostics.changes import advice_change
from mlflow_tune.diagnostics.siblings import SIBLING_GAP, Sibling, below_siblings, is_score, margin

SIBS = [Sibling(0, 0.91, {"lr": 0.003, "hidden_units": 128}), Sibling(1, 0.90, {"lr": 0.001, "hidden_units": 64}),
        Sibling(2, 0.88, {"lr": 0.001, "hidden_units": 32})]


def test_a_trial_far_below_its_best_sibling_is_underfit_and_told_the_siblings_values() -> None:
    trial = Sibling(3, 0.62, {"lr": 0.0001, "hidden_units": 128})
    d = below_siblings(trial, [*SIBS, trial], "val_accuracy", n_val=360)
    assert d is not None and (d.label, d.detail) == ("underfit", "below_siblings")
    assert "0.62 ends 0.29 below the best of 3 sibling trials (trial 0: 0.91" in d.evidence
    assert d.advice == ("as the best sibling (trial 0, val_accuracy 0.91): learning rate 0.0001 -> 0.003",)
    assert advice_change(d.advice[0]) == {"lr": 0.003}   # `fix` can apply it
    assert d.confidence > 0.9


def test_a_gap_inside_the_validation_sets_noise_is_not_a_fault() -> None:
    trial = Sibling(3, 0.80, {"lr": 0.0001})
    best = Sibling(0, 0.92, {"lr": 0.003})
    siblings = [best, Sibling(1, 0.9, {}), Sibling(2, 0.9, {})]
    # 60 val rows: the difference of two accuracies near 0.92 has SE sqrt(2 * .92 * .08 / 60) = 0.05
    assert margin(0.92, 60) > 0.12 and below_siblings(trial, siblings, "val_accuracy", n_val=60) is None
    # the same 0.12 on 2,000 rows is far beyond the noise
    assert below_siblings(trial, siblings, "val_accuracy", n_val=2000) is not None
    # never below five points, whatever the rows: ten times the spread of retraining one configuration
    assert margin(0.999, 10**6) == SIBLING_GAP
    assert below_siblings(Sibling(3, 0.88, {}), siblings, "val_accuracy", n_val=10**6) is None


def test_too_few_siblings_or_a_metric_that_is_not_a_score_decide_nothing() -> None:
    trial = Sibling(3, 0.5, {})
    assert below_siblings(trial, [SIBS[0], SIBS[1], trial], "val_accuracy") is None   # 2 siblings
    assert is_score("val_accuracy", "max") and is_score("val_f1", "max") and is_score("eval_accuracy", "max")
    assert not is_score("val_loss", "min") and not is_score("reward", "max")
