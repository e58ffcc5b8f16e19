"""The learning-curve pruner: stop a trial whose extrapolated curve cannot win (pure).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from mlflow_tune.pruners.median import Curves, best_until


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
    sign: float = 1.0   # in messages: -1 shows a maximised metric (negated in the curves) as logged

    def __post_init__(self) -> None:
        if self.min_epochs < 3 or (self.horizon is not None and self.horizon < 1) or self.margin < 0:
            raise ValueError(f"CurvePruner needs min_epochs >= 3, horizon >= 1 and margin >= 0, got "
                             f"{self.min_epochs=}, {self.horizon=}, {self.margin=}.")

    def decides_at(self, epoch: int) -> bool:
        return epoch + 1 >= self.min_epochs and (self.horizon is None or epoch + 1 < self.horizon)

    def prune(self, tid: int, epoch: int, curves: Curves) -> str | None:
        from mlflow_tune.pruners.curvefit import fit_at

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
            return f"pruned by learning curve after {epoch + 1} epochs: at best {self.sign * optimistic:.4g} " \
                   f"by {horizon} epochs, worse than {self.sign * best:.4g} of {len(finished)} finished trials"
        return None
