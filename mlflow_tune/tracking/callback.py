"""The training callback that writes one run: params, per-epoch metrics, curves, checkpoint, model.

Tracking only writes: the learning-curve figure and the diagnosis' tags (its advice in words) are
made by the caller's functions (``figure``, ``diagnosis_tags``), handed in when the callback is
built, so this layer neither draws nor formats advice.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from mlflow_tune.tracking.runs import TAG, RunLogger, RunRef, finite
from mlflow_tune.tracking.writer import RunWrite
from mlflow_tune.training.callbacks import TrainCallback
from mlflow_tune.training.config import TrainConfig

if TYPE_CHECKING:
    from concurrent.futures import Future

    from mlflow_tune.diagnostics.curves import Diagnosis
    from mlflow_tune.tracking.writer import Forwarding, Writer
    from mlflow_tune.training.data import DataSplits
    from mlflow_tune.training.models import Network
    from mlflow_tune.training.records import EpochRecord, TrainResult

# (history, title) -> PNG bytes of the run's learning curves (reports.curves.learning_curve_bytes)
Figure = Callable[[Sequence["EpochRecord"], str], bytes]
# a diagnosis (or None) -> the run's diagnosis tags (diagnostics.tags.diagnosis_tags)
DiagnosisTags = Callable[["Diagnosis | None"], Mapping[str, str]]


def log_pytorch_model(run: RunLogger, model: Network, example: Any) -> str:
    """Log `model` (raw rows in, class probabilities out) as an MLflow PyTorch model; returns its URI."""
    from mlflow_tune.tracking.models import log_model, model_parts

    return log_model(run.client, run.run_id, model_parts(model, example))


class MlflowCallback(TrainCallback):
    """Training callback that writes one run: params, per-epoch metrics, curves, checkpoint, model.

    Every write goes to `writer` (by default the process's writer thread) in order, so the
    training loop never waits on the tracking store; `model_uri()` waits for the last one.
    """

    def __init__(self, run: RunLogger | RunRef, *, role: str = "train", log_model: bool = True,
                 plot_every_seconds: float = 30.0, flush_every_seconds: float = 2.0,
                 extra_tags: Mapping[str, str] | None = None, terminate: bool = True,
                 writer: Writer | Forwarding | None = None, plot_at_end: bool = True,
                 first_epoch_at_once: bool = True, hold_end: bool = False, figure: Figure | None = None,
                 diagnosis_tags: DiagnosisTags | None = None):
        self.run, self.role, self.log_model, self.plot_at_end = run, role, log_model, plot_at_end
        self.figure, self.diagnosis_tags = figure, diagnosis_tags
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
        from mlflow_tune.tracking.writer import shared

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

    def _draw(self, history: Sequence[EpochRecord]) -> bytes:
        return self.figure(history, self.run.run_id[:8]) if self.figure is not None else b""

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
            self._submit(history=tuple(history), figure=self._draw(history))
            self._last_plot = now
        return None

    def on_train_end(self, result: TrainResult) -> None:
        from mlflow_tune.tracking.models import model_parts
        from mlflow_tune.tracking.writer import serialise_checkpoint

        tags = {TAG + "status": result.status, "mlflow.note.content": describe(result),
                **(self.diagnosis_tags(result.diagnosis) if self.diagnosis_tags else {})}
        if result.stop_reason:
            tags[TAG + "stop_reason"] = result.stop_reason[:500]
        last = max(0, len(result.history) - 1)
        final = [(k, v, last) for k, v in finite(result.final_metrics()).items()]
        checkpoint = serialise_checkpoint({"state_dict": result.best_state, "epoch": result.best_epoch,
                                           "config": result.config.to_params()}) if result.best_state else b""
        with_model = self.log_model and bool(result.best_state)
        example = (result.data.test.x if len(result.data.test) else result.data.val.x)[:5]
        job = self._job(metrics=(*self._pending, *final), history=tuple(result.history),
                        figure=self._draw(result.history) if self.plot_at_end else b"",
                        checkpoint=checkpoint,
                        model=model_parts(result.model, example) if with_model else None, tags=tuple(tags.items()),
                        status=run_status(result) if self.terminate else "")
        self._pending = []
        if self.hold_end:
            self.held = job
        else:
            self.submit(job)


def run_status(result: TrainResult) -> str:
    """MLflow status: an interrupted run is KILLED, a non-finite one FAILED; a pruned one FINISHED
    (its stop was a decision, not a failure: trials.records.RUN_STATUS says why)."""
    if result.status == "nonfinite":
        return "FAILED"
    if result.status == "stopped" and result.stop_reason.startswith("interrupted"):
        return "KILLED"
    return "FINISHED"


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
