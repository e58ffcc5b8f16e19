"""Where trials run: inline, in the process's worker pool, or in threads (MLflow Project trials).

Each executor has `submit(fn, spec, board)` returning a Future, plus `abort` (stop running
trials now) and `close` (the level is over: its writes are in). Process workers are long-lived
(see `pool.py`); an executor is one level's view of them, with that level's board and writer.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from mlflow_tune.executors.names import EXECUTORS
from mlflow_tune.executors.pool import Task, pool
from mlflow_tune.executors.spark import SparkExecutor
from mlflow_tune.tracking.writer import Writer, shared
from mlflow_tune.trials.records import Board, TrialOutcome, TrialSpec

Trial = Callable[[TrialSpec, Board], TrialOutcome]


class InlineExecutor:
    """parallel=1: run each trial in this process, no start-up cost, no pickling."""

    def ahead_writer(self) -> Writer | None:
        """The writer that makes trial runs ahead (None: the driver makes each when it starts)."""
        return shared()   # the one the trials write through

    def submit(self, fn: Trial, spec: TrialSpec, board: Board) -> Future[TrialOutcome]:
        future: Future[TrialOutcome] = Future()
        try:
            future.set_result(fn(spec, board))
        except Exception as exc:
            future.set_exception(exc)
        return future

    def abort(self) -> None:
        return None

    def close(self) -> None:
        return None


class ThreadExecutor:
    """MLflow Project trials: each is a subprocess already, so a thread only waits on it."""

    def __init__(self, parallel: int):
        self.threads = ThreadPoolExecutor(parallel, thread_name_prefix="mlflow-tune-trial")

    def submit(self, fn: Trial, spec: TrialSpec, board: Board) -> Future[TrialOutcome]:
        return self.threads.submit(fn, spec, board)

    def ahead_writer(self) -> Writer | None:
        return None

    def abort(self) -> None:
        self.threads.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        self.threads.shutdown(wait=True, cancel_futures=True)


class ProcessExecutor:
    """Trials in the process's worker pool; their writes go to this level's writer thread.

    Workers train on every core and the driver mostly waits, so it writes in a thread: no
    second process competing with the workers for the cores, one process on the store.
    """

    def __init__(self, parallel: int):
        self.pool = pool()
        self.pool.ensure(parallel)
        self.writer: Writer = Writer("thread").start()

    def submit(self, fn: Trial, spec: TrialSpec, board: Board) -> Future[TrialOutcome]:
        future: Future[TrialOutcome] = Future()
        self.pool.submit(Task(fn, (spec,), board, self.writer, future, owner=self))
        return future

    def ahead_writer(self) -> Writer | None:
        return self.writer

    def abort(self) -> None:
        self.pool.stop_tasks_of(self)

    def close(self) -> None:
        self.writer.close()   # every job a worker sent came before its outcome: all are here


Executorish = InlineExecutor | ThreadExecutor | ProcessExecutor | SparkExecutor


def make_executor(kind: str, parallel: int, master: str = "") -> Executorish:
    if kind not in EXECUTORS:
        raise ValueError(f"executor={kind!r} is not valid; choose one of: {', '.join(EXECUTORS)}.")
    if kind == "spark":   # even one at a time: the trials train on the cluster
        return SparkExecutor(parallel, master)
    if parallel <= 1:
        return InlineExecutor()
    if kind == "process":
        return ProcessExecutor(parallel)
    return ThreadExecutor(parallel)


def start_workers_ahead(kind: str, parallel: int) -> None:
    """Start a parallel search's workers now, so their imports overlap the search's set-up."""
    if kind == "process" and parallel > 1:
        pool().start_ahead(parallel)
