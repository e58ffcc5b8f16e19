"""The only module that writes to MLflow.

Runs are addressed by an explicit ``MlflowClient`` and run id (never the thread-local
active run), so threads, processes and Spark workers all log to the right run and child
runs nest through an explicit parent id.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlflow_tune.callbacks import TrainCallback
from mlflow_tune.config import TrainConfig

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from mlflow_tune.data import DataSplits
    from mlflow_tune.diagnostics import Diagnosis
    from mlflow_tune.models import Network
    from mlflow_tune.callbacks import EpochRecord
    from mlflow_tune.training import TrainResult

DEFAULT_STORE = "mlflow.db"
TAG = "mlflow_tune."
PARENT_TAG = "mlflow.parentRunId"
_BATCH = 100   # MLflow accepts at most 100 params per log_batch call


def resolve_tracking_uri(uri: str | None = None) -> str:
    """`uri`, else MLFLOW_TRACKING_URI, else sqlite:///<cwd>/mlflow.db; relative SQLite paths made absolute."""
    uri = uri or os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{DEFAULT_STORE}"
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri[len(prefix):].startswith("/"):
        uri = prefix + str(Path(uri[len(prefix):]).resolve())
    elif "://" not in uri:   # a bare path: MLflow would treat it as a file store
        raise ValueError(f"tracking URI {uri!r} is not a URI; use e.g. sqlite:///mlflow.db or http://host:5000.")
    return uri


def client_for(uri: str | None = None) -> MlflowClient:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=resolve_tracking_uri(uri))


def ensure_experiment(client: MlflowClient, name: str) -> str:
    """The experiment's id, creating it with artifacts beside a SQLite database (not the cwd)."""
    found = client.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    uri = client.tracking_uri
    location = None
    if uri.startswith("sqlite:///"):
        location = Path(uri[len("sqlite:///"):]).parent.joinpath("mlartifacts").as_uri()
    try:
        return str(client.create_experiment(name, artifact_location=location))
    except Exception:   # another worker created it between our lookup and create
        again = client.get_experiment_by_name(name)
        if again is None:
            raise
        return str(again.experiment_id)


def finite(metrics: Mapping[str, float]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if v is not None and math.isfinite(v)}


