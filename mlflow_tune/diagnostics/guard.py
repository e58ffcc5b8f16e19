"""The live diagnosis guard: stops clearly nonconvergent runs early and labels every run at its end."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mlflow_tune.diagnostics.curves import Curves
from mlflow_tune.diagnostics.verdict import diagnose, early_verdict
from mlflow_tune.training.callbacks import TrainCallback
from mlflow_tune.training.records import EpochRecord

if TYPE_CHECKING:
    from mlflow_tune.training.config import TrainConfig
    from mlflow_tune.training.data import DataSplits
    from mlflow_tune.training.records import TrainResult

GUARD_PREFIX = "nonconvergent"


def curves_of(history: Sequence[EpochRecord]) -> Curves:
    return Curves(train_loss=[r.train_loss for r in history], val_loss=[r.val_loss for r in history],
                  train_accuracy=[r.train_accuracy for r in history],
                  val_accuracy=[r.val_accuracy for r in history], lr=[r.lr for r in history],
                  grad_norm=[r.grad_norm for r in history],
                  val_balanced_accuracy=[r.val_balanced_accuracy for r in history])


class DiagnosisGuard(TrainCallback):
    """Must run before callbacks that read `result.diagnosis` (train_model puts it first)."""

    def __init__(self) -> None:
        self.n_classes: int | None = None
        self.stop_stalled = False
        self.majority_rate: float | None = None

    def on_train_start(self, config: TrainConfig, data: DataSplits, model: Any) -> None:
        self.n_classes, self.stop_stalled = data.n_classes, config.stop_stalled
        # the validation split's, as the accuracies it is compared with are validation accuracies
        self.majority_rate = data.val.majority_rate
        self.n_val = len(data.val)

    def on_epoch_end(self, record: EpochRecord, history: Sequence[EpochRecord]) -> str | None:
        verdict = early_verdict(curves_of(history), n_classes=self.n_classes, stop_stalled=self.stop_stalled)
        if verdict is None:
            return None
        return f"{GUARD_PREFIX}: {verdict.detail} ({verdict.evidence})"

    def on_train_end(self, result: TrainResult) -> None:
        result.diagnosis = diagnose(curves_of(result.history), n_classes=result.n_classes,
                                    planned_epochs=result.config.epochs,
                                    params=result.config.to_params(), majority_rate=self.majority_rate,
                                    n_val=self.n_val)
