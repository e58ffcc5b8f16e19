"""Running one search trial where a worker runs it: our loop, a user's function, or an MLflow Project.

The driver creates every child run first and hands its id here, so whatever happens to the
worker, the driver can still end the run and the search can resume.
"""

from __future__ import annotations

import traceback
from dataclasses import replace
from typing import TYPE_CHECKING

from mlflow_tune import interrupts
from mlflow_tune.diagnostics.tags import diagnosis_tags
from mlflow_tune.reports.curves import learning_curve_bytes
from mlflow_tune.tracking.callback import MlflowCallback
from mlflow_tune.tracking.runs import TAG, RunLogger, RunRef, client_for, finite
from mlflow_tune.training.config import from_mapping
from mlflow_tune.trials.function import run_function
from mlflow_tune.trials.project import run_project_trial
from mlflow_tune.trials.pruning import PruningCallback
from mlflow_tune.trials.records import RUN_STATUS, Board, TrialOutcome, TrialSpec, worker_name

if TYPE_CHECKING:
    from mlflow_tune.tracking.writer import Forwarding, RunWrite, Writer
    from mlflow_tune.training.records import TrainResult


def _writer_for(spec: TrialSpec, board: Board) -> Writer | Forwarding:
    from mlflow_tune.tracking.writer import Forwarding, Writer, shared

    if board.outbox is not None:        # a worker process: the driver's writer writes
        return Forwarding(board.outbox)
    return shared() if spec.background_writes else Writer("here")


def run_trial(spec: TrialSpec, board: Board) -> TrialOutcome:
    """Train one trial into its (pre-created) child run; never raises for a trial's own failure."""
    from mlflow_tune.tracking.writer import RunWrite

    if spec.project:
        return run_project_trial(spec, RunLogger(client_for(spec.tracking_uri), spec.run_id), board)
    writer = _writer_for(spec, board)
    try:
        if spec.objective is not None:
            return run_function(spec, writer, board)
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
    from mlflow_tune.training.selection import Selection

    cfg = from_mapping(spec.config)
    pruning = PruningCallback(spec, board)
    # No figure per trial (the MLflow UI charts the per-epoch metrics, the report draws them all);
    # models only for the level's top-k (see _outcome), so the writer keeps pace with short trials.
    run = RunRef(spec.tracking_uri, spec.run_id, experiment_id=spec.experiment_id)
    tracker = MlflowCallback(run, role="trial", log_model=False, terminate=False, writer=writer,
                             plot_at_end=False, first_epoch_at_once=False, hold_end=True,
                             figure=learning_curve_bytes, diagnosis_tags=diagnosis_tags,
                             extra_tags={TAG + "trial": str(spec.tid), TAG + "worker": worker_name(),
                                                 "mlflow.runName": spec.run_name})
    try:
        # the kept weights, their test metrics and the objective all come from one epoch
        result = train_model(cfg, [DiagnosisGuard(), pruning, tracker],
                             selection=Selection(spec.metric, spec.mode, spec.objective_rule))
        if result.stop_reason == interrupts.STOP_REASON:
            raise interrupts.Interrupted
        outcome, last = _outcome(spec, result, pruning, board)
    except BaseException:
        tracker.flush()   # params and epochs so far go in before run_trial records the failure
        raise
    assert tracker.held is not None
    # One job for the whole end of the trial: its last epochs and files, then the outcome.
    held, tracker.held = tracker.held, None
    writer.submit(replace(held, metrics=held.metrics + last.metrics,
                          tags=held.tags + last.tags, status=last.status))
    return outcome


def _outcome(spec: TrialSpec, result: TrainResult, pruning: PruningCallback,
             board: Board) -> tuple[TrialOutcome, RunWrite]:
    """The trial's outcome, and what its run gets for it (objective, status); a top-k trial's model
    goes to the board, which logs the level's best k when the level ends."""
    from mlflow_tune.tracking.models import model_parts
    from mlflow_tune.tracking.writer import RunWrite

    objective = result.objective
    if pruning.reason:
        status = "pruned"
    elif result.status == "nonfinite" or result.stop_reason.startswith("nonconvergent"):
        status = "nonconvergent"
    else:
        status = "completed"
    loss = spec.oriented(objective) if objective is not None else None
    metrics: dict[str, float] = {}
    if loss is not None and objective is not None:
        board.record(spec.tid, loss)
        metrics = finite({"objective": objective, "loss": loss})
        # The full model costs more than a short trial's other writes together (~40 ms): only the
        # level's k best are logged, when the level ends (7 of W1's 8 trials were once top-k so far).
        if status == "completed" and result.best_state and board.rank(loss) <= spec.top_k_models:
            board.offer(spec.tid, spec.run_id, loss, model_parts(result.model, result.data.val.x[:5]),
                        spec.top_k_models)
    diagnosis = result.diagnosis.label if result.diagnosis else ""
    # The outcome tag marks a trial as done for --resume, so it is written last, with the status:
    # a trial whose writes were lost (kill -9) is re-run rather than left half-written.
    done = ((TAG + "outcome", status), *(((TAG + "pruned", "true"),) if status == "pruned" else ()))
    last = RunWrite(spec.tracking_uri, spec.run_id, tags=done,
                    metrics=tuple((k, v, len(result.history)) for k, v in metrics.items()),
                    status=RUN_STATUS.get(status, "FINISHED"))
    return TrialOutcome(spec.tid, spec.run_id, status, objective, loss, diagnosis, len(result.history),
                        result.stop_reason if status != "completed" else "", spec.params), last
