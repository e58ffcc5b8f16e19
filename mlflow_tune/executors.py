"""Where trials run: inline, in worker processes, or in threads (for MLflow Project trials).

Each executor has the `submit` of concurrent.futures plus `abort` (stop running trials now)
and `close`. Process workers come from a fork server (see `worker_context`): forking the driver
itself, whose torch may have started its OpenMP thread pool, can deadlock.
"""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from mlflow_tune.trial import Board

if TYPE_CHECKING:
    from mlflow_tune.writer import Writer


class InlineExecutor:
    """parallel=1: run each trial in this process, no start-up cost, no pickling."""

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args))
        except Exception as exc:
            future.set_exception(exc)
        return future

    def abort(self) -> None:
        return None

    def close(self) -> None:
        return None


def _warm_up() -> None:
    """Import torch and the training code once per worker, before its first trial.

    Workers never import MLflow: their writes go to the driver's writer (writer.Forwarding).
    """
    import mlflow_tune.training  # noqa: F401


def _ready() -> None:
    return None


class PoolExecutor:
    def __init__(self, pool: Executor, manager: Any = None, outbox: Any = None):
        self.pool, self.manager, self.outbox = pool, manager, outbox
        self.pump: threading.Thread | None = None
        self.writer: Writer | None = None
        if outbox is not None:
            from mlflow_tune.writer import Writer, pump

            # Workers train on every core; the driver mostly waits, so it writes in a thread.
            self.writer = Writer("thread").start()
            self.pump = threading.Thread(target=pump, args=(outbox, self.writer), daemon=True,
                                         name="mlflow-tune-pump")
            self.pump.start()

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        return self.pool.submit(fn, *args)

    def abort(self) -> None:
        processes = getattr(self.pool, "_processes", None) or {}
        for process in list(processes.values()):
            process.terminate()
        self.pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
        if self.pump is not None:   # jobs the workers queued are handed on before the manager goes
            self.outbox.put(None)
            self.pump.join()
        if self.writer is not None:   # and written before the level ends
            self.writer.close()
        if self.manager is not None:
            self.manager.shutdown()


Executorish = InlineExecutor | PoolExecutor


# torch._dynamo: creating the first optimizer in a process imports it (~800 modules, sympy
# among them, ~2.5 s); preloaded here, it is paid once per search process, not once per worker.
PRELOAD = ["mlflow_tune.trial", "mlflow_tune.training", "sklearn.datasets", "sklearn.model_selection",
           "torch._dynamo"]


def worker_context() -> multiprocessing.context.BaseContext:
    """Workers forked from a fork server that imported torch and scikit-learn once.

    Spawning each worker costs its own imports (seconds, and several at once on few cores);
    forking the driver is unsafe (it runs threads, and torch may have started OpenMP). A fork
    server is a fresh single-threaded process, so forking it is both safe and cheap.
    """
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    return context


def make_executor(kind: str, parallel: int, board: Board) -> tuple[Executorish, Board]:
    """An executor for `kind` and the board its trials share (Manager proxies across processes)."""
    if parallel <= 1 and kind in ("process", "thread", "project"):
        return InlineExecutor(), board
    if kind in ("thread", "project"):   # a project trial is a subprocess already; a thread waits on it
        return PoolExecutor(ThreadPoolExecutor(parallel)), board
    if kind == "process":
        context = worker_context()
        manager = context.Manager()
        shared = Board(manager.dict(), manager.dict(), manager.Queue())
        pool = ProcessPoolExecutor(parallel, mp_context=context, initializer=_warm_up)
        for _ in range(parallel):   # start the workers now, while the driver prepares the first trials
            pool.submit(_ready)
        return PoolExecutor(pool, manager, shared.outbox), shared
    raise ValueError(f"executor={kind!r} is not valid; choose one of: process, thread, project.")
