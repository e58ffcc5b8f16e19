"""Long-lived trial worker processes, one pipe each, shared by every search in a process.

A worker is forked once from a fork server that imported torch and scikit-learn, then runs
trial after trial, search after search: starting workers (and re-importing the caller's
`__main__` in them) is paid once per process, not once per search or stage. Each worker
talks to the driver over one duplex pipe, and only to it: the trial's MLflow writes, its
curve for the pruner and its questions to the shared board go up the pipe, a reader thread
in the driver answers them from the level's own `Board` and `Writer`. No Manager process,
no proxies: a message is one pickle on a pipe.

Messages from a worker: ("write", RunWrite), ("publish", tid, curve), ("snapshot",),
("record", tid, loss), ("rank", loss), ("offer", tid, run_id, loss, model, keep), then ("done", outcome)
or ("raised", text).
"""

from __future__ import annotations

import atexit
import contextlib
import multiprocessing
import os
import pickle
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

    from mlflow_tune.tracking.writer import RunWrite, Writer
    from mlflow_tune.trials.records import Board

# torch._dynamo: creating the first optimizer in a process imports it (~800 modules, sympy
# among them, ~2.5 s); preloaded here, it is paid once per search process, not once per worker.
PRELOAD = ["mlflow_tune.trials.runner", "mlflow_tune.training.loop", "sklearn.datasets", "sklearn.model_selection",
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


# ---------------------------------------------------------------- the worker's side

class _Outbox:
    """`Forwarding`'s outbox in a worker: each RunWrite goes up the pipe to the driver's writer."""

    def __init__(self, conn: Connection):
        self.conn = conn

    def put(self, job: RunWrite) -> None:
        self.conn.send(("write", job))


class RemoteBoard:
    """The level's `Board`, seen from a worker: the same methods, answered by the driver."""

    def __init__(self, conn: Connection):
        self.conn = conn
        self.outbox = _Outbox(conn)

    def publish(self, tid: int, curve: list[float]) -> None:
        self.conn.send(("publish", tid, list(curve)))

    def snapshot(self) -> dict[int, Sequence[float]]:
        self.conn.send(("snapshot",))
        return dict(self.conn.recv())

    def record(self, tid: int, loss: float) -> None:
        self.conn.send(("record", tid, loss))

    def rank(self, loss: float) -> int:
        self.conn.send(("rank", loss))
        return int(self.conn.recv())

    def offer(self, tid: int, run_id: str, loss: float, parts: Any, keep: int) -> None:
        self.conn.send(("offer", tid, run_id, loss, parts, keep))


def serve(conn: Connection) -> None:
    """A worker's life: run each trial sent, answer with its outcome, until None or the pipe closes."""
    # Ctrl-C reaches the whole process group; the driver decides what stops (it ends the
    # workers of an interrupted search), so an idle worker survives for the next search.
    # SIGTERM keeps its default: multiprocessing ends daemon workers with it at exit. A
    # SIGTERM to the whole group ends busy workers too; the driver, which got it as well,
    # records their trials as interrupted, not failed (study/driver.py).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):   # the driver is gone
            return
        if task is None:
            return
        path, cwd, payload = task
        # The driver's import path and working directory now, not when this worker was forked:
        # a user's model module or a relative data path resolve as they would in the driver. Set
        # before the task is unpickled, since unpickling a user's function imports its module.
        sys.path[:] = path
        if os.getcwd() != cwd:
            os.chdir(cwd)
        fn, args = pickle.loads(payload)
        try:
            reply: tuple[str, Any] = ("done", fn(*args, RemoteBoard(conn)))
        except Exception as exc:   # run_trial records a trial's own failures; this is the rest
            reply = ("raised", f"{type(exc).__name__}: {exc}")
        try:
            conn.send(reply)
        except OSError:   # a broken pipe: the driver is gone (kill -9), and with it whom to tell
            os._exit(0)   # at once and silently: no exit hooks, no traceback on the user's terminal


# ---------------------------------------------------------------- the driver's side

@dataclass
class Task:
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    board: Board
    writer: Writer
    future: Future[Any]
    owner: object


class Worker:
    """One worker process and the driver thread that reads its pipe."""

    def __init__(self, context: multiprocessing.context.BaseContext, number: int):
        self.conn, child = context.Pipe()   # type: ignore[attr-defined]
        self.process = context.Process(target=serve, args=(child,), daemon=True,  # type: ignore[attr-defined]
                                       name=f"mlflow-tune-worker-{number}")
        self.process.start()
        child.close()
        self.task: Task | None = None
        self.alive = True
        threading.Thread(target=self._read, daemon=True, name=f"mlflow-tune-reader-{number}").start()

    def run(self, task: Task) -> None:
        self.task = task
        self.conn.send((list(sys.path), os.getcwd(), pickle.dumps((task.fn, task.args))))

    def stop(self) -> None:
        """End the worker now (its trial is being interrupted)."""
        self.process.kill()

    def _read(self) -> None:
        while True:
            try:
                message = self.conn.recv()
            except Exception:   # EOF, or a pipe cut mid-message by a killed worker
                break
            task = self.task
            if task is not None:
                self._handle(task, message)
        self.alive = False
        self.process.join(5)
        task, self.task = self.task, None
        if task is not None and not task.future.done():
            task.future.set_exception(RuntimeError(
                f"worker process {self.process.pid} died (exit code {self.process.exitcode})"))

    def _handle(self, task: Task, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "write":
            task.writer.submit(message[1])
        elif kind == "publish":
            task.board.publish(message[1], message[2])
        elif kind == "snapshot":
            self.conn.send(task.board.snapshot())
        elif kind == "record":
            task.board.record(message[1], message[2])
        elif kind == "offer":
            task.board.offer(*message[1:])
        elif kind == "rank":
            self.conn.send(task.board.rank(message[1]))
        else:   # "done" or "raised": the worker is free again before the driver hears of it
            self.task = None
            if kind == "done":
                task.future.set_result(message[1])
            else:
                task.future.set_exception(RuntimeError(message[1]))


class WorkerPool:
    """The process's workers: started on demand (or ahead, in the background), reused until exit."""

    def __init__(self) -> None:
        self.workers: list[Worker] = []
        self.lock = threading.Lock()
        self.context: multiprocessing.context.BaseContext | None = None
        self.started = 0

    def ensure(self, n: int) -> None:
        """At least `n` live workers (the fork server's imports, on first use: seconds)."""
        with self.lock:
            self.workers = [w for w in self.workers if w.alive]
            if self.context is None:
                self.context = worker_context()
            while len(self.workers) < n:
                self.workers.append(Worker(self.context, self.started))
                self.started += 1

    def start_ahead(self, n: int) -> threading.Thread:
        """`ensure(n)` in a thread: the fork server imports torch while the caller sets up MLflow."""
        thread = threading.Thread(target=self.ensure, args=(n,), daemon=True, name="mlflow-tune-pool-start")
        thread.start()
        return thread

    def submit(self, task: Task) -> None:
        with self.lock:
            worker = next((w for w in self.workers if w.alive and w.task is None), None)
        if worker is None:   # every worker busy or dead: one more
            self.ensure(len([w for w in self.workers if w.alive]) + 1)
            return self.submit(task)
        try:
            worker.run(task)
        except OSError:   # it died while idle, before its reader noticed: the next one takes the trial
            worker.task, worker.alive = None, False
            self.submit(task)

    def stop_tasks_of(self, owner: object) -> None:
        for worker in list(self.workers):
            task = worker.task
            if task is not None and task.owner is owner:
                worker.stop()

    def close(self) -> None:
        for worker in self.workers:
            if worker.alive and worker.task is None:
                with contextlib.suppress(OSError):
                    worker.conn.send(None)
        for worker in self.workers:
            worker.process.join(2)
            if worker.process.is_alive():
                worker.process.kill()
        self.workers = []


_pool: WorkerPool | None = None


def pool() -> WorkerPool:
    """The process-wide worker pool, closed at exit."""
    global _pool
    if _pool is None:
        _pool = WorkerPool()
        atexit.register(_pool.close)
    return _pool
