"""Shared fixtures: a real SQLite MLflow store in tmp_path, a clean MLflow environment."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

MLFLOW_ENV = ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_EXPERIMENT_ID")


@pytest.fixture(autouse=True)
def _clean_mlflow_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """A run id or experiment name leaking in from `mlflow run` or a shell must not redirect tests."""
    for name in MLFLOW_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def empty_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated, empty SQLite store: creating the schema costs seconds, copying the file does not."""
    from mlflow import MlflowClient

    path = tmp_path_factory.mktemp("store") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def tracking_uri(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, empty_store: Path) -> str:
    """A fresh SQLite store in tmp_path, also exported as MLFLOW_TRACKING_URI; cwd is tmp_path."""
    shutil.copy(empty_store, tmp_path / "mlflow.db")
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    # MLflow's global URI outranks the variable: a test that set it must not redirect the next.
    from mlflow.tracking._tracking_service import utils

    monkeypatch.setattr(utils, "_tracking_uri", None)
    monkeypatch.chdir(tmp_path)
    return uri


def small(**overrides: object) -> dict[str, object]:
    """Keyword arguments of a quick, single-threaded TrainConfig."""
    return {"dataset": "digits", "model": "mlp", "epochs": 3, "num_threads": 1, "hidden_units": 32,
            **overrides}
