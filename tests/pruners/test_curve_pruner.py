"""The learning-curve pruner on hand-made curves (oriented: lower is better)."""

from __future__ import annotations

import math
import random

import pytest

from mlflow_tune.config.settings import SearchSettings
from mlflow_tune.pruners.curve import CurvePruner
from mlflow_tune.pruners.curvefit import fit_at
from mlflow_tune.pruners.make import make_pruner
from mlflow_tune.training.config import ConfigError
from mlflow_tune.trials.pruning import PruningCallback
from mlflow_tune.trials.records import Board, TrialSpec

EPOCHS = 30


def accuracy(top: float, start: float, rate: float, epochs: int) -> list[float]:
    return [top - (top - start) * math.exp(-rate * t) for t in range(1, epochs + 1)]


def negated(values: list[float]) -> list[float]:
    return [-v for v in values]


FINISHED = negated(accuracy(0.85, 0.3, 0.3, EPOCHS))          # a trial that ran all epochs: 0.85
HOPELESS = negated(accuracy(0.35, 0.30, 0.8, 6))               # flat near 0.35 after 6 epochs
SLOW = negated(accuracy(0.95, 0.10, 0.08, 8))                  # 0.50 at epoch 8, 0.88 by epoch 30


def test_a_clearly_hopeless_curve_is_stopped() -> None:
    reason = CurvePruner(4, EPOCHS).prune(1, 5, {0: FINISHED, 1: HOPELESS})
    assert reason is not None and "learning curve" in reason and "after 6 epochs" in reason   # epoch index 5


def test_three_points_are_enough_to_stop_the_hopeless_and_keep_the_slow_starter() -> None:
    assert CurvePruner().min_epochs == 3 and make_pruner("curve", warmup=2, horizon=EPOCHS).min_epochs == 3
    assert CurvePruner(3, EPOCHS).prune(1, 2, {0: FINISHED, 1: HOPELESS}) is not None
    assert CurvePruner(3, EPOCHS).prune(1, 2, {0: FINISHED, 1: SLOW}) is None
    assert CurvePruner(3, EPOCHS).prune(1, 1, {0: FINISHED, 1: HOPELESS}) is None   # two points: no fit


def test_a_trial_ahead_of_the_best_trial_at_the_same_epoch_is_kept_however_flat() -> None:
    # The recorded case: plateaued after 3 epochs, then the learning-rate decay lifted it to 0.972.
    best = negated([0.828, 0.899, 0.904, *accuracy(0.9673, 0.904, 0.2, EPOCHS - 3)])
    plateau = negated([0.886, 0.916, 0.913])
    assert CurvePruner(3, EPOCHS).prune(1, 2, {0: best, 1: plateau}) is None
    reason = CurvePruner(3, EPOCHS, behind_only=False).prune(1, 2, {0: best, 1: plateau})
    assert reason is not None and "worse than -0.96" in reason   # the extrapolation alone stops it
    behind = negated([0.800, 0.850, 0.848])                         # behind the best at epoch 3
    assert CurvePruner(3, EPOCHS).prune(1, 2, {0: best, 1: behind}) is not None
    # The second recorded case: 0.001 behind the leader after 6 epochs, then 0.952 against its 0.933.
    leader = negated([0.802, 0.843, 0.861, 0.874, 0.876, 0.883, *accuracy(0.9332, 0.883, 0.2, EPOCHS - 6)])
    close = negated([0.776, 0.846, 0.865, 0.882, 0.879, 0.870])
    assert CurvePruner(3, EPOCHS).prune(1, 5, {0: leader, 1: close}) is None
    assert CurvePruner(3, EPOCHS, behind_only=False).prune(1, 5, {0: leader, 1: close}) is not None


def test_a_slow_starter_that_will_overtake_is_kept() -> None:
    assert max(-v for v in SLOW) < 0.85 - 0.3   # far below the best so far: median or ASHA would cut it
    assert CurvePruner(4, EPOCHS).prune(1, 7, {0: FINISHED, 1: SLOW}) is None


def test_too_few_points_never_stop() -> None:
    pruner = CurvePruner(4, EPOCHS)
    for epoch in range(3):
        assert not pruner.decides_at(epoch)
        assert pruner.prune(1, epoch, {0: FINISHED, 1: HOPELESS[: epoch + 1]}) is None
    # NaN epochs do not count as points either
    gappy = [HOPELESS[0], math.nan, math.inf, HOPELESS[3], HOPELESS[4]]
    assert pruner.prune(1, 4, {0: FINISHED, 1: gappy}) is None


