"""Stop bad trials early, across trials, by epoch (pure: curves in, decision out).

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
            return f"pruned by median rule at epoch {epoch}: {mine:.4g} worse than median {median:.4g} " \
                   f"of {len(others)} trials"
        return None


@dataclass(frozen=True)
class AshaPruner:
    """Asynchronous successive halving (Li et al., 2020): rungs at epochs warmup * eta**i.

    A trial reaching a rung continues only if its best-so-far value is among the top 1/eta of
    all trials that reached that rung so far; with fewer than eta trials there, only the best
    continues (the same convention as Optuna's SuccessiveHalvingPruner).
    """

    min_epochs: int = 1
    reduction: int = 3

    def __post_init__(self) -> None:
        if self.min_epochs < 1 or self.reduction < 2:
            raise ValueError(f"AshaPruner needs min_epochs >= 1 and reduction >= 2, got "
                             f"{self.min_epochs=}, {self.reduction=}.")

    def decides_at(self, epoch: int) -> bool:
        return self.rung_epoch(epoch)

    def rung_epoch(self, epoch: int) -> bool:
        rung = self.min_epochs
        while rung <= epoch + 1:
            if rung == epoch + 1:
                return True
            rung *= self.reduction
        return False

    def prune(self, tid: int, epoch: int, curves: Curves) -> str | None:
        if not self.rung_epoch(epoch):
            return None
        values = sorted(best_until(c, epoch) for c in curves.values() if len(c) > epoch)
        if len(values) < 2:
            return None
        keep = max(1, len(values) // self.reduction)
        mine = best_until(curves[tid], epoch)
        if mine > values[keep - 1]:
            return f"pruned by ASHA at rung epoch {epoch + 1}: {mine:.4g} not in the top {keep} " \
                   f"of {len(values)} trials"
        return None


Pruner = NoPruner | MedianPruner | AshaPruner


def make_pruner(name: str, *, warmup: int = 2, min_trials: int = 3, reduction: int = 3) -> Pruner:
    if name == "median":
        return MedianPruner(warmup, min_trials)
    if name == "asha":
        return AshaPruner(max(1, warmup), reduction)
    if name == "none":
        return NoPruner()
    raise ValueError(f"pruning={name!r} is not valid; choose one of: none, median, asha.")
