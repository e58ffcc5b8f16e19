"""What the training loop reports and the hooks it calls (no torch, no MLflow here)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlflow_tune.training.config import TrainConfig
    from mlflow_tune.training.data import DataSplits
    from mlflow_tune.training.loop import TrainResult
    from mlflow_tune.training.sanity import SanityReport

# In field order after `epoch` (reports rebuild records positionally from it).
EPOCH_METRICS = ("train_loss", "val_loss", "train_accuracy", "val_accuracy", "lr", "grad_norm",
                 "epoch_seconds", "val_f1", "val_balanced_accuracy")
# Only where it is defined: two classes, both in the validation split.
TWO_CLASS_METRICS = ("val_auc",)


@dataclass(frozen=True)
class EpochRecord:
    epoch: int
    train_loss: float
    val_loss: float
    train_accuracy: float
    val_accuracy: float
    lr: float
    grad_norm: float
    epoch_seconds: float
    val_f1: float = math.nan                 # macro F1
    val_balanced_accuracy: float = math.nan  # mean per-class recall
    # None where undefined (not two classes): the metric is then left out, not logged as NaN
    # every epoch; NaN means defined but not computable (non-finite outputs).
    val_auc: float | None = None

    def metrics(self) -> dict[str, float]:
        out = {name: getattr(self, name) for name in EPOCH_METRICS}
        out.update((name, value) for name in TWO_CLASS_METRICS if (value := getattr(self, name)) is not None)
        return out


class TrainCallback:
    """Hooks the loop calls. `on_epoch_end` may return a reason string to stop the run."""

    def on_train_start(self, config: TrainConfig, data: DataSplits, model: Any) -> None:
        return None

    def on_sanity(self, report: SanityReport) -> None:
        return None

    def on_epoch_end(self, record: EpochRecord, history: Sequence[EpochRecord]) -> str | None:
        return None

    def on_train_end(self, result: TrainResult) -> None:
        return None