def test_nothing_is_stopped_before_a_trial_has_run_all_epochs() -> None:
    running = FINISHED[:10]   # the only other trial is still running
    assert CurvePruner(4, EPOCHS).prune(1, 5, {0: running, 1: HOPELESS}) is None


def test_noisy_and_degenerate_curves_do_not_crash_the_fit() -> None:
    rng = random.Random(0)
    for _ in range(30):
        noisy = [rng.uniform(-1.0, 1.0) for _ in range(rng.randint(3, 12))]
        for predicted, residual in fit_at(noisy, EPOCHS):
            assert math.isfinite(predicted) and math.isfinite(residual)
        CurvePruner(4, EPOCHS).prune(1, len(noisy) - 1, {0: FINISHED, 1: noisy})
    assert fit_at([0.5] * 6, EPOCHS) and fit_at([math.inf] * 6, EPOCHS) == []
    rising = [0.1 * t for t in range(6)]   # getting worse: flat at best, so judged by its best so far
    assert CurvePruner(4, EPOCHS).prune(1, 5, {0: [-1.0] * EPOCHS, 1: rising}) is not None


def test_a_loss_curve_min_metric_is_judged_the_same_way() -> None:
    finished = [0.4 + 2.0 * math.exp(-0.3 * t) for t in range(1, EPOCHS + 1)]
    flat = [2.0 + 0.1 * math.exp(-t) for t in range(1, 7)]
    falling = [0.2 + 3.0 * math.exp(-0.1 * t) for t in range(1, 7)]   # 2.0 now, 0.35 by epoch 30
    assert CurvePruner(4, EPOCHS).prune(1, 5, {0: finished, 1: flat}) is not None
    assert CurvePruner(4, EPOCHS).prune(1, 5, {0: finished, 1: falling}) is None


@pytest.mark.parametrize("mode", ["max", "min"])
def test_the_callback_orients_max_and_min_metrics(mode: str) -> None:
    metric = "val_accuracy" if mode == "max" else "val_loss"
    board = Board()
    good, bad = accuracy(0.85, 0.3, 0.3, EPOCHS), accuracy(0.35, 0.30, 0.8, EPOCHS)
    if mode == "min":   # a loss: the good trial goes low
        good, bad = [1 - v for v in good], [1 - v for v in bad]

    def spec(tid: int) -> TrialSpec:
        return TrialSpec(tid, f"run{tid}", "", {"epochs": EPOCHS}, {}, metric=metric, mode=mode,
                         pruning="curve")

    first = PruningCallback(spec(0), board)
    assert all(first.observe(v) is None for v in good)   # nothing finished before it: never stopped
    second = PruningCallback(spec(1), board)
    reasons = [second.observe(v) for v in bad[:6]]
    assert reasons[:2] == [None] * 2 and reasons[2] is not None   # decided from the third epoch (warmup 2)
    third = PruningCallback(spec(2), board)
    assert all(third.observe(v) is None for v in good[:8])


def test_curve_is_a_valid_choice_and_named_in_the_error() -> None:
    assert isinstance(make_pruner("curve", warmup=2, horizon=EPOCHS), CurvePruner)
    assert SearchSettings(pruning="curve").pruning == "curve"
    with pytest.raises((ConfigError, ValueError), match="curve"):
        SearchSettings(pruning="curves")
    with pytest.raises(ValueError, match="min_epochs"):
        CurvePruner(2, EPOCHS)


def test_no_trial_is_pruned_after_its_last_epoch() -> None:
    # stopping after the last epoch saves nothing, and would call a finished trial pruned
    board = Board()
    for tid in range(3):
        others = PruningCallback(TrialSpec(tid, f"run{tid}", "", {"epochs": 3}, {}, pruning="median"), board)
        assert all(others.observe(v) is None for v in (1.0, 0.5, 0.2))
    worst = PruningCallback(TrialSpec(3, "run3", "", {"epochs": 3}, {}, pruning="median",
                                      pruning_warmup=0), board)
    assert worst.observe(1.5) is not None                           # before its last epoch: pruned
    last = PruningCallback(TrialSpec(4, "run4", "", {"epochs": 2}, {}, pruning="median", pruning_warmup=1),
                           board)
    assert [last.observe(v) for v in (1.5, 1.4)] == [None, None]     # its 2nd epoch is its last
