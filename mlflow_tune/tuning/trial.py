"""One search trial, run where a worker runs it: train, prune, log into the child run.

The driver (search.py) creates every child run first and hands its id here, so whatever
happens to the worker, the driver can still end the run and the search can resume.
"""

from __future__ import annotations

import math
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from mlflow_tune.tracking.callback import MlflowCallback
from mlflow_tune.tracking.runs import TAG, RunLogger, RunRef, client_for, finite
from mlflow_tune.training.callbacks import EpochRecord, TrainCallback
from mlflow_tune.training.config import from_mapping
from mlflow_tune.tuning.pruners import make_pruner

if TYPE_CHECKING:
    from mlflow_tune.tracking.writer import Forwarding, RunWrite, Writer
    from mlflow_tune.training.loop import TrainResult

OUTCOMES = ("completed", "pruned", "nonconvergent", "failed", "interrupted")


@dataclass(frozen=True)
class TrialSpec:
    tid: int
    run_id: str
    tracking_uri: str
    config: dict[str, Any]          # full TrainConfig values for this trial
    params: dict[str, Any]          # the searched values (a subset of config)
    metric: str = "val_loss"
    mode: str = "min"
    pruning: str = "none"
    pruning_warmup: int = 2
    min_trials_for_pruning: int = 3
    asha_reduction: int = 3
    top_k_models: int = 3
    project: str = ""               # run as an MLflow Project instead of in-process
    entry_point: str = "train"
    env_manager: str = "local"
    background_writes: bool = False  # write through the process's writer thread (inline runs)
    experiment_id: str = ""

    def oriented(self, value: float) -> float:
        """Lower is better, whatever the metric."""
        return value if self.mode == "min" else -value


@dataclass(frozen=True)
class TrialOutcome:
    tid: int
    run_id: str
    status: str                     # one of OUTCOMES
    objective: float | None = None  # best value of the metric, in its own units
    loss: float | None = None       # objective oriented so that lower is better (what hyperopt sees)
    diagnosis: str = ""
    epochs: int = 0
    error: str = ""
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class Board:
    """What a level's trials share: per-epoch curves (for pruning) and final losses (for top-k models).

    It lives in the driver. A trial in a worker process sees it as `workers.RemoteBoard`, whose
    calls the driver's reader threads answer here; each call is one dict operation, atomic
    under the GIL, so those threads need no lock.
    """

    curves: dict[int, list[float]] = field(default_factory=dict)
    losses: dict[int, float] = field(default_factory=dict)
    outbox: Any = None   # in a worker process: where its RunWrite jobs go (put), to the driver's writer

    def publish(self, tid: int, curve: list[float]) -> None:
        self.curves[tid] = list(curve)

    def snapshot(self) -> dict[int, Sequence[float]]:
        return dict(self.curves)

    def record(self, tid: int, loss: float) -> None:
        self.losses[tid] = loss

    def rank(self, loss: float) -> int:
        """1-based rank of `loss` among finished trials' losses (ties rank high)."""
        return 1 + sum(1 for other in dict(self.losses).values() if other < loss)


class PruningCallback(TrainCallback):
    """Publishes this trial's curve and asks the pruner, touching the (possibly shared) board
    only when pruning is on and only fetching other trials' curves when the pruner can decide."""

    def __init__(self, spec: TrialSpec, board: Board):
        self.spec, self.board, self.reason = spec, board, ""
        self.pruner = make_pruner(spec.pruning, warmup=spec.pruning_warmup,
                                  min_trials=spec.min_trials_for_pruning, reduction=spec.asha_reduction)
        self.curve: list[float] = []

    def on_epoch_end(self, record: EpochRecord, history: Sequence[EpochRecord]) -> str | None:
        if self.spec.pruning == "none":
            return None
        value = getattr(record, self.spec.metric)
        self.curve.append(self.spec.oriented(value) if math.isfinite(value) else math.inf)
        self.board.publish(self.spec.tid, self.curve)
        if not self.pruner.decides_at(record.epoch):
            return None
        reason = self.pruner.prune(self.spec.tid, record.epoch, self.board.snapshot())
        if reason:
            self.reason = reason
        return reason


def _worker_name() -> str:
    """Which process trained the trial (host:pid), to see how a search spread its work."""
    import os
    import socket

    return f"{socket.gethostname()}:{os.getpid()}"


def best_of(values: Sequence[float], mode: str) -> float | None:
    good = [v for v in values if math.isfinite(v)]
    if not good:
        return None
    return min(good) if mode == "min" else max(good)


def _writer_for(spec: TrialSpec, board: Board) -> Writer | Forwarding:
    from mlflow_tune.tracking.writer import Forwarding, Writer, shared

    if board.outbox is not None:        # a worker process: the driver's writer writes
        return Forwarding(board.outbox)
    return shared() if spec.background_writes else Writer("here")


