"""The tracking writer: a run's metrics, params, tags, files and model, written off the training path.

A SQLite commit of a run's metrics, a figure and an MLflow model each cost as much as several
epochs of a small model, so they are written by one thread of this process in submission order
(new runs first) while training goes on. `drain()` waits for everything submitted; it runs at
exit too, so nothing is lost, and a job that fails still ends its run (FAILED, with the error).

Why a thread and not a helper process (what this module used to start): measured as a user runs
it (`bench/process.py`: 8 trials as one `mlflow-tune search` process on a 2-core machine), the
helper's start-up, imports and teardown cost more than the GIL the thread shares with training:
8.6 s with the process, 7.1-7.5 s with the thread, the bare floor 7.2 s. Inside one long-lived
process training with one torch thread (`bench/overhead.py`) the process was ahead (1.23x of bare
against 1.59x, for 0.1-s runs), but whole processes are what people run. MLflow's asynchronous
logging (`log_batch(..., synchronous=False)`) takes metrics only; files, models and the run's end
must follow them in order, so one ordered queue of our own stays simpler (`bench/writer.py`).
"""

from __future__ import annotations

import atexit
import contextlib
import io
import itertools
import logging
import queue
import tempfile
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlflow_tune import interrupts
from mlflow_tune.tracking.models import ModelParts
from mlflow_tune.training.records import EpochRecord

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunWrite:
    """What one job writes to one run, in this order; every part optional."""

    tracking_uri: str
    run_id: str
    metrics: tuple[tuple[str, float, int], ...] = ()   # (key, value, step), with params in one batch
    params: tuple[tuple[str, str], ...] = ()
    texts: tuple[tuple[str, str], ...] = ()      # (artifact path, text), e.g. a trial's error.txt
    history: tuple[EpochRecord, ...] = ()       # -> metrics_history.csv
    checkpoint: bytes = b""                      # -> checkpoints/best_checkpoint.pt
    model: ModelParts | None = None              # -> an MLflow PyTorch model
    figure: bytes = b""                          # -> learning_curves.png, drawn by the caller (a PNG)
    files: tuple[tuple[str, bytes], ...] = ()    # (artifact path, bytes), e.g. checkpoints/best.ckpt
    tags: tuple[tuple[str, str], ...] = ()       # set after the files: e.g. the trial's outcome marker
    status: str = ""                             # then end the run with this status
    experiment_id: str = ""                      # the run's, when known (the model needs it)
    create: tuple[tuple[str, str], ...] = ()     # with run_id "": create a run with these tags in
                                                 # experiment_id (name from tag mlflow.runName)


def history_csv(history: tuple[EpochRecord, ...]) -> str:
    header = "epoch," + ",".join(history[0].metrics()) if history else "epoch"
    rows = [",".join([str(r.epoch), *(f"{v:.6g}" for v in r.metrics().values())]) for r in history]
    return "\n".join([header, *rows]) + "\n"


def write_run(job: RunWrite) -> str:
    """Write `job` (in whichever process runs it); returns the model URI or ""."""
    from mlflow_tune.tracking.runs import TAG, RunLogger, client_for

    if job.create:   # returns the new run's id
        tags = dict(job.create)
        return RunLogger.start(client_for(job.tracking_uri), job.experiment_id, name=tags.pop("mlflow.runName", None),
                               tags=tags).run_id
    run = RunLogger(client_for(job.tracking_uri), job.run_id)
    if not (job.history or job.figure or job.checkpoint or job.model or job.texts or job.files):   # numbers only
        run.log_batch(job.metrics, params=dict(job.params), tags=dict(job.tags))
        if job.status:
            run.end(job.status)
        return ""
    model_uri = ""
    try:
        run.log_batch(job.metrics, params=dict(job.params))
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            for name, text in job.texts:
                (folder / name).write_text(text)
            for name, data in job.files:
                (folder / name).parent.mkdir(parents=True, exist_ok=True)
                (folder / name).write_bytes(data)
            if job.history:
                (folder / "metrics_history.csv").write_text(history_csv(job.history))
            if job.figure:
                (folder / "learning_curves.png").write_bytes(job.figure)
            if job.checkpoint:
                (folder / "checkpoints").mkdir()
                (folder / "checkpoints" / "best_checkpoint.pt").write_bytes(job.checkpoint)
            if any(folder.iterdir()):
                run.log_dir(folder)
        if job.model is not None:
            from mlflow_tune.tracking.models import log_model

            model_uri = log_model(run.client, run.run_id, job.model)
    except Exception as exc:
        run.set_tags({TAG + "files_error": f"{type(exc).__name__}: {exc}"[:500]})
        if job.status:
            run.end("FAILED")
        raise
    tags = {**dict(job.tags), **({TAG + "model_uri": model_uri} if model_uri else {})}
    if tags:
        run.set_tags(tags)
    if job.status:
        run.end(job.status)
    return model_uri


