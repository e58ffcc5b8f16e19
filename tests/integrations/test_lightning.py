"""Lightning's Trainer as a search trial: projects/lightning-function run as its README says, with
pruning, every metric written once into the trial's run, the diagnosis read from Lightning's names,
promotion and `mlflow.pyfunc.load_model`; `--resume` after kill -9; MLflow autologging routed to
the trial's run; a logger pointed elsewhere refused."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("lightning")

from mlflow import MlflowClient

from mlflow_tune.diagnostics.curves import LABELS
from mlflow_tune.tracking.runs import TAG, child_runs

PROJECT = Path(__file__).resolve().parents[2] / "projects" / "lightning-function"
CLI = [sys.executable, "-m", "mlflow_tune.cli"]
pytestmark = pytest.mark.slow


def _project(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    shutil.copytree(PROJECT, folder, ignore=shutil.ignore_patterns("lightning_logs", "__pycache__", "mlflow.db"))
    return folder


def _env(uri: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "PYTEST"))}
    return {**env, "MLFLOW_TRACKING_URI": uri, "PYTHONUNBUFFERED": "1"}


def _trials(client: MlflowClient, experiment_id: str, parent: str) -> list[Any]:
    return [r for r in child_runs(client, experiment_id, parent) if r.data.tags.get(TAG + "role") == "trial"]


def test_the_lightning_example_prunes_writes_once_and_promotes(tmp_path: Path) -> None:
    folder, uri = _project(tmp_path), f"sqlite:///{tmp_path / 'mlflow.db'}"
    done = subprocess.run([*CLI, "search", "--config", "tune.yaml", "--json", "--quiet"], cwd=folder, env=_env(uri),
                          capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    client = MlflowClient(uri)
    trials = _trials(client, result["experiment_id"], result["parent_run_id"])
    assert len(trials) == 8 and result["counts"].get("pruned", 0) >= 1, result["counts"]
    for run in trials:
        tags = run.data.tags
        assert run.info.status == "FINISHED" and tags[TAG + "outcome"] in ("completed", "pruned", "nonconvergent")
        assert tags[TAG + "diagnosis"] in LABELS, (tags[TAG + "diagnosis"], tags.get(TAG + "evidence"))
        # Lightning's MLFlowLogger wrote the curves; the callback only judged: one point per
        # validation, no second copy at the epoch numbers
        for key in ("val_loss", "val_acc", "train_loss"):
            steps = [m.step for m in client.get_metric_history(run.info.run_id, key)]
            assert steps and len(steps) == len(set(steps)), (key, steps)
    pruned = [r for r in trials if r.data.tags[TAG + "outcome"] == "pruned"]
    assert all(r.data.tags.get(TAG + "pruned") == "true" for r in pruned)
    assert all(len(client.get_metric_history(r.info.run_id, "val_loss")) < 8 for r in pruned)   # stopped early
    best = client.get_run(result["best_run_id"])
    assert "checkpoints/best.ckpt" in [a.path for a in client.list_artifacts(best.info.run_id, "checkpoints")]

    promoted = subprocess.run([*CLI, "promote", result["parent_run_id"], "--model-name", "lightning-digits",
                               "--allow", "underfit", "--allow", "overfit"], cwd=folder, env=_env(uri),
                              capture_output=True, text=True, timeout=300)
    assert promoted.returncode == 0, promoted.stderr[-3000:]
    load = ("import mlflow, numpy as np; m = mlflow.pyfunc.load_model('models:/lightning-digits@champion'); "
            "print(np.asarray(m.predict(np.zeros((2, 64), dtype='float32'))).shape)")
    shape = subprocess.run([sys.executable, "-c", load], cwd=folder, env=_env(uri), capture_output=True,
                           text=True, timeout=300)
    assert shape.returncode == 0 and shape.stdout.strip() == "(2, 10)", shape.stderr[-3000:]


def test_a_killed_lightning_search_resumes_with_nothing_trained_twice(tmp_path: Path) -> None:
    folder, uri = _project(tmp_path), f"sqlite:///{tmp_path / 'mlflow.db'}"
    proc = subprocess.Popen([*CLI, "search", "--config", "tune.yaml", "--max-trials", "6"], cwd=folder,
                            env=_env(uri), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    err, began = "", time.monotonic()
    assert proc.stderr is not None
    while sum(f"trial {n}: " in err for n in range(6)) < 2 and time.monotonic() - began < 300:
        err += proc.stderr.readline()
    os.killpg(proc.pid, signal.SIGKILL)   # the driver and its two workers, mid-trial
    proc.wait(30)
    parent = err.split("search run ", 1)[1].split()[0]
    again = subprocess.run([*CLI, "search", "--config", "tune.yaml", "--max-trials", "6", "--resume", parent,
                            "--json", "--quiet"], cwd=folder, env=_env(uri), capture_output=True, text=True,
                           timeout=400)
    assert again.returncode == 0, again.stderr[-3000:]
    client = MlflowClient(uri)
    experiment = client.get_run(parent).info.experiment_id
    trials = _trials(client, experiment, parent)
    final = [r for r in trials if r.data.tags.get(TAG + "outcome") in ("completed", "pruned", "nonconvergent")]
    configs = Counter((r.data.params["lr"], r.data.params["channels"], r.data.params["dropout"]) for r in final)
    assert len(final) == 6 and max(configs.values()) == 1, configs
    assert [r.info.run_id for r in trials if r.info.status == "RUNNING"] == []
    assert client.get_run(parent).info.status == "FINISHED"


def _fit_with_autolog(trial: Any) -> None:
    import lightning as L
    import mlflow

    sys.path.insert(0, str(PROJECT))
    from train import DigitsClassifier, loaders

    from mlflow_tune.integrations.lightning import TuneCallback, trial_run

    train, val, _ = loaders()
    model = DigitsClassifier(float(trial.params["lr"]), 4, 0.0)
    mlflow.pytorch.autolog(log_models=False, silent=True)
    try:
        with trial_run(trial):
            L.Trainer(max_epochs=3, callbacks=[TuneCallback(trial)], logger=False, enable_checkpointing=False,
                      enable_progress_bar=False, enable_model_summary=False).fit(model, train, val)
    finally:
        mlflow.pytorch.autolog(disable=True)


def test_autolog_writes_into_the_trial_run_and_the_callback_only_judges(tracking_uri: str) -> None:
    from mlflow_tune import optimize

    out = optimize(_fit_with_autolog, {"lr": {"loguniform": [1e-3, 1e-2]}}, metric="val_loss", max_trials=2,
                   pruning="none", tracking_uri=tracking_uri, progress=False)
    client = MlflowClient(tracking_uri)
    trials = _trials(client, out.experiment_id, out.parent_run_id)
    assert len(trials) == 2 and all(r.data.tags[TAG + "outcome"] == "completed" for r in trials)
    for run in trials:
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "val_loss")]
        assert steps == [0, 1, 2], steps   # autolog's points, once each
        assert run.data.tags[TAG + "diagnosis"] in LABELS
    assert len(client.search_runs([out.experiment_id])) == 3   # the search and its two trials: no stray run


def _fit_with_a_stray_logger(trial: Any) -> None:
    import lightning as L
    from lightning.pytorch.loggers import MLFlowLogger

    sys.path.insert(0, str(PROJECT))
    from train import DigitsClassifier, loaders

    from mlflow_tune.integrations.lightning import TuneCallback

    train, val, _ = loaders()
    L.Trainer(max_epochs=1, callbacks=[TuneCallback(trial)], enable_checkpointing=False, enable_progress_bar=False,
              logger=MLFlowLogger(experiment_name="elsewhere", tracking_uri=trial.tracking_uri)).fit(
        DigitsClassifier(1e-3, 4, 0.0), train, val)


def test_a_logger_writing_to_another_run_fails_the_trial_before_any_epoch(tracking_uri: str) -> None:
    """Lightning makes a logger's run before any callback runs, so that run exists (it ends FAILED);
    the trial says what to use instead, and no epoch went anywhere."""
    from mlflow_tune import optimize

    out = optimize(_fit_with_a_stray_logger, {"lr": {"uniform": [0, 1]}}, metric="val_loss", max_trials=1,
                   pruning="none", tracking_uri=tracking_uri, progress=False)
    assert out.trials[0].status == "failed" and "mlflow_logger(trial)" in out.trials[0].error
    client = MlflowClient(tracking_uri)
    stray = client.search_runs([client.get_experiment_by_name("elsewhere").experiment_id])
    assert [(r.info.status, r.data.metrics) for r in stray] == [("FAILED", {})]
    assert client.get_run(out.trials[0].run_id).data.metrics == {}


def test_the_core_never_imports_the_frameworks() -> None:
    code = ("import sys, mlflow_tune, mlflow_tune.cli.app, mlflow_tune.study.study, mlflow_tune.trials.function; "
            "print(sorted(m for m in ('lightning', 'pytorch_lightning', 'transformers') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stdout + done.stderr[-2000:]
