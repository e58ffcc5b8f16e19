"""mlflow-tune: tune PyTorch models with MLflow the way an experienced practitioner does.

The public API is imported lazily so that `mlflow-tune --help` starts fast.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "TrainConfig": "mlflow_tune.training.config",
    "train": "mlflow_tune.api",
    "TrainOutcome": "mlflow_tune.api",
    "search": "mlflow_tune.study.study",
    "SearchOutcome": "mlflow_tune.study.study",
    "optimize": "mlflow_tune.cli.optimize",
    "Trial": "mlflow_tune.trials.function",
    "TrialPruned": "mlflow_tune.trials.function",
    "load_tune_file": "mlflow_tune.config.tunefile",
    "promote": "mlflow_tune.registry",
    "PromotionResult": "mlflow_tune.registry",
    "diagnose": "mlflow_tune.diagnostics",
    "Diagnosis": "mlflow_tune.diagnostics",
    "Curves": "mlflow_tune.diagnostics",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mlflow_tune' has no attribute {name!r}")


__all__ = sorted(_LAZY)
