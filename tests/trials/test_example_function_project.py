"""projects/imbalanced-function, as its README runs it: data made, then `mlflow-tune search` from that folder."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient

from mlflow_tune.tracking.runs import TAG, child_runs

PROJECT = Path(__file__).resolve().parents[2] / "projects" / "imbalanced-function"


@pytest.mark.slow
def test_the_example_tunes_a_users_script_on_f1(tmp_path: Path) -> None:
    folder = tmp_path / "project"
    shutil.copytree(PROJECT, folder, ignore=shutil.ignore_patterns("data", "__pycache__"))
    subprocess.run([sys.executable, "make_data.py"], cwd=folder, check=True, capture_output=True, timeout=120)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    done = subprocess.run([sys.executable, "-m", "mlflow_tune.cli", "search", "--config", "tune.yaml",
                           "--max-trials", "4", "--parallel", "1", "--json", "--quiet", "--tracking-uri", uri],
                          cwd=folder, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    client = MlflowClient(uri)
    kids = child_runs(client, result["experiment_id"], result["parent_run_id"])
    assert len(kids) == 4 and result["best_objective"] > 0.5   # macro F1 well above always-majority (~0.49)
    best = client.get_run(result["best_run_id"])
    assert len(client.get_metric_history(best.info.run_id, "val_f1")) >= 3
    assert TAG + "model_uri" in best.data.tags and best.data.params["epochs"] == "30"
