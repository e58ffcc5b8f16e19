"""A trial's pruning as a training callback: publish the curve to the board, ask the pruner."""

from __future__ import annotations

import math
from collections.abc import Sequence

from mlflow_tune.pruners.make import make_pruner
from mlflow_tune.training.callbacks import TrainCallback
from mlflow_tune.training.records import EpochRecord
from mlflow_tune.trials.records import Board, TrialSpec


class PruningCallback(TrainCallback):
    """Publishes this trial's curve and asks the pruner, touching the (possibly shared) board
    only when pruning is on and only fetching other trials' curves when the pruner can decide."""

    def __init__(self, spec: TrialSpec, board: Board):
        self.spec, self.board, self.reason = spec, board, ""
        self.epochs = _epochs(spec)
        self.pruner = make_pruner(spec.pruning, warmup=spec.pruning_warmup,
                                  min_trials=spec.min_trials_for_pruning, reduction=spec.asha_reduction,
                                  horizon=self.epochs, sign=-1.0 if spec.mode == "max" else 1.0)
        self.curve: list[float] = []

    def on_epoch_end(self, record: EpochRecord, history: Sequence[EpochRecord]) -> str | None:
        value = getattr(record, self.spec.metric)   # None: val_auc of a run that is not two-class
        return self.observe(math.nan if value is None else value)

    def observe(self, value: float) -> str | None:
        """The next point of this trial's curve (its position is its epoch); a reason to prune, or None."""
        if self.spec.pruning == "none":
            return None
        self.curve.append(self.spec.oriented(value) if math.isfinite(value) else math.inf)
        self.board.publish(self.spec.tid, self.curve)
        epoch = len(self.curve) - 1
        # Stopping after the last epoch saves nothing and would mark a finished trial pruned.
        if (self.epochs is not None and epoch + 1 >= self.epochs) or not self.pruner.decides_at(epoch):
            return None
        reason = self.pruner.prune(self.spec.tid, epoch, self.board.snapshot())
        if reason:
            self.reason = reason
        return reason


def _epochs(spec: TrialSpec) -> int | None:
    """The epochs the trial will run (what the curve pruner extrapolates to), if known."""
    epochs = spec.budget.get("epochs", spec.config.get("epochs"))
    return int(epochs) if isinstance(epochs, int | float) and epochs >= 1 else None