class _Thread:
    """One writing thread in this process, in submission order except that new runs go first.

    A run made ahead for a trial is wanted the moment the trial can start, and no other job
    depends on it, so it does not wait behind files.
    """

    def __init__(self) -> None:
        self.jobs: queue.PriorityQueue[tuple[int, int, Future[str] | None, RunWrite | None]] = queue.PriorityQueue()
        self.count = itertools.count()
        self.thread = threading.Thread(target=self._run, daemon=True, name="mlflow-tune-writer")
        self.thread.start()

    def submit(self, job: RunWrite) -> Future[str]:
        future: Future[str] = Future()
        self.jobs.put((0 if job.create else 1, next(self.count), future, job))
        return future

    def _run(self) -> None:
        while True:
            _, _, future, job = self.jobs.get()
            if future is None or job is None:
                return
            try:
                future.set_result(write_run(job))
            except Exception as exc:
                future.set_exception(RuntimeError(f"{type(exc).__name__}: {exc}"))

    def close(self, timeout: float | None = None) -> None:
        self.jobs.put((2, next(self.count), None, None))
        self.thread.join(timeout)


WHERE = ("thread", "here")
# How long an exit or an interrupt waits for queued writes: a store that stopped answering must
# not hold the process (MLflow's own HTTP retries are bounded too, see tracking/store.py).
DRAIN_SECONDS = 60.0
LOST_DRAIN_SECONDS = 5.0


class Writer:
    """Runs jobs in a thread (`where="thread"`) or right here, in order."""

    def __init__(self, where: str = "thread"):
        if where not in WHERE:
            raise ValueError(f"where={where!r} is not valid; choose one of: {', '.join(WHERE)}.")
        self.where = where
        self._thread: _Thread | None = None
        self._pending: list[tuple[Future[str], RunWrite]] = []
        self._failed: dict[str, str] = {}   # run id -> why a job of it failed or was not written in time
        self._lock = threading.Lock()   # a search's worker pipes submit from several reader threads

    def start(self) -> Writer:
        """Start the writing thread now."""
        if self.where != "here" and self._thread is None:
            self._thread = _Thread()
        return self

    def submit(self, job: RunWrite) -> Future[str]:
        if self.where == "here":
            future: Future[str] = Future()
            try:
                future.set_result(write_run(job))
            except Exception as exc:
                future.set_exception(exc)
            return future
        with self._lock:
            thread = self._thread or self.start()._thread
            assert thread is not None
            future = thread.submit(job)
            # Forget jobs written fine (they hold model bytes); keep the rest for drain() to report.
            self._pending = [(f, j) for f, j in self._pending if not f.done() or f.exception() is not None]
            self._pending.append((future, job))
        return future

    def drain(self, timeout: float | None = None) -> list[str]:
        """Wait for every job (at most `timeout` seconds in all); returns one line per job that
        failed (its run was ended FAILED) or was not written in time."""
        errors = []
        with self._lock:
            pending, self._pending = self._pending, []
        deadline = None if timeout is None else time.monotonic() + timeout
        for future, job in pending:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                future.result(left)
            except TimeoutError:
                errors.append(f"run {job.run_id}: not written within {timeout:g} s")
                self._failed.setdefault(job.run_id, errors[-1])
            except Exception as exc:
                errors.append(f"run {job.run_id}: files not written: {exc}")
                self._failed.setdefault(job.run_id, errors[-1])
                with contextlib.suppress(Exception):   # the store may be the thing that failed
                    _end_failed(job, exc)
        if not interrupts.store_failed():   # else the search's own stop line names the cause, once
            for line in errors:
                _log.warning("mlflow-tune: %s", line)
        return errors

    def wait_for(self, run_id: str, timeout: float | None = None) -> None:
        """Wait until everything submitted so far for run `run_id` is written; raises if it failed.

        A trial is reported finished only after this: what the terminal calls completed is in
        the store, whatever happens to the process next."""
        with self._lock:
            mine = [f for f, j in self._pending if j.run_id == run_id]
        if run_id in self._failed:   # drain() found it failed (or unwritten) and let it go
            raise RuntimeError(self._failed[run_id])
        deadline = None if timeout is None else time.monotonic() + timeout
        for future in mine:
            future.result(None if deadline is None else max(0.0, deadline - time.monotonic()))

    def close(self, timeout: float | None = DRAIN_SECONDS) -> None:
        if interrupts.store_lost():   # each job would wait out its retries: what is lost, --resume redoes
            timeout = LOST_DRAIN_SECONDS
        deadline = None if timeout is None else time.monotonic() + timeout
        self.drain(timeout)
        if self._thread is not None:
            self._thread.close(None if deadline is None else max(0.1, deadline - time.monotonic()))
            self._thread = None


class Forwarding:
    """In a search's worker process: hand jobs to the driver, whose one writer writes them all.

    One writer per search means one process talking to the tracking store (no SQLite lock
    contention between workers) and workers that never import MLflow.
    """

    def __init__(self, outbox: Any):
        self.outbox = outbox

    def submit(self, job: RunWrite) -> Future[str]:
        self.outbox.put(job)
        future: Future[str] = Future()
        future.set_result("")
        return future


def _end_failed(job: RunWrite, exc: BaseException) -> None:
    from mlflow_tune.tracking.runs import TAG, RunLogger, client_for

    run = RunLogger(client_for(job.tracking_uri), job.run_id)
    run.set_tags({TAG + "files_error": f"{type(exc).__name__}: {exc}"[:500]})
    if job.status and run.status() == "RUNNING":
        run.end("FAILED")


_shared: Writer | None = None


def shared() -> Writer:
    """The process-wide background writer, started on first use."""
    global _shared
    if _shared is None:
        _shared = Writer("thread")
        atexit.register(_shared.close)
    return _shared


def drain(timeout: float | None = None) -> list[str]:
    return _shared.drain(timeout) if _shared is not None else []


def serialise_checkpoint(state: dict[str, Any]) -> bytes:
    import torch

    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()

