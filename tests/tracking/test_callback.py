"""The tracking layer on its own: URIs, experiments, batched writes, statuses, plots."""

from __future__ import annotations

from concurrent.futures import Future
from pathlib import Path
from unittest import mock

import pytest
from mlflow import MlflowClient

from mlflow_tune.reports.curves import learning_curve_bytes
from mlflow_tune.tracking.callback import MlflowCallback, run_status
from mlflow_tune.tracking.runs import RunLogger, ensure_experiment, finite, resolve_tracking_uri
from mlflow_tune.tracking.writer import RunWrite, Writer
from mlflow_tune.training.config import TrainConfig
from mlflow_tune.training.loop import train_model


def test_resolve_tracking_uri(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert resolve_tracking_uri() == f"sqlite:///{tmp_path.resolve()}/mlflow.db"
    assert resolve_tracking_uri("sqlite:///sub/x.db") == f"sqlite:///{tmp_path.resolve()}/sub/x.db"
    assert resolve_tracking_uri("http://host:5000") == "http://host:5000"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:////abs/y.db")
    assert resolve_tracking_uri() == "sqlite:////abs/y.db"
    with pytest.raises(ValueError, match="not a URI"):
        resolve_tracking_uri("some/dir")


def test_ensure_experiment_is_idempotent_and_keeps_artifacts_beside_db(tracking_uri: str,
                                                                       tmp_path: Path) -> None:
    client = MlflowClient(tracking_uri=tracking_uri)
    first = ensure_experiment(client, "exp")
    assert ensure_experiment(client, "exp") == first
    location = client.get_experiment(first).artifact_location
    assert location == (tmp_path / "mlartifacts").as_uri()


def test_run_logger_batches(tracking_uri: str) -> None:
    client = MlflowClient(tracking_uri=tracking_uri)
    run = RunLogger.start(client, ensure_experiment(client, "exp"), name="r", tags={"a": "b"})
    run.log_params({f"p{i}": i for i in range(250)})   # more than one log_batch allows
    with mock.patch.object(client, "log_batch", wraps=client.log_batch) as spy:
        run.log_metrics({"x": 1.0, "y": 2.0, "z": 3.0}, step=4)
        assert spy.call_count == 1   # one call per epoch, not one per value
    run.set_tags({"k": 1})
    run.end("KILLED")
    data = client.get_run(run.run_id).data
    assert len(data.params) == 250 and data.tags["a"] == "b" and data.tags["k"] == "1"
    assert client.get_metric_history(run.run_id, "y")[0].step == 4
    assert run.status() == "KILLED"


def test_finite_drops_nan_and_inf() -> None:
    assert finite({"a": 1, "b": float("nan"), "c": float("inf"), "d": None}) == {"a": 1.0}  # type: ignore[dict-item]


def test_run_status_mapping() -> None:
    result = mock.Mock(status="nonfinite", stop_reason="")
    assert run_status(result) == "FAILED"
    result.status, result.stop_reason = "stopped", "pruned by median rule"
    assert run_status(result) == "FINISHED"   # a decision of the search, not a failure
    result.status, result.stop_reason = "stopped", "interrupted (SIGINT)"
    assert run_status(result) == "KILLED"
    result.status, result.stop_reason = "early_stopped", "no improvement"
    assert run_status(result) == "FINISHED"


def test_curves_refreshed_while_training(tracking_uri: str) -> None:
    client = MlflowClient(tracking_uri=tracking_uri)
    run = RunLogger.start(client, ensure_experiment(client, "exp"))
    jobs: list[RunWrite] = []

    class Recording(Writer):
        def submit(self, job: RunWrite) -> Future[str]:
            jobs.append(job)
            return super().submit(job)

    tracker = MlflowCallback(run, log_model=False, plot_every_seconds=0.0, writer=Recording("here"),
                             figure=learning_curve_bytes)
    train_model(TrainConfig(epochs=3, hidden_units=16, num_threads=1), [tracker])
    # every epoch with period 0 (curves only), then once more at the end with checkpoint and status
    drawn = [j for j in jobs if j.history]
    assert [len(j.history) for j in drawn] == [1, 2, 3, 3]
    assert [bool(j.checkpoint) for j in drawn] == [False, False, False, True]
    assert "learning_curves.png" in {a.path for a in client.list_artifacts(run.run_id)}
    assert client.get_run(run.run_id).info.status == "FINISHED"
    assert "mlflow_tune.diagnosis" not in client.get_run(run.run_id).data.tags   # no guard, no label


def test_thread_writer_writes_in_order_and_reports_failures(tracking_uri: str) -> None:
    client = MlflowClient(tracking_uri=tracking_uri)
    run = RunLogger.start(client, ensure_experiment(client, "exp"))
    run.log_params({"p": 1})
    writer = Writer("thread").start()
    for step in range(5):
        writer.submit(RunWrite(tracking_uri, run.run_id, metrics=(("x", float(step), step),)))
    clash = writer.submit(RunWrite(tracking_uri, run.run_id, params=(("p", "2"),)))   # MLflow params are write-once
    errors = writer.drain()
    assert [m.value for m in client.get_metric_history(run.run_id, "x")] == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert len(errors) == 1 and run.run_id in errors[0]
    with pytest.raises(RuntimeError, match="MlflowException"):
        clash.result()
    assert "mlflow_tune.files_error" in client.get_run(run.run_id).data.tags
    writer.close()
    with pytest.raises(ValueError, match="where='gpu' is not valid; choose one of: thread, here"):
        Writer("gpu")
