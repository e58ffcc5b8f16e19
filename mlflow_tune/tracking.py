"""The only module that writes to MLflow.

Runs are addressed by an explicit ``MlflowClient`` and run id (never the thread-local
active run), so threads, processes and Spark workers all log to the right run and child
runs nest through an explicit parent id.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlflow_tune.callbacks import TrainCallback
from mlflow_tune.config import TrainConfig
from mlflow_tune.writer import RunWrite

if TYPE_CHECKING:
    from concurrent.futures import Future

    from mlflow import MlflowClient

    from mlflow_tune.callbacks import EpochRecord
    from mlflow_tune.data import DataSplits
    from mlflow_tune.diagnostics import Diagnosis
    from mlflow_tune.models import Network
    from mlflow_tune.training import TrainResult
    from mlflow_tune.writer import Forwarding, Writer

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


_experiments: dict[tuple[str, str], str] = {}


def ensure_experiment(client: MlflowClient, name: str) -> str:
    """The experiment's id, creating it with artifacts beside a SQLite database (not the cwd).

    Remembered per store and name: a loop of runs looks it up once, not once per run.
    """
    key = (str(client.tracking_uri), name)
    if key not in _experiments:
        _experiments[key] = _find_or_create_experiment(client, name)
    return _experiments[key]


def _find_or_create_experiment(client: MlflowClient, name: str) -> str:
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


def child_runs(client: MlflowClient, experiment_id: str, parent_run_id: str) -> list[Any]:
    """Direct children of a run (explicit parent-id tag), oldest first, all pages."""
    runs: list[Any] = []
    token = None
    while True:
        page = client.search_runs([experiment_id], f"tags.`{PARENT_TAG}` = '{parent_run_id}'",
                                  max_results=1000, order_by=["attributes.start_time ASC"], page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def trial_runs(client: MlflowClient, experiment_id: str, search_run_id: str) -> list[Any]:
    """The runs under a search that are not stage runs: its children and its stages' children."""
    out, frontier = [], [search_run_id]
    while frontier:
        children = [c for parent in frontier for c in child_runs(client, experiment_id, parent)]
        out += [c for c in children if c.data.tags.get(TAG + "role") != "stage"]
        frontier = [c.info.run_id for c in children if c.data.tags.get(TAG + "role") == "stage"]
    return sorted(out, key=lambda r: r.info.start_time)


def finite(metrics: Mapping[str, float]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if v is not None and math.isfinite(v)}


@dataclass(frozen=True)
class RunRef:
    """A run written through the writer only: no MLflow client in this process."""

    tracking_uri: str
    run_id: str
    fresh: bool = True
    experiment_id: str = ""   # when known: saves the writer a lookup


