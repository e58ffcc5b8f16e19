"""The hooks the training loop calls (no torch, no MLflow here); what it hands them is in `records`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlflow_tune.training.config import TrainConfig
    from mlflow_tune.training.data import DataSplits
    from mlflow_tune.training.records import EpochRecord, TrainResult
    from mlflow_tune.training.sanity import SanityReport

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
