"""The MLproject `train` entry point mirrors TrainConfig and really runs under `mlflow run`."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from mlflow import MlflowClient

from mlflow_tune.training.config import FIELD_TYPES, TrainConfig

ROOT = Path(__file__).resolve().parents[1]


def _train_entry() -> dict[str, Any]:
    project = yaml.safe_load((ROOT / "MLproject").read_text())
    return project["entry_points"]["train"]  # type: ignore[no-any-return]


def test_train_parameters_match_config() -> None:
    params = _train_entry()["parameters"]
    fields = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    assert list(params) == list(fields)
    for name, default in fields.items():
        spec = params[name]
        kind = FIELD_TYPES[name]
        expected = "string" if kind in (str, bool) else "float"
        assert spec["type"] == expected, name
        if kind is bool:
            assert str(spec["default"]).lower() == str(default).lower(), name
        elif kind is str:
            assert str(spec["default"]) == default, name
        else:
            assert kind(spec["default"]) == default, name


def test_command_passes_every_parameter() -> None:
    command = _train_entry()["command"]
    assert command.startswith("python -m mlflow_tune.cli train ")
    for name in FIELD_TYPES:
        assert f" {name}={{{name}}}" in command, name


@pytest.mark.slow
def test_mlflow_run_train(tmp_path: Path, empty_store: Path) -> None:
    db = tmp_path / "mlflow.db"
    db.write_bytes(empty_store.read_bytes())
    uri = f"sqlite:///{db}"
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    for name in ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_EXPERIMENT_ID"):
        env.pop(name, None)
    done = subprocess.run(
        [os.path.join(bin_dir, "mlflow"), "run", ".", "-e", "train", "-P", "dataset=digits",
         "-P", "model=mlp", "-P", "epochs=2", "-P", "hidden_units=16", "-P", "num_threads=1",
         "--env-manager", "local"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    client = MlflowClient(tracking_uri=uri)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert len(runs) == 1   # the project run and ours are the same run
    run = runs[0]
    assert run.info.status == "FINISHED"
    assert run.data.tags["mlflow_tune.role"] == "train"
    assert run.data.params["epochs"] in ("2", "2.0") and run.data.params["dataset"] == "digits"
    assert len(client.get_metric_history(run.info.run_id, "val_loss")) == 2
    assert {"best_val_loss", "test_accuracy"} <= set(run.data.metrics)
    assert run.data.tags.get("mlflow_tune.model_uri", "").startswith("models:/")
