"""A user's own training function as a search trial: `fn(trial)` trains and reports, the search decides.

`Trial.report(step, metrics)` is the whole contract: the numbers go to the trial's child run in
batches (through the same writer as our own loop's), feed the pruner and the live diagnosis
guard, and `TrialPruned` comes back when the search stops the trial. The objective, the
diagnosis and the outcome are read from what was reported; nothing here imports torch unless
the function logs a model.
"""

from __future__ import annotations

import importlib
import inspect
import io
import math
import os
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlflow_tune import interrupts
from mlflow_tune.diagnostics.tags import diagnosis_tags
from mlflow_tune.tracking.models import ModelParts
from mlflow_tune.tracking.runs import TAG, finite
from mlflow_tune.tracking.writer import RunWrite
from mlflow_tune.training.config import ConfigError
from mlflow_tune.trials.judge import Judge
from mlflow_tune.trials.records import RUN_STATUS, Board, TrialOutcome, TrialSpec, best_of, worker_name

if TYPE_CHECKING:
    from mlflow_tune.tracking.writer import Forwarding, Writer

FLUSH_SECONDS = 2.0   # as for our own loop: one commit per trial every 2 s, not one per report


class TrialPruned(Exception):
    """Raised by `Trial.report` when the search stops the trial (pruned, or clearly not converging).

    Let it propagate out of the training function; catching it and returning ends the trial the same way.
    """


class MetricMissing(Exception):
    """The search's metric is not among what the function reports: no trial could ever be judged."""


class Trial:
    """What a user's training function gets: its parameters, its budget, and `report`."""

    def __init__(self, spec: TrialSpec, writer: Writer | Forwarding, board: Board):
        self.number = spec.tid
        self.run_id = spec.run_id
        self.tracking_uri = spec.tracking_uri   # where the run is: for a framework's own MLflow logger
        self.metric = spec.metric               # what the search judges
        # Set by a framework callback that stopped training for SIGINT/SIGTERM instead of raising
        # into the framework (Lightning turns a KeyboardInterrupt into sys.exit): ends the trial interrupted.
        self.interrupted = False
        self._files: list[tuple[str, bytes]] = []
        # A stage's epochs/subsample reach the function as its budget, not as parameters.
        self.params: dict[str, Any] = {k: v for k, v in spec.config.items()
                                       if k not in spec.budget or k in spec.params}
        self.budget: dict[str, Any] = dict(spec.budget)
        self._spec, self._writer = spec, writer
        self._judge = Judge(spec, board, self.params)
        self._pending: list[tuple[str, float, int]] = []
        self._start: dict[str, Any] = {"params": tuple((k, str(v)) for k, v in self.params.items()),
                                       "tags": ((TAG + "role", "trial"), (TAG + "trial", str(spec.tid)),
                                                (TAG + "worker", worker_name()),
                                                ("mlflow.runName", spec.run_name))}
        # The first report is written at once (params, tags, its point): a worker killed in the
        # trial's first seconds leaves a run that says what it was and how it began, for the diagnosis.
        self._last_flush = -math.inf
        self._reports = 0
        self.model: ModelParts | None = None

    def report(self, step: int, metrics: Mapping[str, float], log: bool = True) -> None:
        """Log `metrics` at `step` (e.g. the epoch); raises `TrialPruned` when the trial should stop.

        `log=False`: judge them (pruning, the guard, the diagnosis) without writing them, for a
        framework logger that already writes them to this trial's run."""
        if self._judge.stopped:
            raise TrialPruned(self._judge.stopped)
        if interrupts.requested():   # SIGINT/SIGTERM: the trial stops here, what it reported is kept
            raise interrupts.Interrupted
        values = {}
        for key, value in metrics.items():
            try:
                values[str(key)] = float(value)
            except (TypeError, ValueError):
                raise TypeError(f"trial.report: metric {key!r} must be a number, got {value!r}") from None
        metric = self._spec.metric
        if self._reports == 0 and metric not in values:
            raise MetricMissing(f"search.metric {metric!r} is not among the reported metrics "
                                f"({', '.join(sorted(values)) or 'none'}); name one of them in search.metric.")
        self._reports += 1
        self._judge.add(values)
        if log:
            self._pending += [(key, value, int(step)) for key, value in values.items() if math.isfinite(value)]
        if time.monotonic() - self._last_flush >= FLUSH_SECONDS:
            self.flush()
        if metric in values and self._judge.judge(values[metric], values, f"step {step}"):
            raise TrialPruned(self._judge.stopped)

    def log_model(self, model: Any, input_example: Any = None) -> None:
        """Keep a PyTorch model to log with the trial if it ends among the search's top-k (for promotion).

        Define the model's class in an importable module (not the script run as `__main__`): the
        model is pickled, and loading it elsewhere imports that module.
        """
        import torch

        buffer = io.BytesIO()
        torch.save(model, buffer)
        source = getattr(inspect.getmodule(type(model)), "__file__", None)
        user_code = (str(source),) if source and "site-packages" not in str(source) else ()
        self.model = ModelParts(buffer.getvalue(), input_example, user_code)

    def log_file(self, path: str, data: bytes) -> None:
        """Write `data` to the run's artifacts at `path` with the trial's last write (e.g. the kept
        epoch's checkpoint, `checkpoints/best.ckpt`)."""
        self._files.append((path, data))

    def flush(self) -> None:
        if self._start or self._pending:
            self._writer.submit(self._job(metrics=tuple(self._pending)))
            self._pending = []
        self._last_flush = time.monotonic()

    def _job(self, **parts: Any) -> RunWrite:
        if self._start:   # params and tags ride with the first write
            parts["params"] = self._start["params"]
            parts["tags"] = (*self._start["tags"], *parts.get("tags", ()))
            self._start = {}
        return RunWrite(self._spec.tracking_uri, self._spec.run_id, experiment_id=self._spec.experiment_id, **parts)

    def finish(self, board: Board) -> TrialOutcome:
        """The outcome from what was reported, written to the run in one job (the outcome tag last)."""
        spec = self._spec
        judge = self._judge
        objective = best_of(judge.points(), spec.mode, spec.objective_rule)
        status = "nonconvergent" if judge.verdict else "pruned" if judge.stopped else "completed"
        loss = spec.oriented(objective) if objective is not None else None
        steps = max((len(v) for v in judge.history.values()), default=0)
        diagnosis = judge.diagnosis(self.budget.get("epochs"))
        metrics = dict[str, float]()
        if loss is not None and objective is not None:
            board.record(spec.tid, loss)
            metrics = finite({"objective": objective, "loss": loss})
            if status == "completed" and self.model is not None and board.rank(loss) <= spec.top_k_models:
                board.offer(spec.tid, spec.run_id, loss, self.model, spec.top_k_models)
        tags = {**diagnosis_tags(diagnosis), TAG + "outcome": status,
                **({TAG + "stop_reason": judge.stopped[:500]} if judge.stopped else {}),
                **({TAG + "pruned": "true"} if status == "pruned" else {})}
        self._writer.submit(self._job(
            metrics=(*self._pending, *((k, v, steps) for k, v in metrics.items())), tags=tuple(tags.items()),
            files=tuple(self._files), status=RUN_STATUS.get(status, "FINISHED")))
        self._pending = []
        return TrialOutcome(spec.tid, spec.run_id, status, objective, loss, diagnosis.label if diagnosis else "",
                            steps, judge.stopped, spec.params)


