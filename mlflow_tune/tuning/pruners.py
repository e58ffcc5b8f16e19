"""Stop bad trials early, across trials, by epoch (pure: curves in, decision out).

Curves are per-trial lists of the search metric per epoch, already oriented so that lower
is better (the search negates accuracies). Each pruner answers: should trial `tid`, which
has just finished epoch `epoch`, stop now?
"""

from __future__ import annotations

import functools
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

Curves = Mapping[int, Sequence[float]]
PRUNERS = ("none", "median", "asha", "hyperband", "curve")


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

    def __post_init__(self) -> None:
        if self.min_epochs < 1 or self.reduction < 2 or (self.max_epochs is not None and self.max_epochs < 1):
            raise ValueError(f"HyperbandPruner needs min_epochs >= 1, max_epochs >= 1 and reduction >= 2, got "
                             f"{self.min_epochs=}, {self.max_epochs=}, {self.reduction=}.")

    def brackets(self) -> list[AshaPruner]:
        """At most MAX_BRACKETS that prune, then one whose first rung is the last epoch (it never prunes)."""
        if self.max_epochs is None:
            return [AshaPruner(self.min_epochs, self.reduction)]
        pruning = [AshaPruner(self.min_epochs * self.reduction ** b, self.reduction) for b in range(MAX_BRACKETS)
                   if self.min_epochs * self.reduction ** b < self.max_epochs]
        return [*pruning, AshaPruner(self.max_epochs, self.reduction)]

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


@dataclass(frozen=True)
class CurvePruner:
    """Stop a trial when even an optimistic extrapolation of its curve cannot beat the best finished trial.

    From `min_epochs` points on, a power law and an exponential saturation are fitted to the
    trial's curve (curvefit.fit_at); the optimistic value at epoch `horizon` is the better of the
    fits' predictions, less twice that fit's residual spread and `margin` times the curve's own
    range, and never worse than the trial's best so far. If that is still worse than the best
    value of the other trials that ran all `horizon` epochs, the trial stops. Until one has, or
    while the fits fail, nothing is stopped. Without a horizon (epochs unknown), the fits are
    read at three times the epochs seen and every other trial counts.

    With `behind_only` (the default) a trial that is level with the best finished trial as it was
    at the same epoch (within the same slack) is never stopped: the fits only see saturation, and
    a curve that plateaus early often jumps when the learning rate decays on the plateau. In
    recorded searches (bench/README.md) a trial at 0.886, 0.916, 0.913 after 3 epochs was stopped,
    then, run in full, reached 0.972 against the best finished trial's 0.967, which stood at 0.904
    after 3 epochs; another, stopped 0.001 behind the leader at epoch 6, would have reached 0.952
    against its 0.933.
    """

    min_epochs: int = 3   # 3 beat 4, 5 and 6 on replays of recorded searches (bench/replay.py)
    horizon: int | None = None
    margin: float = 0.1
    behind_only: bool = True

    def __post_init__(self) -> None:
        if self.min_epochs < 3 or (self.horizon is not None and self.horizon < 1) or self.margin < 0:
            raise ValueError(f"CurvePruner needs min_epochs >= 3, horizon >= 1 and margin >= 0, got "
                             f"{self.min_epochs=}, {self.horizon=}, {self.margin=}.")

    def decides_at(self, epoch: int) -> bool:
        return epoch + 1 >= self.min_epochs and (self.horizon is None or epoch + 1 < self.horizon)

    def prune(self, tid: int, epoch: int, curves: Curves) -> str | None:
        from mlflow_tune.tuning.curvefit import fit_at

        if not self.decides_at(epoch):
            return None
        finished = {t: best_until(c, len(c)) for t, c in curves.items()
                    if t != tid and (self.horizon is None or len(c) >= self.horizon)}
        best = min(finished.values(), default=float("inf"))
        mine = list(curves[tid][: epoch + 1])
        finite = [v for v in mine if math.isfinite(v)]
        if not math.isfinite(best) or len(finite) < self.min_epochs:
            return None
        slack = self.margin * (max(finite) - min(finite))
        leader = min(finished, key=lambda t: (finished[t], t))
        if self.behind_only and best_until(mine, epoch) <= best_until(curves[leader], epoch) + slack:
            return None   # level with where the best trial was at this epoch: no evidence against it
        horizon = self.horizon or 3 * (epoch + 1)
        fits = fit_at(mine, horizon)
        if not fits:
            return None
        optimistic = min(min(p - 2 * s for p, s in fits) - slack, best_until(mine, epoch))
        if optimistic > best:
            return f"pruned by learning curve at epoch {epoch}: at best {optimistic:.4g} by epoch " \
                   f"{horizon}, worse than {best:.4g} of {len(finished)} finished trials"
        return None


Pruner = NoPruner | MedianPruner | AshaPruner | HyperbandPruner | CurvePruner


def make_pruner(name: str, *, warmup: int = 2, min_trials: int = 3, reduction: int = 3,
                horizon: int | None = None) -> Pruner:
    if name == "curve":
        return CurvePruner(max(3, warmup + 1), horizon)
    if name == "median":
        return MedianPruner(warmup, min_trials)
    if name == "asha":
        return AshaPruner(max(1, warmup), reduction)
    if name == "hyperband":
        return HyperbandPruner(max(1, warmup), horizon, reduction)
    if name == "none":
        return NoPruner()
    raise ValueError(f"pruning={name!r} is not valid; choose one of: {', '.join(PRUNERS)}.")
