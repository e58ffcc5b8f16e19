"""One training run end to end: config -> training -> callbacks -> MLflow."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from dataclasses import dataclass

from mlflow_tune import interrupts
from mlflow_tune.diagnostics.guard import DiagnosisGuard
from mlflow_tune.diagnostics.tags import diagnosis_tags
from mlflow_tune.reports.curves import learning_curve_bytes
from mlflow_tune.tracking.callback import MlflowCallback
from mlflow_tune.tracking.runs import TAG, RunLogger, client_for, ensure_experiment
from mlflow_tune.training.callbacks import TrainCallback
from mlflow_tune.training.config import TrainConfig
from mlflow_tune.training.data import check_source
from mlflow_tune.training.loop import train_model
from mlflow_tune.training.records import TrainResult

DEFAULT_EXPERIMENT = "mlflow-tune"


@dataclass(frozen=True)
class TrainOutcome:
    run_id: str
    experiment_id: str
    tracking_uri: str
    result: TrainResult
    tracker: MlflowCallback

    @property
    def model_uri(self) -> str:
        """The logged model (waits for the run's files to be written)."""
        return self.tracker.model_uri()

    def wait(self) -> TrainOutcome:
        """Block until the run's files and model are written and the run has ended."""
        self.tracker.model_uri()
        return self


def train(config: TrainConfig, *, tracking_uri: str | None = None, experiment: str = DEFAULT_EXPERIMENT,
          run_name: str | None = None, log_model: bool = True,
          callbacks: Sequence[TrainCallback] = (), wait: bool = True) -> TrainOutcome:
    """Train `config` and log everything to one MLflow run.

    The run's curves, checkpoint and model are written by the writer thread. With `wait=False`
    this returns as soon as training ends, so a loop of runs trains the next model while the
    last one's files are written; `outcome.wait()` (or `outcome.model_uri`) then waits for them.

    Under `mlflow run` (MLFLOW_RUN_ID set) the run MLflow Projects created is used, so the
    project run and ours are one and the same.
    """
    check_source(config)
    client = client_for(tracking_uri)
    existing = os.environ.get("MLFLOW_RUN_ID")
    # From the run's creation a signal sets a flag: training stops between epochs, run ends KILLED.
    with interrupts.saving():
        if existing:
            experiment_id = str(client.get_run(existing).info.experiment_id)
            run = RunLogger(client, existing, experiment_id=experiment_id)
        else:
            experiment_id = ensure_experiment(client, os.environ.get("MLFLOW_EXPERIMENT_NAME") or experiment)
            name = run_name or f"{config.model}-{config.dataset}"
            run = RunLogger.start(client, experiment_id, name=name, tags={TAG + "role": "train"})
        tracker = MlflowCallback(run, role="train", log_model=log_model, figure=learning_curve_bytes,
                                 diagnosis_tags=diagnosis_tags)
        try:
            result = train_model(config, [DiagnosisGuard(), *callbacks, tracker])
        except BaseException as exc:
            # Keep what was logged: the run ends FAILED (KILLED on Ctrl-C) with the reason, never RUNNING.
            tracker.flush()
            # Wait, so the failure tags below come after everything held back; the writer's own
            # error (if any) is already on the run, the training's is the one to report.
            with contextlib.suppress(Exception):
                tracker.model_uri()
            run.set_tags({TAG + "error": f"{type(exc).__name__}: {exc}"[:500]})
            run.end("KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED")
            raise
        outcome = TrainOutcome(run.run_id, experiment_id, client.tracking_uri, result, tracker)
        return outcome.wait() if wait or result.stop_reason == interrupts.STOP_REASON else outcome
