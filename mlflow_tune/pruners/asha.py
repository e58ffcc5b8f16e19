"""Successive halving (ASHA) and Hyperband's brackets of it (pure: curves in, decision out).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

from mlflow_tune.pruners.median import Curves, best_until


@dataclass(frozen=True)
class AshaPruner:
    """Asynchronous successive halving (Li et al., 2020): rungs at epochs warmup * eta**i.

    A trial reaching a rung continues only if its best-so-far value is among the top 1/eta of
    all trials that reached that rung so far; with fewer than eta trials there, only the best
    continues (the same convention as Optuna's SuccessiveHalvingPruner).
    """

    min_epochs: int = 1
    reduction: int = 3
    sign: float = 1.0   # in messages: -1 shows a maximised metric (negated in the curves) as logged

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
            return f"pruned by ASHA after {epoch + 1} epochs: {self.sign * mine:.4g} not in the top {keep} " \
                   f"of {len(values)} trials"
        return None


MAX_BRACKETS = 4   # a search of a few dozen trials cannot fill more (the 5th would get ~2% of them)


@functools.cache
def _round_robin(weights: tuple[int, ...]) -> tuple[int, ...]:
    """One cycle of smooth weighted round-robin: a short search still sees every bracket, in proportion."""
    credit, order = [0] * len(weights), []
    for _ in range(sum(weights)):
        credit = [c + w for c, w in zip(credit, weights, strict=True)]
        chosen = max(range(len(weights)), key=lambda b: (credit[b], -b))
        credit[chosen] -= sum(weights)
        order.append(chosen)
    return tuple(order)


@dataclass(frozen=True)
class HyperbandPruner:
    """Hyperband (Li et al., 2018) run asynchronously: brackets of ASHA with later first rungs.

    Bracket b's first rung is at `min_epochs * reduction**b`; the last bracket's first rung is at
    or past `max_epochs`, so its trials always run in full: the hedge Hyperband adds to successive
    halving for curves that start slow. Each trial belongs to one bracket, by its number, in the
    proportions of Hyperband's brackets (the most aggressive bracket gets the most trials), and is
    compared only with the trials of its bracket, as in Optuna's HyperbandPruner. Without
    `max_epochs` (epochs unknown), there is one bracket: plain ASHA.
    """

    min_epochs: int = 1
    max_epochs: int | None = None
    reduction: int = 3
    sign: float = 1.0

    def __post_init__(self) -> None:
        if self.min_epochs < 1 or self.reduction < 2 or (self.max_epochs is not None and self.max_epochs < 1):
            raise ValueError(f"HyperbandPruner needs min_epochs >= 1, max_epochs >= 1 and reduction >= 2, got "
                             f"{self.min_epochs=}, {self.max_epochs=}, {self.reduction=}.")

    def brackets(self) -> list[AshaPruner]:
        """At most MAX_BRACKETS that prune, then one whose first rung is the last epoch (it never prunes)."""
        if self.max_epochs is None:
            return [AshaPruner(self.min_epochs, self.reduction, self.sign)]
        pruning = [AshaPruner(self.min_epochs * self.reduction ** b, self.reduction, self.sign)
                   for b in range(MAX_BRACKETS)
                   if self.min_epochs * self.reduction ** b < self.max_epochs]
        return [*pruning, AshaPruner(self.max_epochs, self.reduction, self.sign)]

    def weights(self) -> tuple[int, ...]:
        """Trials per bracket in one Hyperband round: ceil(s_max+1 / (s+1) * reduction**s), s = s_max - b."""
        top = len(self.brackets()) - 1
        return tuple(math.ceil((top + 1) / (top - b + 1) * self.reduction ** (top - b)) for b in range(top + 1))

    def bracket(self, tid: int) -> int:
        weights = self.weights()
        return _round_robin(weights)[tid % sum(weights)]

    def decides_at(self, epoch: int) -> bool:
        return any(asha.rung_epoch(epoch) for asha in self.brackets())

    def prune(self, tid: int, epoch: int, curves: Curves) -> str | None:
        if self.max_epochs is not None and epoch + 1 >= self.max_epochs:
            return None
        brackets, order = self.brackets(), _round_robin(self.weights())
        mine = order[tid % len(order)]
        same = {t: c for t, c in curves.items() if order[t % len(order)] == mine}
        reason = brackets[mine].prune(tid, epoch, same)
        return reason and reason.replace("by ASHA", f"by Hyperband bracket {mine + 1}/{len(brackets)}")
