"""Where trials run: inline, in worker processes, or in threads (for MLflow Project trials).

Each executor has the `submit` of concurrent.futures plus `abort` (stop running trials now)
and `close`. Process workers are started with `spawn`: forking a process whose torch has
already started its OpenMP thread pool can deadlock.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any

from mlflow_tune.trial import Board


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
    """Import the heavy modules once per worker, before its first trial."""
    import mlflow  # noqa: F401

    import mlflow_tune.training  # noqa: F401


class PoolExecutor:
    def __init__(self, pool: Executor, manager: Any = None):
        self.pool, self.manager = pool, manager

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        return self.pool.submit(fn, *args)

    def abort(self) -> None:
        processes = getattr(self.pool, "_processes", None) or {}
        for process in list(processes.values()):
            process.terminate()
        self.pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
        if self.manager is not None:
            self.manager.shutdown()


Executorish = InlineExecutor | PoolExecutor


def make_executor(kind: str, parallel: int, board: Board) -> tuple[Executorish, Board]:
    """An executor for `kind` and the board its trials share (Manager proxies across processes)."""
    if parallel <= 1 and kind in ("process", "thread", "project"):
        return InlineExecutor(), board
    if kind in ("thread", "project"):   # a project trial is a subprocess already; a thread waits on it
        return PoolExecutor(ThreadPoolExecutor(parallel)), board
    if kind == "process":
        context = multiprocessing.get_context("spawn")
        manager = context.Manager()
        shared = Board(manager.dict(), manager.dict())
        pool = ProcessPoolExecutor(parallel, mp_context=context, initializer=_warm_up)
        return PoolExecutor(pool, manager), shared
    raise ValueError(f"executor={kind!r} is not valid; choose one of: process, thread, project.")
