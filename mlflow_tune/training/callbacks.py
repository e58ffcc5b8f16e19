"""What the training loop reports and the hooks it calls (no torch, no MLflow here)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlflow_tune.training.config import TrainConfig
    from mlflow_tune.training.data import DataSplits
    from mlflow_tune.training.loop import TrainResult
    from mlflow_tune.training.sanity import SanityReport

EPOCH_METRICS = ("train_loss", "val_loss", "train_accuracy", "val_accuracy", "lr", "grad_norm",
                 "epoch_seconds")


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

    def metrics(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in EPOCH_METRICS}


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
