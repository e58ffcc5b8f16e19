"""`mlflow_tune.api.train` against a real SQLite store: what a run must contain."""

from __future__ import annotations

import csv
import io
import shutil
from collections.abc import Iterator
from pathlib import Path

import mlflow
import numpy as np
import pytest
import torch
from mlflow import MlflowClient

from mlflow_tune.api import TrainOutcome, train
from mlflow_tune.tracking.runs import RunLogger, ensure_experiment
from mlflow_tune.training.config import ConfigError, TrainConfig
from mlflow_tune.training.records import EPOCH_METRICS

EPOCHS = 4


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory,
           empty_store: Path) -> Iterator[tuple[TrainOutcome, MlflowClient]]:
    """One fully logged run, shared by the read-only checks below (logging a model costs seconds)."""
    tmp = tmp_path_factory.mktemp("api")
    shutil.copy(empty_store, tmp / "mlflow.db")
    uri = f"sqlite:///{tmp}/mlflow.db"
    with pytest.MonkeyPatch.context() as mp:
        for name in ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_EXPERIMENT_ID"):
            mp.delenv(name, raising=False)
        mp.chdir(tmp)
        cfg = TrainConfig(dataset="digits", model="mlp", epochs=EPOCHS, hidden_units=32, num_threads=1,
                          lr=3e-3)
        outcome = train(cfg, tracking_uri=uri, experiment="api-test")
        yield outcome, MlflowClient(tracking_uri=uri)


def test_outcome(logged: tuple[TrainOutcome, MlflowClient]) -> None:
    outcome, client = logged
    assert outcome.result.status == "completed"
    assert outcome.model_uri
    run = client.get_run(outcome.run_id)
    assert run.info.status == "FINISHED"
    assert client.get_experiment(outcome.experiment_id).name == "api-test"
    # artifacts live beside the SQLite file, not in the working directory
    assert Path(run.info.artifact_uri.replace("file://", "")).is_relative_to(
        Path(outcome.tracking_uri.removeprefix("sqlite:///")).parent)


def test_all_params_logged(logged: tuple[TrainOutcome, MlflowClient]) -> None:
    outcome, client = logged
    assert client.get_run(outcome.run_id).data.params == outcome.result.config.to_params()


def test_per_epoch_metrics(logged: tuple[TrainOutcome, MlflowClient]) -> None:
    outcome, client = logged
    for name in EPOCH_METRICS:
        history = client.get_metric_history(outcome.run_id, name)
        assert sorted(m.step for m in history) == list(range(EPOCHS)), name
    losses = sorted(client.get_metric_history(outcome.run_id, "val_loss"), key=lambda m: m.step)
    assert [m.value for m in losses] == pytest.approx([r.val_loss for r in outcome.result.history])


def test_final_metrics(logged: tuple[TrainOutcome, MlflowClient]) -> None:
    outcome, client = logged
    metrics, res = client.get_run(outcome.run_id).data.metrics, outcome.result
    assert metrics["best_val_loss"] == pytest.approx(res.best_val_loss)
    assert metrics["best_val_accuracy"] == pytest.approx(res.best_val_accuracy)
    assert metrics["best_epoch"] == res.best_epoch
    assert metrics["test_loss"] == pytest.approx(res.test_loss)
    assert metrics["test_accuracy"] == pytest.approx(res.test_accuracy)


def test_artifacts(logged: tuple[TrainOutcome, MlflowClient], tmp_path: Path) -> None:
    outcome, client = logged
    top = {a.path for a in client.list_artifacts(outcome.run_id)}
    assert {"learning_curves.png", "metrics_history.csv", "checkpoints"} <= top
    assert [a.path for a in client.list_artifacts(outcome.run_id, "checkpoints")] == \
        ["checkpoints/best_checkpoint.pt"]
    png = Path(client.download_artifacts(outcome.run_id, "learning_curves.png", str(tmp_path)))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = Path(client.download_artifacts(outcome.run_id, "metrics_history.csv", str(tmp_path))).read_text()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == EPOCHS and set(EPOCH_METRICS) <= set(rows[0])
    ckpt_path = client.download_artifacts(outcome.run_id, "checkpoints/best_checkpoint.pt", str(tmp_path))
    checkpoint = torch.load(ckpt_path, weights_only=False)
    assert checkpoint["epoch"] == outcome.result.best_epoch
    outcome.result.model.load_state_dict(checkpoint["state_dict"])