def resolve(objective: Any) -> Callable[[Trial], Any]:
    """The training function: a callable, or "module:function" importable from the working directory."""
    if callable(objective):
        return objective   # type: ignore[no-any-return]
    text = str(objective)
    module_name, _, name = text.partition(":")
    if not module_name or not name:
        raise ConfigError(f"objective {text!r} must be module:function, e.g. mypackage.train:fit")
    if os.getcwd() not in sys.path:   # `mlflow-tune` is a console script: the cwd is not on the path
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"objective {text!r}: cannot import {module_name!r} from {Path.cwd()} ({exc})") from None
    fn = getattr(module, name, None)
    if not callable(fn):
        found = ", ".join(n for n, v in vars(module).items()
                          if inspect.isfunction(v) and v.__module__ == module.__name__ and not n.startswith("_"))
        raise ConfigError(f"objective {text!r}: {module_name} has no function {name!r}; "
                          f"functions there: {found or 'none'}")
    return fn  # type: ignore[no-any-return]


def run_function(spec: TrialSpec, writer: Writer | Forwarding, board: Board) -> TrialOutcome:
    """Run the user's function as trial `spec`; its own exceptions fail this trial only (run_trial)."""
    fn = resolve(spec.objective)
    if spec.threads:
        _set_torch_threads(spec.threads)
    trial = Trial(spec, writer, board)
    try:
        fn(trial)
        if trial.interrupted:
            raise interrupts.Interrupted
    except TrialPruned:
        pass
    except MetricMissing as exc:
        trial.flush()
        writer.submit(RunWrite(spec.tracking_uri, spec.run_id, status="FAILED",
                               tags=((TAG + "outcome", "failed"), (TAG + "error", str(exc)[:500]))))
        return TrialOutcome(spec.tid, spec.run_id, "failed", error=str(exc), params=spec.params, fatal=True)
    except BaseException:
        trial.flush()   # what was reported is kept; run_trial records the failure after it
        raise
    return trial.finish(board)


def _set_torch_threads(threads: int) -> None:
    """`cores / parallel` threads per worker, as for our own loop; nothing if the function has no torch."""
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(threads)
