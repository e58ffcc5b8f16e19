"""Pruners are pure: oriented curves (lower is better) in, a reason string or None out."""

from __future__ import annotations

import pytest

from mlflow_tune.pruners.asha import AshaPruner, HyperbandPruner
from mlflow_tune.pruners.make import make_pruner
from mlflow_tune.pruners.median import MedianPruner, NoPruner, best_until

GOOD = [2.0, 1.0, 0.5, 0.3]


def test_best_until_ignores_nan_and_later_epochs() -> None:
    assert best_until([3.0, float("nan"), 1.0, 0.1], 2) == 1.0
    assert best_until([float("nan")], 0) == float("inf")


def test_median_prunes_a_trial_worse_than_the_median_of_earlier_trials() -> None:
    curves = {0: GOOD, 1: [2.1, 1.1, 0.6], 2: [1.9, 0.9, 0.4], 3: [2.3, 2.3]}
    reason = MedianPruner(warmup=1, min_trials=3).prune(3, 1, curves)
    assert reason is not None and "median" in reason and "after 2 epochs" in reason   # epoch index 1


def test_median_keeps_a_good_trial() -> None:
    curves = {0: GOOD, 1: [2.1, 1.1, 0.6], 2: [1.9, 0.9, 0.4], 3: [1.5, 0.8]}
    assert MedianPruner(warmup=1, min_trials=3).prune(3, 1, curves) is None


def test_median_waits_for_warmup_and_for_enough_trials() -> None:
    bad = {0: GOOD, 1: GOOD, 2: GOOD, 3: [9.0, 9.0, 9.0]}
    assert MedianPruner(warmup=2, min_trials=3).prune(3, 1, bad) is None          # still warming up
    assert MedianPruner(warmup=2, min_trials=3).prune(3, 2, bad) is not None
    assert MedianPruner(warmup=0, min_trials=4).prune(3, 2, bad) is None          # only 3 others
    short = {0: [1.0], 1: [1.0], 2: [1.0], 3: [9.0, 9.0]}       # the others never reached epoch 1
    assert MedianPruner(warmup=0, min_trials=1).prune(3, 1, short) is None


def test_median_uses_best_so_far_so_one_noisy_epoch_does_not_kill() -> None:
    curves = {0: [1.0, 0.8], 1: [1.0, 0.8], 2: [1.0, 0.8], 3: [0.5, 5.0]}
    assert MedianPruner(warmup=0, min_trials=3).prune(3, 1, curves) is None


def test_nan_curve_is_pruned() -> None:
    curves = {0: GOOD, 1: GOOD, 2: GOOD, 3: [float("inf"), float("nan")]}
    assert MedianPruner(warmup=0, min_trials=3).prune(3, 1, curves) is not None


def test_asha_rungs_are_geometric() -> None:
    asha = AshaPruner(min_epochs=1, reduction=3)
    assert [e + 1 for e in range(30) if asha.rung_epoch(e)] == [1, 3, 9, 27]
    asha2 = AshaPruner(min_epochs=2, reduction=2)
    assert [e + 1 for e in range(20) if asha2.rung_epoch(e)] == [2, 4, 8, 16]


def test_asha_keeps_the_top_third_at_a_rung_and_ignores_other_epochs() -> None:
    curves = {t: [float(t)] * 3 for t in range(6)}     # trial t has value t: 0 is best
    asha = AshaPruner(min_epochs=1, reduction=3)
    assert asha.prune(0, 2, curves) is None
    assert asha.prune(1, 2, curves) is None            # keep = 6 // 3 = 2: trials 0 and 1
    assert "ASHA" in (asha.prune(2, 2, curves) or "")
    assert asha.prune(5, 1, curves) is None            # epoch 2 is not a rung


def test_asha_with_a_single_trial_never_prunes() -> None:
    assert AshaPruner().prune(0, 0, {0: [5.0]}) is None


def test_make_pruner_and_validation() -> None:
    assert isinstance(make_pruner("none"), NoPruner)
    assert make_pruner("median", warmup=4, min_trials=2) == MedianPruner(4, 2)
    assert make_pruner("asha", warmup=0, reduction=2) == AshaPruner(1, 2)
    assert make_pruner("hyperband", warmup=1, reduction=3, horizon=27) == HyperbandPruner(1, 27, 3)
    with pytest.raises(ValueError, match=r"pruning='successive'.*hyperband"):
        make_pruner("successive")
    with pytest.raises(ValueError, match="warmup"):
        MedianPruner(warmup=-1)
    with pytest.raises(ValueError, match="reduction"):
        AshaPruner(reduction=1)