class RunLogger:
    """A handle on one MLflow run: batched writes, artifacts from memory, termination."""

    @property
    def tracking_uri(self) -> str:
        return str(self.client.tracking_uri)

    def __init__(self, client: MlflowClient, run_id: str, fresh: bool = False, experiment_id: str = ""):
        self.client, self.run_id = client, run_id
        self.fresh = fresh   # created by us just now: no params logged yet
        self.experiment_id = experiment_id   # "" when not known

    @classmethod
    def start(cls, client: MlflowClient, experiment_id: str, *, name: str | None = None,
              tags: Mapping[str, str] | None = None, parent_run_id: str | None = None) -> RunLogger:
        all_tags = dict(tags or {})
        if parent_run_id:
            all_tags[PARENT_TAG] = parent_run_id
        run = client.create_run(experiment_id, run_name=name, tags=all_tags)
        return cls(client, run.info.run_id, fresh=True, experiment_id=str(experiment_id))

    def log_params(self, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(k, str(v)[:6000]) for k, v in params.items()]
        for i in range(0, len(items), _BATCH):
            self.client.log_batch(self.run_id, params=items[i:i + _BATCH], synchronous=True)

    def log_metrics(self, metrics: Mapping[str, float], step: int = 0) -> None:
        self.log_batch([(k, v, step) for k, v in metrics.items()])

    def log_batch(self, metrics: Iterable[tuple[str, float, int]] = (), params: Mapping[str, Any] | None = None,
                  tags: Mapping[str, Any] | None = None) -> None:
        """Metrics (key, value, step), params and tags in one write: one database commit."""
        from mlflow.entities import Metric, Param, RunTag

        now = int(time.time() * 1000)
        batch = [Metric(k, float(v), now, step) for k, v, step in metrics]
        items = [Param(k, str(v)[:6000]) for k, v in (params or {}).items()]
        labels = [RunTag(k, str(v)) for k, v in (tags or {}).items()]
        if not (batch or items or labels):
            return
        # MLflow takes at most 1000 metrics, 100 params and 100 tags per call.
        for i in range(0, max(len(batch), 1), 1000):
            first = i == 0
            self.client.log_batch(self.run_id, metrics=batch[i:i + 1000], params=items[:_BATCH] if first else [],
                                  tags=labels[:_BATCH] if first else [], synchronous=True)
        if len(items) > _BATCH or len(labels) > _BATCH:
            self.log_params(dict((p.key, p.value) for p in items[_BATCH:]))
            self.set_tags(dict((t.key, t.value) for t in labels[_BATCH:]))

    def log_dir(self, local: str | Path, folder: str | None = None) -> None:
        self.client.log_artifacts(self.run_id, str(local), folder)

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
    """Log `model` (raw rows in, class probabilities out) as an MLflow PyTorch model; returns its URI."""
    from mlflow_tune.model_log import log_model, model_parts

    return log_model(run.client, run.run_id, model_parts(model, example), experiment_id=run.experiment_id)


