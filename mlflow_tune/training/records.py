"""What the training loop reports: one record per epoch, and the result at the end.

Plain records (torch appears only in type annotations), so callbacks, tracking, diagnostics and
reports can read them without importing the loop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mlflow_tune.training.selection import Selection

if TYPE_CHECKING:
    import torch

    from mlflow_tune.diagnostics.curves import Diagnosis
    from mlflow_tune.training.config import TrainConfig
    from mlflow_tune.training.data import DataSplits
    from mlflow_tune.training.evaluation import Scores
    from mlflow_tune.training.models import Network
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


@dataclass
class TrainResult:
    config: TrainConfig
    status: str                         # one of STATUSES
    history: list[EpochRecord]
    model: Network                      # holds the kept checkpoint's weights
    data: DataSplits
    # The kept epoch (training.selection): its weights are the checkpoint and the test metrics',
    # its val loss/accuracy are best_val_*, and `objective` is the selection's value there.
    best_epoch: int = -1
    best_val_loss: float = math.inf
    best_val_accuracy: float = 0.0
    objective: float | None = None
    selection: Selection = field(default_factory=Selection)
    test_loss: float = math.nan
    test_accuracy: float = math.nan
    test_f1: float = math.nan
    test_balanced_accuracy: float = math.nan
    test_auc: float | None = None       # two classes only, as val_auc
    stop_reason: str = ""
    sanity: SanityReport | None = None
    seconds: float = 0.0
    best_state: dict[str, torch.Tensor] = field(default_factory=dict)
    diagnosis: Diagnosis | None = None

    @property
    def n_classes(self) -> int:
        return self.data.n_classes

    def final_metrics(self) -> dict[str, float]:
        # val_majority_rate: what best_val_accuracy must beat; logged so that a diagnosis read
        # back from MLflow later compares with the same number as the live one.
        out = {"best_val_loss": self.best_val_loss, "best_val_accuracy": self.best_val_accuracy,
               "best_epoch": float(self.best_epoch), "train_seconds": self.seconds,
               "val_majority_rate": self.data.val.majority_rate, "val_rows": float(len(self.data.val))}
        if len(self.data.test):
            out.update(test_loss=self.test_loss, test_accuracy=self.test_accuracy, test_f1=self.test_f1,
                       test_balanced_accuracy=self.test_balanced_accuracy)
            if self.test_auc is not None:
                out["test_auc"] = self.test_auc
        return out

    def set_test(self, scores: Scores) -> None:
        self.test_loss, self.test_accuracy, self.test_f1 = scores.loss, scores.accuracy, scores.f1
        self.test_balanced_accuracy, self.test_auc = scores.balanced_accuracy, scores.auc