def run_trial(spec: TrialSpec, board: Board) -> TrialOutcome:
    """Train one trial into its (pre-created) child run; never raises for a trial's own failure."""
    from mlflow_tune.tracking.writer import RunWrite

    if spec.project:
        return _finish_project(spec, RunLogger(client_for(spec.tracking_uri), spec.run_id))
    writer = _writer_for(spec, board)
    try:
        return _train_in_process(spec, writer, board)
    except KeyboardInterrupt:
        writer.submit(RunWrite(spec.tracking_uri, spec.run_id, status="KILLED",
                               tags=((TAG + "outcome", "interrupted"), (TAG + "interrupted", "true"))))
        return TrialOutcome(spec.tid, spec.run_id, "interrupted", params=spec.params)
    except Exception as exc:  # a crashed trial is recorded; the search goes on
        message = f"{type(exc).__name__}: {exc}"
        writer.submit(RunWrite(spec.tracking_uri, spec.run_id, status="FAILED",
                               texts=(("error.txt", traceback.format_exc(limit=20)),),
                               tags=((TAG + "outcome", "failed"), (TAG + "error", message[:500]))))
        return TrialOutcome(spec.tid, spec.run_id, "failed", error=message, params=spec.params)


def _train_in_process(spec: TrialSpec, writer: Writer | Forwarding, board: Board) -> TrialOutcome:
    from mlflow_tune.diagnostics.guard import DiagnosisGuard
    from mlflow_tune.training.loop import train_model

    cfg = from_mapping(spec.config)
    pruning = PruningCallback(spec, board)
    # No figure per trial (the MLflow UI charts the per-epoch metrics, the report draws them all);
    # the model is logged only for the top-k trials (below), so the writer keeps pace with short trials.
    run = RunRef(spec.tracking_uri, spec.run_id, experiment_id=spec.experiment_id)
    tracker = MlflowCallback(run, role="trial", log_model=False, terminate=False, writer=writer,
                             plot_at_end=False, first_epoch_at_once=False, hold_end=True,
                             extra_tags={TAG + "trial": str(spec.tid), TAG + "worker": _worker_name()})
    try:
        result = train_model(cfg, [DiagnosisGuard(), pruning, tracker])
        outcome, last = _outcome(spec, result, pruning, board)
    except BaseException:
        tracker.flush()   # params and epochs so far go in before run_trial records the failure
        raise
    assert tracker.held is not None
    # One job for the whole end of the trial: its last epochs and files, then the outcome.
    held, tracker.held = tracker.held, None
    writer.submit(replace(held, metrics=held.metrics + last.metrics, model=last.model, plot=last.plot,
                          tags=held.tags + last.tags, status=last.status))
    return outcome


def _outcome(spec: TrialSpec, result: TrainResult, pruning: PruningCallback,
             board: Board) -> tuple[TrialOutcome, RunWrite]:
    """The trial's outcome, and what its run gets for it: objective, status, and for a top-k
    trial its model."""
    from mlflow_tune.tracking.models import model_parts
    from mlflow_tune.tracking.writer import RunWrite

    objective = best_of([getattr(r, spec.metric) for r in result.history], spec.mode)
    if pruning.reason:
        status = "pruned"
    elif result.status == "nonfinite" or result.stop_reason.startswith("nonconvergent"):
        status = "nonconvergent"
    else:
        status = "completed"
    loss = spec.oriented(objective) if objective is not None else None
    top = False
    metrics: dict[str, float] = {}
    if loss is not None and objective is not None:
        board.record(spec.tid, loss)
        metrics = finite({"objective": objective, "loss": loss})
        # The full model costs more than a short trial's other writes together; keep it for the
        # top-k trials so far, which always includes the eventual winner when it finishes.
        top = status == "completed" and bool(result.best_state) and board.rank(loss) <= spec.top_k_models
    diagnosis = result.diagnosis.label if result.diagnosis else ""
    # The outcome tag marks a trial as done for --resume, so it is written last, with the status:
    # a trial whose writes were lost (kill -9) is re-run rather than left half-written.
    done = ((TAG + "outcome", status), *(((TAG + "pruned", "true"),) if status == "pruned" else ()))
    last = RunWrite(spec.tracking_uri, spec.run_id, plot=False, tags=done,
                    model=model_parts(result.model, result.data.val.x[:5]) if top else None,
                    metrics=tuple((k, v, len(result.history)) for k, v in metrics.items()),
                    status={"pruned": "KILLED", "nonconvergent": "FAILED"}.get(status, "FINISHED"))
    return TrialOutcome(spec.tid, spec.run_id, status, objective, loss, diagnosis, len(result.history),
                        result.stop_reason if status != "completed" else "", spec.params), last


def _finish_project(spec: TrialSpec, run: RunLogger) -> TrialOutcome:
    """Run the trial as an MLflow Project in the pre-created run, then read the objective back."""
    import mlflow.projects

    submitted = mlflow.projects.run(  # type: ignore[no-untyped-call]
        spec.project, entry_point=spec.entry_point, parameters={k: str(v) for k, v in spec.config.items()},
        env_manager=spec.env_manager, run_id=spec.run_id, synchronous=False)
    ok = submitted.wait()
    client = run.client
    history = [m.value for m in client.get_metric_history(spec.run_id, spec.metric)]
    objective = best_of(history, spec.mode)
    data = client.get_run(spec.run_id).data
    diagnosis = data.tags.get(TAG + "diagnosis", "")
    status = "completed" if ok and objective is not None else "failed"
    loss = spec.oriented(objective) if objective is not None else None
    if loss is not None:
        run.log_metrics(finite({"objective": objective or math.nan, "loss": loss}), step=len(history))
    run.set_tags({TAG + "outcome": status, TAG + "trial": str(spec.tid), TAG + "role": "trial"})
    if not ok:
        run.set_tags({TAG + "error": f"project run exited with status {submitted.get_status()}"})
    return TrialOutcome(spec.tid, spec.run_id, status, objective, loss, diagnosis, len(history),
                        "" if ok else "project run failed", spec.params)
