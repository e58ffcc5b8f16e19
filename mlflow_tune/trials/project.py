"""A trial run as an MLflow Project (`mlflow run` of any project's entry point), watched while it runs.

The project knows nothing of mlflow-tune: it logs its own metrics to the run MLflow gives it.
While its process runs, the trial's metric history is read back from the tracking store every
`POLL_SECONDS`; new points feed the pruner and the live guard exactly as a local trial's epochs
do, and a trial that should stop is stopped (SIGTERM to its process group, SIGKILL after
`GRACE_SECONDS`). Its stdout and stderr go to the trial's `stdout.txt`, not into our output.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from mlflow_tune import interrupts
from mlflow_tune.diagnostics.runs import pick_keys
from mlflow_tune.diagnostics.tags import diagnosis_tags
from mlflow_tune.tracking.runs import TAG, RunLogger, finite
from mlflow_tune.trials.judge import Judge
from mlflow_tune.trials.records import RUN_STATUS, Board, TrialOutcome, TrialSpec, best_of

POLL_SECONDS = 0.5      # a store query per watched metric; epochs of real projects take longer
GRACE_SECONDS = 5.0     # after SIGTERM, before SIGKILL
SEARCH_ENV, TRIAL_ENV = "MLFLOW_TUNE_SEARCH_RUN_ID", "MLFLOW_TUNE_TRIAL"   # read by the run context provider


def run_project_trial(spec: TrialSpec, run: RunLogger, board: Board) -> TrialOutcome:
    """Run the trial's project entry point in its pre-created run, watch it, and record the outcome."""
    # As `mlflow run` logs the -P parameters of a run it makes (this one is ours), as passed.
    run.log_batch(params={k: str(v) for k, v in spec.config.items()}, tags={"mlflow.runName": spec.run_name})
    with tempfile.TemporaryDirectory(prefix="mlflow-tune-trial-") as tmp:
        log = Path(tmp) / "stdout.txt"
        with log.open("wb") as out:
            proc = _start(spec, out)
            watch = _Watch(spec, run, board)
            stopped = watch.follow(proc)
        run.log_file(log)
    ok = proc.returncode == 0
    objective = best_of(watch.points(), spec.mode, spec.objective_rule)
    status = ("nonconvergent" if watch.verdict else "pruned") if stopped else \
        "completed" if ok and objective is not None else "failed"
    loss = spec.oriented(objective) if objective is not None else None
    steps = len(watch.points())
    diagnosis = watch.diagnosis()
    if loss is not None and objective is not None:
        run.log_metrics(finite({"objective": objective, "loss": loss}), step=steps)
        board.record(spec.tid, loss)
    error = "" if ok or stopped else (f"project run exited with code {proc.returncode}" +
                                      ("" if objective is not None else f"; it logged no {spec.metric!r}"))
    tags = {**diagnosis_tags(diagnosis), TAG + "role": "trial", TAG + "trial": str(spec.tid),
            **({TAG + "stop_reason": stopped[:500]} if stopped else {}),
            **({TAG + "pruned": "true"} if status == "pruned" else {}),
            **({TAG + "error": error[:500]} if error else {})}
    run.set_tags({**tags, TAG + "outcome": status})   # the outcome last: --resume trusts it
    run.end(RUN_STATUS.get(status, "FINISHED"))
    return TrialOutcome(spec.tid, spec.run_id, status, objective, loss, diagnosis.label if diagnosis else "",
                        steps, stopped or error, spec.params)


def _start(spec: TrialSpec, out: Any) -> subprocess.Popen[bytes]:
    """`mlflow run` of the entry point into the trial's run, in its own process group."""
    import sys

    command = [sys.executable, "-m", "mlflow", "run", spec.project, "-e", spec.entry_point,
               "--env-manager", spec.env_manager, "--run-id", spec.run_id,
               *(a for k, v in spec.config.items() for a in ("-P", f"{k}={v}"))]
    env = {**os.environ, "MLFLOW_TRACKING_URI": spec.tracking_uri, SEARCH_ENV: spec.search_run_id,
           TRIAL_ENV: str(spec.tid), "MLFLOW_EXPERIMENT_ID": spec.experiment_id}
    env.pop("MLFLOW_RUN_ID", None)   # the search's own, when the search itself runs under `mlflow run`
    env.pop("MLFLOW_EXPERIMENT_NAME", None)
    return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)


class _Watch(Judge):
    """The trial's metrics as the project logs them, read back from the store, and judged."""

    def __init__(self, spec: TrialSpec, run: RunLogger, board: Board):
        super().__init__(spec, board)
        self.run = run
        self.keys = {spec.metric, *spec.curve_keys.values()}

    def _poll(self) -> list[float]:
        """New points of the search's metric since the last poll (the other curves refreshed too)."""
        logged = set(self.run.client.get_run(self.run.run_id).data.metrics)
        before = len(self.points())
        for key in self.keys | set(pick_keys(logged, {}).values()):
            points = sorted(self.run.client.get_metric_history(self.run.run_id, key),
                            key=lambda m: (m.step, m.timestamp))
            if points:
                self.history[key] = [m.value for m in points]
        return list(self.points()[before:])

    def follow(self, proc: subprocess.Popen[bytes]) -> str:
        """Wait for `proc`, judging each new point; the reason it was stopped, or ""."""
        while True:
            finished = proc.poll() is not None
            with contextlib.suppress(Exception):   # a store hiccup costs one poll, not the trial
                new = self._poll()
                for i, value in enumerate(new):
                    # each curve's point at the same place from its end: the values logged with this one
                    latest = {k: v[i - len(new)] for k, v in self.history.items() if len(v) >= len(new)}
                    reason = self.judge(value, latest, f"point {len(self.points()) + i - len(new)}")
                    if reason and not finished:
                        _stop(proc)
                        return reason
                # Points read after the process ended still fed the board (other trials' pruning),
                # but a trial that has already finished is not "stopped" by them.
                self.stopped = ""
            if finished:
                return ""
            if interrupts.requested():   # the project runs in its own session: no Ctrl-C reaches it
                _stop(proc)
                raise interrupts.Interrupted
            time.sleep(POLL_SECONDS)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the trial's whole process group (`mlflow run` and the script it started), then SIGKILL."""
    for sig, wait in ((signal.SIGTERM, GRACE_SECONDS), (signal.SIGKILL, 30.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(wait)
            return