class MlflowCallback(TrainCallback):
    """Training callback that writes one run: params, per-epoch metrics, curves, checkpoint, model.

    Every write goes to `writer` (by default the background writer process) in order, so the
    training loop never waits on the tracking store; `model_uri()` waits for the last one.
    """

    def __init__(self, run: RunLogger | RunRef, *, role: str = "train", log_model: bool = True,
                 plot_every_seconds: float = 30.0, flush_every_seconds: float = 2.0,
                 extra_tags: Mapping[str, str] | None = None, terminate: bool = True,
                 writer: Writer | Forwarding | None = None, plot_at_end: bool = True,
                 first_epoch_at_once: bool = True, hold_end: bool = False):
        self.run, self.role, self.log_model, self.plot_at_end = run, role, log_model, plot_at_end
        self.plot_every, self.extra_tags, self.terminate = plot_every_seconds, dict(extra_tags or {}), terminate
        self.flush_every = flush_every_seconds
        self.writer = writer
        # The first epoch is sent at once (with the params and tags): the run shows up complete
        # in the UI, and less is left to write when a short run ends. A search trial waits for
        # the period instead: a short trial is then written in one job, not three.
        self._last_plot = time.monotonic()
        self._last_flush = -math.inf if first_epoch_at_once else self._last_plot
        self._pending: list[tuple[str, float, int]] = []
        self._start: dict[str, Any] = {}   # params and tags, sent with the first flush
        self._last: Future[str] | None = None
        self.hold_end = hold_end
        self.held: RunWrite | None = None   # with hold_end: the last job, for the caller to add to

    def _job(self, **parts: Any) -> RunWrite:
        if self._start:   # the run's params and tags ride with its first write: one commit fewer
            parts["params"], start_tags = self._start["params"], self._start["tags"]
            parts["tags"] = (*start_tags, *parts.get("tags", ()))
            self._start = {}
        return RunWrite(self.run.tracking_uri, self.run.run_id, experiment_id=self.run.experiment_id, **parts)

    def submit(self, job: RunWrite) -> Future[str]:
        from mlflow_tune.writer import shared

        self._last = (self.writer or shared()).submit(job)
        return self._last

    def _submit(self, **parts: Any) -> Future[str]:
        return self.submit(self._job(**parts))

    def flush(self) -> None:
        """Send what is held back (params and tags not yet sent, buffered epochs, the held last job)."""
        if self._start or self._pending:
            self._submit(metrics=tuple(self._pending))
            self._pending = []
        if self.held is not None:
            held, self.held = self.held, None
            self.submit(held)

    def model_uri(self) -> str:
        """The logged model's URI once the run's last write is done ("" when no model was logged)."""
        return self._last.result() if self._last is not None else ""

    def on_train_start(self, config: TrainConfig, data: DataSplits, model: Network) -> None:
        params = config.to_params()
        if isinstance(self.run, RunLogger) and not self.run.fresh:
            # Under `mlflow run` the project already logged its parameters (shell-quoted, e.g. "''",
            # or as typed, e.g. "1e-2"); MLflow refuses to change a param, so log only the missing ones.
            logged = self.run.client.get_run(self.run.run_id).data.params
            params = {k: v for k, v in params.items() if k not in logged}
        n_params = sum(p.numel() for p in model.parameters())
        tags = {TAG + "role": self.role, TAG + "n_classes": data.n_classes, TAG + "n_parameters": n_params,
                TAG + "train_rows": len(data.train), **self.extra_tags}
        # Sent with the first flush (within flush_every seconds) or at the end of a short run.
        self._start = {"params": tuple(params.items()), "tags": tuple((k, str(v)) for k, v in tags.items())}

    def on_sanity(self, report: Any) -> None:
        metrics = finite({"sanity_initial_loss": report.initial_loss, "sanity_expected_loss": report.expected_loss,
                          "sanity_overfit_accuracy": report.overfit_accuracy})
        self._submit(metrics=tuple((k, v, 0) for k, v in metrics.items()),
                     tags=((TAG + "sanity", "passed" if report.passed else "failed"),
                           (TAG + "sanity.detail", report.summary())))

    def on_epoch_end(self, record: EpochRecord, history: Any) -> str | None:
        # Epochs are sent every `flush_every` seconds in one batch (one commit); steps stay per epoch.
        self._pending += [(k, v, record.epoch) for k, v in finite(record.metrics()).items()]
        now = time.monotonic()
        if now - self._last_flush >= self.flush_every:
            self._submit(metrics=tuple(self._pending))
            self._pending, self._last_flush = [], now
        if now - self._last_plot >= self.plot_every:   # a long run's curves, refreshed while it trains
            self._submit(history=tuple(history))
            self._last_plot = now
        return None

    def on_train_end(self, result: TrainResult) -> None:
        from mlflow_tune.model_log import model_parts
        from mlflow_tune.writer import serialise_checkpoint

        tags = {TAG + "status": result.status, "mlflow.note.content": describe(result),
                **diagnosis_tags(result.diagnosis)}
        if result.stop_reason:
            tags[TAG + "stop_reason"] = result.stop_reason[:500]
        last = max(0, len(result.history) - 1)
        final = [(k, v, last) for k, v in finite(result.final_metrics()).items()]
        checkpoint = serialise_checkpoint({"state_dict": result.best_state, "epoch": result.best_epoch,
                                           "config": result.config.to_params()}) if result.best_state else b""
        with_model = self.log_model and bool(result.best_state)
        example = (result.data.test.x if len(result.data.test) else result.data.val.x)[:5]
        job = self._job(metrics=(*self._pending, *final), history=tuple(result.history), plot=self.plot_at_end,
                        checkpoint=checkpoint,
                        model=model_parts(result.model, example) if with_model else None, tags=tuple(tags.items()),
                        status=run_status(result) if self.terminate else "")
        self._pending = []
        if self.hold_end:
            self.held = job
        else:
            self.submit(job)


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