def test_hyperband_brackets_start_later_and_the_last_never_prunes() -> None:
    hyperband = HyperbandPruner(min_epochs=1, max_epochs=27, reduction=3)
    assert [b.min_epochs for b in hyperband.brackets()] == [1, 3, 9, 27]
    assert hyperband.weights() == (27, 12, 6, 4)     # Hyperband's n_s = ceil(4 / (s+1) * 3**s)
    assert [b.min_epochs for b in HyperbandPruner(1, None, 3).brackets()] == [1]   # epochs unknown: ASHA


def test_hyperband_spreads_a_short_search_over_every_bracket_in_proportion() -> None:
    hyperband = HyperbandPruner(1, 27, 3)
    first = [hyperband.bracket(t) for t in range(20)]
    assert set(first) == {0, 1, 2, 3}
    assert first.count(0) > first.count(1) > first.count(2) >= first.count(3) >= 1
    cycle = [hyperband.bracket(t) for t in range(49)]
    assert [cycle.count(b) for b in range(4)] == [27, 12, 6, 4]
    assert hyperband.bracket(3) == hyperband.bracket(3 + 49)


def test_hyperband_compares_a_trial_only_within_its_bracket() -> None:
    hyperband = HyperbandPruner(1, 27, 3)
    by_bracket: dict[int, list[int]] = {}
    for t in range(100):
        by_bracket.setdefault(hyperband.bracket(t), []).append(t)
    aggressive, later, full = by_bracket[0], by_bracket[1], by_bracket[3]
    # Bracket 0's trials are good (0.1); one bracket-1 trial is bad (5.0), the other bracket-1 trials worse.
    curves: dict[int, list[float]] = {t: [0.1] * 9 for t in aggressive[:6]}
    curves |= {later[0]: [5.0] * 9, later[1]: [6.0] * 9, later[2]: [7.0] * 9}
    assert hyperband.prune(later[0], 0, curves) is None      # epoch 1 is no rung of bracket 1
    assert hyperband.prune(later[0], 2, curves) is None      # best of its own bracket at rung 3
    reason = hyperband.prune(later[2], 2, curves)
    assert reason is not None and "Hyperband bracket 2/4" in reason
    curves[aggressive[6]] = [0.5] * 9                        # worst of bracket 0 at its rung 1
    assert "bracket 1/4" in (hyperband.prune(aggressive[6], 0, curves) or "")
    curves |= {t: [0.1] * 26 for t in full[:3]} | {full[3]: [9.0] * 26}
    assert not any(hyperband.prune(full[3], e, curves) for e in range(26))   # the hedge runs in full


def test_hyperband_as_a_tune_file_setting() -> None:
    from mlflow_tune.config.settings import SearchSettings
    from mlflow_tune.training.config import ConfigError

    assert SearchSettings(pruning="hyperband").pruning == "hyperband"
    with pytest.raises(ConfigError, match=r"hyperbnd.*did you mean 'hyperband'"):
        SearchSettings(pruning="hyperbnd")


@pytest.mark.parametrize("name", ["median", "asha"])
def test_a_reason_shows_a_maximised_metric_as_it_was_logged(name: str) -> None:
    # curves hold accuracies negated (lower is better); the reason must read 0.41, not -0.41
    accuracies = {0: [0.90, 0.95], 1: [0.91, 0.96], 2: [0.89, 0.94], 3: [0.40, 0.41]}
    curves = {t: [-v for v in c] for t, c in accuracies.items()}
    pruner = make_pruner(name, warmup=1, min_trials=3, reduction=2, horizon=8, sign=-1.0)
    reason = pruner.prune(3, 1, curves)
    assert reason is not None and "0.41" in reason and "-0." not in reason, reason
    assert "after 2 epochs" in reason, reason
    assert {b.sign for b in make_pruner("hyperband", horizon=8, sign=-1.0).brackets()} == {-1.0}