def test_pyfunc_predicts_from_raw_rows(logged: tuple[TrainOutcome, MlflowClient]) -> None:
    outcome, _ = logged
    mlflow.set_tracking_uri(outcome.tracking_uri)
    model = mlflow.pyfunc.load_model(outcome.model_uri)
    signature = model.metadata.signature
    assert signature is not None and signature.inputs is not None and signature.outputs is not None
    test = outcome.result.data.test
    probs = np.asarray(model.predict(test.x))   # raw rows: the model standardises them itself
    assert probs.shape == (len(test), 10)
    assert np.allclose(probs.sum(1), 1.0, atol=1e-4)
    accuracy = float((probs.argmax(1) == test.y).mean())
    assert accuracy == pytest.approx(outcome.result.test_accuracy, abs=1e-9)


def test_tags_and_description(logged: tuple[TrainOutcome, MlflowClient]) -> None:
    outcome, client = logged
    tags = client.get_run(outcome.run_id).data.tags
    assert tags["mlflow_tune.role"] == "train"
    assert tags["mlflow_tune.diagnosis"] in ("healthy", "underfit", "overfit", "nonconvergent")
    assert tags["mlflow_tune.advice"]
    note = tags["mlflow.note.content"]
    assert "mlp" in note and "digits" in note and "completed" in note


def test_nonfinite_run_fails_with_metrics_kept(tracking_uri: str) -> None:
    cfg = TrainConfig(optimizer="sgd", lr=999.0, epochs=5, hidden_units=32, num_threads=1)
    outcome = train(cfg, experiment="nan")
    assert outcome.result.status == "nonfinite"
    client = MlflowClient(tracking_uri=tracking_uri)
    run = client.get_run(outcome.run_id)
    assert run.info.status == "FAILED"
    assert run.data.tags["mlflow_tune.status"] == "nonfinite"
    assert "lr" in run.data.metrics and "epoch_seconds" in run.data.metrics   # NaN values skipped, rest kept
    assert run.data.params["lr"] == "999.0"
    assert {a.path for a in client.list_artifacts(outcome.run_id)} >= {"metrics_history.csv"}


def test_error_during_training_ends_run_failed(tracking_uri: str) -> None:
    with pytest.raises(ConfigError):
        train(TrainConfig(dataset="wine", model="cnn", num_threads=1), experiment="broken")
    client = MlflowClient(tracking_uri=tracking_uri)
    (run,) = client.search_runs([client.get_experiment_by_name("broken").experiment_id])
    assert run.info.status == "FAILED"
    assert "cnn" in run.data.tags["mlflow_tune.error"]


def test_missing_data_file_creates_no_run(tracking_uri: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        train(TrainConfig(dataset="csv", data_path=str(tmp_path / "none.csv")), experiment="nofile")
    assert MlflowClient(tracking_uri=tracking_uri).get_experiment_by_name("nofile") is None


def test_logs_into_existing_run(tracking_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    client = MlflowClient(tracking_uri=tracking_uri)
    experiment_id = ensure_experiment(client, "project")
    existing = RunLogger.start(client, experiment_id, name="from-mlflow-run")
    # as `mlflow run` logs them: shell-quoted and spelled as typed; re-logging must not conflict
    existing.log_params({"lr": "1e-2", "data_path": "''", "sanity_check": "False"})
    monkeypatch.setenv("MLFLOW_RUN_ID", existing.run_id)
    outcome = train(TrainConfig(epochs=2, hidden_units=16, num_threads=1, lr=0.01), log_model=False)
    assert outcome.run_id == existing.run_id and outcome.experiment_id == experiment_id
    run = client.get_run(existing.run_id)
    assert run.data.params["epochs"] == "2"
    assert len(client.get_metric_history(existing.run_id, "val_loss")) == 2
    assert run.info.status == "FINISHED"
    assert len(client.search_runs([experiment_id])) == 1