class RunLogger:
    """A handle on one MLflow run: batched writes, artifacts from memory, termination."""

    def __init__(self, client: MlflowClient, run_id: str):
        self.client, self.run_id = client, run_id

    @classmethod
    def start(cls, client: MlflowClient, experiment_id: str, *, name: str | None = None,
              tags: Mapping[str, str] | None = None, parent_run_id: str | None = None) -> RunLogger:
        all_tags = dict(tags or {})
        if parent_run_id:
            all_tags[PARENT_TAG] = parent_run_id
        run = client.create_run(experiment_id, run_name=name, tags=all_tags)
        return cls(client, run.info.run_id)

    def log_params(self, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(k, str(v)[:6000]) for k, v in params.items()]
        for i in range(0, len(items), _BATCH):
            self.client.log_batch(self.run_id, params=items[i:i + _BATCH], synchronous=True)

    def log_metrics(self, metrics: Mapping[str, float], step: int = 0) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = [Metric(k, float(v), now, step) for k, v in metrics.items()]
        if batch:
            self.client.log_batch(self.run_id, metrics=batch, synchronous=True)

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        from mlflow.entities import RunTag

        if tags:
            self.client.log_batch(self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_text(self, text: str, path: str) -> None:
        self.client.log_text(self.run_id, text, path)

    def log_file(self, local: str | Path, folder: str | None = None) -> None:
        self.client.log_artifact(self.run_id, str(local), folder)

    def end(self, status: str = "FINISHED") -> None:
        self.client.set_terminated(self.run_id, status)

    def status(self) -> str:
        return str(self.client.get_run(self.run_id).info.status)


def log_pytorch_model(run: RunLogger, model: Network, example: Any) -> str:
    """Log `model` (raw rows in, class probabilities out) as an MLflow PyTorch model; returns its URI.

    pip requirements are given explicitly: inferring them spawns a subprocess that costs
    ~8 s per model, and the pt2 graph needs nothing but torch to load.
    """
    import mlflow
    import torch

    from mlflow_tune.models import Probabilities

    version = torch.__version__.split("+")[0]
    exported = Probabilities(model).cpu().eval()
    with _resumed(run):
        info = mlflow.pytorch.log_model(exported, name="model", input_example=example,
                                        pip_requirements=[f"torch=={version}"])
    return str(info.model_uri)


class _resumed:
    """Make `run` the active run for APIs that only log to the active run, then detach.

    The run is not terminated on exit: its status stays ours to set.
    """

    def __init__(self, run: RunLogger):
        self.run = run

    def __enter__(self) -> None:
        import mlflow

        mlflow.set_tracking_uri(self.run.client.tracking_uri)
        mlflow.start_run(run_id=self.run.run_id)

    def __exit__(self, *exc: object) -> None:
        import mlflow

        status = self.run.status()
        mlflow.end_run()
        self.run.end(status)   # end_run marked it FINISHED; put back what it was


class MlflowCallback(TrainCallback):
    """Training callback that writes one run: params, per-epoch metrics, plots, checkpoint, model."""

    def __init__(self, run: RunLogger, *, role: str = "train", log_model: bool = True,
                 plot_every_seconds: float = 30.0, extra_tags: Mapping[str, str] | None = None,
                 terminate: bool = True):
        self.run, self.role, self.log_model = run, role, log_model
        self.plot_every, self.extra_tags, self.terminate = plot_every_seconds, dict(extra_tags or {}), terminate
        self._last_plot = time.monotonic()
        self.model_uri = ""

    def on_train_start(self, config: TrainConfig, data: DataSplits, model: Network) -> None:
        self.run.log_params(config.to_params())
        n_params = sum(p.numel() for p in model.parameters())
        self.run.set_tags({TAG + "role": self.role, TAG + "n_classes": data.n_classes,
                           TAG + "n_parameters": n_params, TAG + "train_rows": len(data.train),
                           **self.extra_tags})

    def on_sanity(self, report: Any) -> None:
        self.run.log_metrics(finite({"sanity_initial_loss": report.initial_loss,
                                     "sanity_expected_loss": report.expected_loss,
                                     "sanity_overfit_accuracy": report.overfit_accuracy}))
        self.run.set_tags({TAG + "sanity": "passed" if report.passed else "failed",
                           TAG + "sanity.detail": report.summary()})

    def on_epoch_end(self, record: EpochRecord, history: Any) -> str | None:
        self.run.log_metrics(finite(record.metrics()), step=record.epoch)
        # Refreshing the figure costs ~0.1 s, so do it on a wall-clock period, not per epoch.
        if time.monotonic() - self._last_plot >= self.plot_every:
            self._plot(history)
        return None

    def _plot(self, history: Iterable[EpochRecord]) -> None:
        from mlflow_tune.report import learning_curve_png

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "learning_curves.png"
            learning_curve_png(list(history), path, title=self.run.run_id[:8])
            self.run.log_file(path)
        self._last_plot = time.monotonic()

    def on_train_end(self, result: TrainResult) -> None:
        self.run.log_metrics(finite(result.final_metrics()), step=max(0, len(result.history) - 1))
        self._plot(result.history)
        self._log_history_and_checkpoint(result)
        if self.log_model and result.best_state:
            self.model_uri = log_pytorch_model(self.run, result.model, result.data.test.x[:5]
                                               if len(result.data.test) else result.data.val.x[:5])
            self.run.set_tags({TAG + "model_uri": self.model_uri})
        tags = {TAG + "status": result.status, "mlflow.note.content": describe(result)}
        if result.stop_reason:
            tags[TAG + "stop_reason"] = result.stop_reason[:500]
        tags.update(diagnosis_tags(result.diagnosis))
        self.run.set_tags(tags)
        if self.terminate:
            self.run.end(run_status(result))

    def _log_history_and_checkpoint(self, result: TrainResult) -> None:
        import torch

        header = "epoch," + ",".join(result.history[0].metrics()) if result.history else "epoch"
        rows = [",".join([str(r.epoch), *(f"{v:.6g}" for v in r.metrics().values())]) for r in result.history]
        self.run.log_text("\n".join([header, *rows]) + "\n", "metrics_history.csv")
        if result.best_state:
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "best_checkpoint.pt"
                torch.save({"state_dict": result.best_state, "epoch": result.best_epoch,
                            "config": result.config.to_params()}, path)
                self.run.log_file(path, "checkpoints")


def run_status(result: TrainResult) -> str:
    """MLflow status: a run the search stopped is KILLED, a non-finite one FAILED."""
    if result.status == "nonfinite":
        return "FAILED"
    if result.status == "stopped" and result.stop_reason.startswith("pruned"):
        return "KILLED"
    return "FINISHED"


def diagnosis_tags(diagnosis: Diagnosis | None) -> dict[str, str]:
    if diagnosis is None:
        return {}
    from mlflow_tune.diagnostics import advice_line

    return {TAG + "diagnosis": diagnosis.label, TAG + "diagnosis.detail": diagnosis.detail,
            TAG + "diagnosis.evidence": diagnosis.evidence[:500], TAG + "advice": advice_line(diagnosis)}


def describe(result: TrainResult) -> str:
    cfg = result.config
    data = cfg.data_path or cfg.dataset
    outcome = f"{result.status}"
    if result.best_epoch >= 0:
        outcome += (f", best val accuracy {result.best_val_accuracy:.3f} (loss {result.best_val_loss:.4f})"
                    f" at epoch {result.best_epoch}")
    if not math.isnan(result.test_accuracy):
        outcome += f", test accuracy {result.test_accuracy:.3f}"
    if result.diagnosis is not None:
        outcome += f"; diagnosis: {result.diagnosis.label} ({result.diagnosis.detail})"
    return f"{cfg.model} on {data}: {outcome}."
