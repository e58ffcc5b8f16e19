"""Hyperopt searches as nested MLflow runs: schedule trials, stop the search, resume it.

The driver asks the suggester for parameters, creates each child run itself (explicit
parent id), hands the trial to an executor and tells the suggester the result. All state
worth keeping is in MLflow, so `--resume` rebuilds a search from its child runs.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Callable, Collection, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, wait
from typing import TYPE_CHECKING, Any

from mlflow_tune import faults, interrupts
from mlflow_tune.config.settings import SearchSettings
from mlflow_tune.executors.local import make_executor
from mlflow_tune.samplers.suggester import Suggester
from mlflow_tune.study.child_runs import ChildRuns
from mlflow_tune.study.level import Level, LevelResult, best_trial
from mlflow_tune.study.listener import SearchListener
from mlflow_tune.tracking.runs import TAG, RunLogger, child_runs, client_for, end_deleted_children
from mlflow_tune.tracking.store import short_cause, storage_error
from mlflow_tune.tracking.writer import DRAIN_SECONDS
from mlflow_tune.training.config import ConfigError
from mlflow_tune.trials.records import RUN_STATUS, Board, TrialOutcome, TrialSpec
from mlflow_tune.trials.runner import run_trial

if TYPE_CHECKING:
    from mlflow_tune.tracking.writer import Writer

LOST = interrupts.STORE_LOST
REFUSED = interrupts.STORE_REFUSED
LOST_DRAIN_SECONDS = 10.0
FINAL = ("completed", "pruned", "nonconvergent", "failed")
END_STATUS = {"completed": "FINISHED", **RUN_STATUS}


def threads_per_trial(parallel: int) -> int:
    """Split the cores between parallel trials so they do not oversubscribe the CPU."""
    return max(1, (os.cpu_count() or 1) // parallel)


class _Stops:
    """Search-level stops: budget, time, no progress, target."""

    def __init__(self, settings: SearchSettings, max_trials: int, restored: list[TrialOutcome]):
        self.s, self.max_trials = settings, max_trials
        self.start = time.monotonic()
        self.started = len(restored)
        self.best = math.inf
        self.since_best = 0
        self.fatal = ""   # a trial found the search itself broken: no more trials
        for o in restored:
            self.update(o)

    def update(self, o: TrialOutcome) -> None:
        if o.loss is not None and o.status == "completed" and o.loss < self.best:
            self.best, self.since_best = o.loss, 0
        elif o.status in FINAL:
            self.since_best += 1

    def reason(self) -> str:
        s = self.s
        if self.fatal:
            return "error"
        if self.started >= self.max_trials:
            return "max_trials"
        if s.timeout and time.monotonic() - self.start >= s.timeout:
            return "timeout"
        if s.no_progress and self.since_best >= s.no_progress:
            return "no_progress"
        if s.target is not None and self.best <= (s.target if s.mode == "min" else -s.target):
            return "target"
        return ""


class _Stop(Exception):
    """The interrupt flag was seen (or a trial stopped on it): leave the scheduling loop."""


def run_level(level: Level, listener: SearchListener) -> LevelResult:
    s = level.settings
    suggester = Suggester.fixed(level.points) if level.points is not None else \
        Suggester(level.space, s.algo, s.seed + level.first_tid, level.max_trials)
    board = Board()
    for tid, known, loss in level.warm if level.points is None else ():
        suggester.learn(tid, known, loss)
    # Numbers are never reused: an interrupted trial keeps its number, its re-run gets a new one.
    next_tid = max([level.first_tid - 1, level.last_tid, *(o.tid for o in level.restored)]) + 1
    if level.points is None:
        suggester.skip(next_tid - level.first_tid)
    for o in level.restored:
        suggester.restore(o.tid, o.params, o.loss if o.status != "failed" else None)
        if s.pruning != "none":   # earlier trials' curves keep informing the pruner
            history = level.parent.client.get_metric_history(o.run_id, s.metric)
            board.curves[o.tid] = [v if s.mode == "min" else -v for v in (m.value for m in history)]
    stops = _Stops(s, level.max_trials, level.restored)
    outcomes = list(level.restored)
    running: dict[Future[TrialOutcome], TrialSpec] = {}
    starting: TrialSpec | None = None
    stopped_by = ""
    executor = make_executor(s.executor, s.parallel, s.spark_master)
    writer = executor.ahead_writer()
    # Trials training in this process or in the worker pool get their runs made ahead by the
    # writer, one per trial slot; a project trial's run is made by the driver as it starts.
    runs = ChildRuns(level, ahead=None if s.project else writer, depth=s.parallel)

    def finished(outcome: TrialOutcome) -> None:
        steps = len(board.curves.get(outcome.tid, ())) if outcome.status == "pruned" else None
        suggester.tell(outcome.tid, outcome.loss if outcome.status != "failed" else None, steps)
        # Reported, and counted, only once its writes are in the store: a trial the terminal calls
        # completed holds all its points, whatever happens to the process next.
        if writer is not None:
            try:
                writer.wait_for(outcome.run_id, DRAIN_SECONDS)
            except Exception as exc:
                _not_saved(level, listener, outcome, exc)
                return
        stops.update(outcome)
        outcomes.append(outcome)
        listener.trial_finished(outcome, best_trial(outcomes))
        faults.point(f"after-trial-{outcome.status}")
        if outcome.fatal:
            stops.fatal = outcome.error

    try:
        while True:
            while len(running) < s.parallel and not (stopped_by := stops.reason()):
                if interrupts.requested():
                    raise _Stop
                params = suggester.ask(next_tid)
                if params is None:
                    stopped_by = "grid_exhausted"
                    break
                starting = spec = _start_trial(level, next_tid, params, runs,
                                               more=level.max_trials - stops.started - 1)
                listener.trial_started(spec.tid, params)
                faults.point("trial-started")
                running[executor.submit(run_trial, spec, board)] = spec
                starting = None
                stops.started += 1
                next_tid += 1
            if interrupts.requested():
                raise _Stop
            if not running:
                break
            # Woken every 0.2 s to look at the interrupt flag: signals never raise in here.
            done, _ = wait(list(running), timeout=0.2, return_when=FIRST_COMPLETED)
            if done and interrupts.requested():   # e.g. its worker died of the same SIGTERM: not failed
                raise _Stop
            for future in done:
                outcome = _collect(future, running.pop(future))
                if outcome.status == "interrupted":   # the trial saw the flag first
                    raise _Stop
                finished(outcome)
    except (_Stop, KeyboardInterrupt):
        _stop_running(level, executor, writer, running, starting, finished)
        return LevelResult(outcomes, "interrupted", interrupted=True)
    except Exception as exc:   # e.g. the run made ahead for the next trial could not be written
        if not _store_failure(level, exc):
            raise
        _stop_running(level, executor, writer, running, starting, finished)
        return LevelResult(outcomes, "interrupted", interrupted=True)
    finally:
        _log_kept_models(level, board, writer, outcomes)
        executor.close()
        runs.discard()
    return LevelResult(outcomes, stopped_by or "max_trials")


def _store_answers(level: Level) -> bool:
    try:
        level.parent.status()
        return True
    except Exception:
        return False


def _store_failure(level: Level, exc: BaseException) -> bool:
    """Whether `exc` is the store failing (refusing a write, or gone); if so the search is asked to
    stop, as a signal would: every run still running is ended, and --resume completes the rest."""
    reason = f"{type(exc).__name__}: {exc}"[:2000]
    if storage_error(exc):
        interrupts.request(REFUSED + reason)
    elif not _store_answers(level):
        interrupts.request(LOST + reason)
    return interrupts.store_failed()


def _not_saved(level: Level, listener: SearchListener, outcome: TrialOutcome, exc: BaseException) -> None:
    """A trial whose last writes failed: not reported finished, not counted; the search stops (the
    store that failed it would fail the next one too) and --resume re-runs it (its outcome tag, if
    the store takes it, says interrupted; a write that still lands later says completed, and then
    --resume counts it done)."""
    if not _store_failure(level, exc):   # it answers, yet did not take the trial's writes: refused
        interrupts.request(REFUSED + f"{type(exc).__name__}: {exc}"[:2000])
    if not interrupts.store_lost():   # ended where the store still takes that; a lost store's runs --resume ends
        with contextlib.suppress(Exception):
            run = RunLogger(level.parent.client, outcome.run_id)
            run.set_tags({TAG + "outcome": "interrupted", TAG + "interrupted": "true"})
            run.end("KILLED")
    cause = short_cause(exc)
    listener.message(f"trial {outcome.tid}: not saved ({cause}); --resume re-runs it")


def _stop_running(level: Level, executor: Any, writer: Writer | None, running: dict[Future[TrialOutcome], TrialSpec],
                  starting: TrialSpec | None, finished: Callable[[TrialOutcome], None]) -> None:
    """Stop the trials still running; keep those that finished before they could be stopped.

    The writer drains first (bounded), so a trial whose end was queued ends FINISHED with its
    outcome and is reported; only runs still RUNNING after that are ended KILLED (interrupted)."""
    executor.abort()
    lost = interrupts.store_lost()
    if writer is not None:   # a lost store: a short wait, what it drops --resume re-runs
        writer.drain(LOST_DRAIN_SECONDS if lost else DRAIN_SECONDS)
    for future, spec in running.items():
        outcome = future.result() if future.done() and future.exception() is None else None
        if outcome is not None and outcome.status in FINAL:
            finished(outcome)
        elif not lost:   # a lost store: --resume ends the run
            _mark_interrupted(level.parent, spec.run_id, spec)
    if starting is not None and not lost:   # its run exists but was not yet handed to the executor
        _mark_interrupted(level.parent, starting.run_id, starting)


def _start_trial(level: Level, tid: int, params: dict[str, Any], runs: ChildRuns, more: int) -> TrialSpec:
    s = level.settings
    values = {**level.base, **params}
    ours = not s.project and level.objective is None   # a foreign project or function may not know num_threads
    if not values.get("num_threads") and ours:
        values["num_threads"] = threads_per_trial(s.parallel)
    return TrialSpec(tid, runs.take(tid, more), level.tracking_uri, values, dict(params), s.metric, s.mode,
                     s.pruning, s.pruning_warmup, s.min_trials_for_pruning, s.asha_reduction,
                     s.top_k_models, s.project, s.entry_point, s.env_manager,
                     background_writes=s.parallel <= 1 and not s.project, experiment_id=level.experiment_id,
                     objective=level.objective, budget=dict(level.budget),
                     threads=threads_per_trial(s.parallel) if level.objective is not None and s.parallel > 1 else 0,
                     search_run_id=level.search_run_id or level.parent.run_id, curve_keys=dict(level.curve_keys),
                     objective_rule=s.objective)


def _log_kept_models(level: Level, board: Board, writer: Writer | None, outcomes: list[TrialOutcome]) -> None:
    """The level's k best completed trials' models, logged to their runs now the level is over."""
    from mlflow_tune.tracking.writer import RunWrite

    finished = {o.tid for o in outcomes if o.status == "completed"}
    for _, run_id, parts in board.take_models(level.settings.top_k_models, finished):
        if writer is not None:
            writer.submit(RunWrite(level.tracking_uri, run_id, model=parts, experiment_id=level.experiment_id))


def _collect(future: Future[TrialOutcome], spec: TrialSpec) -> TrialOutcome:
    try:
        return future.result()
    except Exception as exc:   # the worker itself died (e.g. killed, out of memory)
        message = f"worker failed: {type(exc).__name__}: {exc}"
        run = RunLogger(client_for(spec.tracking_uri), spec.run_id)
        run.set_tags({TAG + "outcome": "failed", TAG + "error": message[:500]})
        run.end("FAILED")
        return TrialOutcome(spec.tid, spec.run_id, "failed", error=message, params=spec.params)


def _mark_interrupted(parent: RunLogger, run_id: str, spec: TrialSpec | None = None) -> None:
    """End a trial's run KILLED (outcome interrupted). With its spec, a run stopped before it logged
    anything gets its name and params too: the table says what was interrupted, not `trial-6`."""
    run = RunLogger(parent.client, run_id)
    # A store refusing writes may refuse these too: --resume ends what is left RUNNING.
    with contextlib.suppress(Exception) if interrupts.store_refused() else contextlib.nullcontext():
        found = parent.client.get_run(run_id)
        if found.info.status != "RUNNING":
            return
        tags = {TAG + "outcome": "interrupted", TAG + "interrupted": "true"}
        if spec is not None and not found.data.params:
            run.log_batch(params={k: str(v) for k, v in spec.params.items()},
                          tags={**tags, "mlflow.runName": spec.run_name})
        else:
            run.set_tags(tags)
        run.end("KILLED")


def restore_trials(client: Any, experiment_id: str, parent_run_id: str, names: Collection[str],
                   settings: SearchSettings) -> tuple[list[TrialOutcome], int]:
    """Finished trials of a level read back from MLflow, and the highest trial number used.

    Runs left RUNNING by a killed process are ended KILLED (outcome interrupted).
    """
    restored, last_tid = [], -1
    end_deleted_children(client, experiment_id, parent_run_id)
    for run in child_runs(client, experiment_id, parent_run_id):
        tags, tid = run.data.tags, int(run.data.tags.get(TAG + "trial", "-1"))
        if tags.get(TAG + "role") != "trial" or tid < 0:
            continue
        last_tid = max(last_tid, tid)
        outcome = tags.get(TAG + "outcome", "")
        if outcome not in FINAL:
            if run.info.status == "RUNNING":
                _mark_interrupted(RunLogger(client, parent_run_id), run.info.run_id)
            continue
        if run.info.status == "RUNNING":
            # The outcome tag is a trial's last write but one: the run's end came next, and a
            # kill -9 can fall between the two. Everything else is in, so only the end is missing.
            RunLogger(client, run.info.run_id).end(END_STATUS[outcome])
        objective = run.data.metrics.get("objective")
        loss = None if objective is None else (objective if settings.mode == "min" else -objective)
        params = {k: v for k, v in run.data.params.items() if k in names}
        restored.append(TrialOutcome(tid, run.info.run_id, outcome, objective, loss,
                                     tags.get(TAG + "diagnosis", ""), 0, tags.get(TAG + "error", ""),
                                     params))
    return restored, last_tid


def check_resumable(client: Any, run_id: str) -> Any:
    from mlflow.exceptions import MlflowException

    try:
        run = client.get_run(run_id)
    except MlflowException:
        raise ConfigError(f"--resume {run_id!r}: no such run in this tracking store.") from None
    role = run.data.tags.get(TAG + "role")
    if role != "search":
        raise ConfigError(f"--resume {run_id!r} is a {role or 'plain'} run; give the search (parent) run id.")
    return run


def param_summary(params: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items())
