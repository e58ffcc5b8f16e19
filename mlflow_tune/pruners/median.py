"""No pruning, and the median rule (pure: curves in, decision out).

Curves are per-trial lists of the search metric per epoch, already oriented so that lower
is better (the search negates accuracies). Each pruner answers: should trial `tid`, which
has just finished epoch `epoch`, stop now?
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

Curves = Mapping[int, Sequence[float]]


def best_until(curve: Sequence[float], epoch: int) -> float:
    values = [v for v in curve[: epoch + 1] if v == v]   # drop NaN
    return min(values) if values else float("inf")


@dataclass(frozen=True)
class NoPruner:
    def decides_at(self, epoch: int) -> bool:
        return False

    def prune(self, tid: int, epoch: int, curves: Curves) -> str | None:
        return None


@dataclass(frozen=True)
class MedianPruner:
    """Stop a trial whose best value up to epoch k is worse than the median of earlier trials at k.

    The rule of Google Vizier's median stopping (Golovin et al., 2017), as in Optuna's
    MedianPruner: comparing best-so-far values rather than the current one keeps a single
    noisy epoch from killing a good trial.
    """

    warmup: int = 2
    min_trials: int = 3
    sign: float = 1.0   # in messages: -1 shows a maximised metric (negated in the curves) as logged

    def __post_init__(self) -> None:
        if self.warmup < 0 or self.min_trials < 1:
            raise ValueError(f"MedianPruner needs warmup >= 0 and min_trials >= 1, got "
                             f"{self.warmup=}, {self.min_trials=}.")

    def decides_at(self, epoch: int) -> bool:
        """Whether `prune` can say yes after this epoch (so callers fetch other curves only then)."""
        return epoch >= self.warmup

    def prune(self, tid: int, epoch: int, curves: Curves) -> str | None:
        if epoch < self.warmup:
            return None
        others = [best_until(c, epoch) for t, c in curves.items() if t != tid and len(c) > epoch]
        if len(others) < self.min_trials:
            return None
        median = statistics.median(others)
        mine = best_until(curves[tid], epoch)
        if mine > median:
            return f"pruned by median rule after {epoch + 1} epochs: {self.sign * mine:.4g} worse than " \
                   f"median {self.sign * median:.4g} of {len(others)} trials"
        return None
