"""Trials as Spark tasks: one single-task Spark job per trial, launched from a driver thread.

This is hyperopt `SparkTrials`' pattern (a trial starts as soon as an executor slot frees),
without `SparkTrials` itself: it owns the whole `fmin` loop, so our ask/tell driver, its
stages, resume and pruning board would have to be rebuilt around it. Here Spark is only
where a trial runs; the driver stays the same as for local workers.

What crosses to an executor: the trial's spec (tracking URI, its pre-created run id, the
parent's id, its configuration) and the address and one-time key of the driver's board.
Never credentials: an executor writes its run straight to the tracking server with what its
own environment holds (`MLFLOW_TRACKING_USERNAME`/`PASSWORD`, inherited in local mode).

Pruning asks the driver, not the tracking server: each decision needs every other trial's
curve at that epoch, which the server would give only as one history request per trial
(N requests per epoch per trial) and seconds late (runs' metrics are written in batches).
Through the driver it is one round trip to the level's `Board`, the same object a local
search's pruner reads, so a trial is pruned on Spark exactly when it would be locally.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import sys
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from multiprocessing.connection import Client, Connection, Listener
from pathlib import Path
from typing import Any

from mlflow_tune.executors.names import local_master
from mlflow_tune.tracking.writer import Writer
from mlflow_tune.training.config import ConfigError
from mlflow_tune.trials.records import Board, TrialOutcome, TrialSpec

Trial = Callable[[TrialSpec, Board], TrialOutcome]
MISSING = 'search.executor=spark (--backend spark) needs pyspark; install it with: pip install "mlflow-tune[spark]"'


def check_spark(master: str, tracking_uri: str) -> None:
    """Before any run exists: pyspark and Java are here, and the executors can reach the store."""
    if importlib.util.find_spec("pyspark") is None:
        raise ConfigError(MISSING)
    if not (shutil.which("java") or os.environ.get("JAVA_HOME")):
        raise ConfigError("search.executor=spark needs Java 17 or later: put java on PATH or set JAVA_HOME.")
    scheme = tracking_uri.split("://", 1)[0].split("+", 1)[0].lower()
    if not local_master(master) and scheme in ("sqlite", "file"):
        raise ConfigError(f"tracking URI {tracking_uri[:120]!r} is a file on this machine, which executors of "
                          f"spark master {master[:80]!r} cannot reach; give a tracking server, "
                          "e.g. --tracking-uri http://HOST:5000.")


_context: Any = None
_context_lock = threading.Lock()
# Spark's own log (its Java stack traces when a worker dies: ~40 lines each) goes to this file, not
# over the search's progress; a trial that fails on Spark names it.
SPARK_LOG = Path(tempfile.gettempdir()) / f"mlflow-tune-spark-{os.getpid()}.log"
LOG4J2 = """rootLogger.level = warn
rootLogger.appenderRef.file.ref = file
appender.file.type = File
appender.file.name = file
appender.file.fileName = {path}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = %d{{yy/MM/dd HH:mm:ss}} %p %c{{1}}: %m%n%ex
"""


def _log_settings() -> list[tuple[str, str]]:
    """The driver JVM's log4j2 set-up, read when pyspark starts the JVM (local mode: executors too)."""
    config = SPARK_LOG.with_suffix(".properties")
    config.write_text(LOG4J2.format(path=SPARK_LOG))
    return [("spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile={config.as_uri()}")]


def spark_context(master: str, parallel: int) -> Any:
    """The process's SparkContext, made on first use (a JVM start: seconds), or the one already running."""
    global _context
    with _context_lock:
        if _context is None:
            from pyspark.sql import SparkSession

            builder = SparkSession.builder.appName("mlflow-tune").master(master or f"local[{parallel}]")
            # A trial is not retried (its run would be written twice); progress bars would garble
            # the search's own display.
            settings = [("spark.task.maxFailures", "1"), ("spark.ui.showConsoleProgress", "false"),
                        *_log_settings(),
                        # trials forked from a daemon that imported torch and MLflow once
                        ("spark.python.daemon.module", "mlflow_tune.executors.spark_daemon")]
            if local_master(master):
                # Local executors run this interpreter (and its installed mlflow-tune), not python3 on
                # PATH; pyspark reads only the variable.
                os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
            for key, value in settings:
                builder = builder.config(key, value)
            session = builder.getOrCreate()
            _context = session.sparkContext
        return _context


def _answer(conn: Connection, board: Board) -> None:
    """The driver's side of one trial's board connection (the calls of `pool.RemoteBoard`)."""
    with conn:
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                return
            kind = message[0]
            if kind == "publish":
                board.publish(message[1], message[2])
            elif kind == "snapshot":
                conn.send(board.snapshot())
            elif kind == "record":
                board.record(message[1], message[2])
            elif kind == "rank":
                conn.send(board.rank(message[1]))
            elif kind == "offer":
                board.offer(*message[1:])


def _on_executor(fn: Trial, spec: TrialSpec, address: Any, key: bytes) -> Callable[[Iterator[int]], Iterator[Any]]:
    """The Spark task of one trial: train it, writing to the tracking server from here."""
    def task(_: Iterator[int]) -> Iterator[Any]:
        from pyspark import TaskContext

        from mlflow_tune.executors.pool import RemoteBoard
        from mlflow_tune.tracking.writer import drain

        context = TaskContext.get()
        if context is not None and context.attemptNumber() > 0:   # the first attempt's executor was lost
            yield ("lost", f"its executor was lost while it ran (Spark attempt {context.attemptNumber()}); "
                           "not retried, so the run is not written twice")
            return
        with Client(address, authkey=key) as conn:
            board = RemoteBoard(conn)
            board.outbox = None   # type: ignore[assignment]   # writes go to the tracking server from here
            outcome = fn(replace(spec, background_writes=True), board)   # type: ignore[arg-type]
        drain()   # every write of the run is in before the driver hears the outcome
        yield ("done", outcome)
    return task


def _reason(exc: BaseException) -> str:
    """The useful line of a Spark job's failure (a Py4J error carries the whole Java stack)."""
    text = str(getattr(exc, "java_exception", None) or exc)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in lines:
        if "most recent failure" in line or "Exception:" in line or "cancelled" in line:
            return line[:400]
    return (lines[0] if lines else type(exc).__name__)[:400]


class SparkExecutor:
    """Each trial one Spark job of one task, in its own job group so an interrupt cancels it."""

    def __init__(self, parallel: int, master: str = ""):
        self.context = spark_context(master, parallel)
        host = "127.0.0.1" if local_master(master) else self.context.getConf().get("spark.driver.host")
        self.key = os.urandom(32)   # only this level's tasks can talk to its board
        self.listener = Listener((host, 0), authkey=self.key)
        self.board: Board | None = None
        self.threads = ThreadPoolExecutor(parallel, thread_name_prefix="mlflow-tune-spark")
        self.writer = Writer("thread").start()   # makes trial runs ahead, logs the level's kept models
        self.prefix = f"mlflow-tune-{uuid.uuid4().hex[:8]}"
        self.groups: set[str] = set()
        self.closed = False
        threading.Thread(target=self._accept, daemon=True, name="mlflow-tune-spark-board").start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                conn = self.listener.accept()
            except Exception:   # closed, or a caller without the key
                if self.closed:
                    return
                continue
            if self.board is not None:
                threading.Thread(target=_answer, args=(conn, self.board), daemon=True).start()

    def submit(self, fn: Trial, spec: TrialSpec, board: Board) -> Future[TrialOutcome]:
        self.board = board
        return self.threads.submit(self._job, fn, spec)

    def _job(self, fn: Trial, spec: TrialSpec) -> TrialOutcome:
        group = f"{self.prefix}-trial-{spec.tid}"
        self.context.setJobGroup(group, f"mlflow-tune trial {spec.tid} (run {spec.run_id})", interruptOnCancel=True)
        self.groups.add(group)
        try:
            task = _on_executor(fn, spec, self.listener.address, self.key)
            kind, value = self.context.parallelize([0], 1).mapPartitions(task).collect()[0]
        except Exception as exc:
            raise RuntimeError(f"Spark task failed: {_reason(exc)} (Spark's log: {SPARK_LOG})") from None
        finally:
            self.groups.discard(group)
        if kind == "lost":
            raise RuntimeError(value)
        return value   # type: ignore[no-any-return]

    def ahead_writer(self) -> Writer | None:
        return self.writer

    def abort(self) -> None:
        """Cancel the running trials' jobs (the driver then ends their runs KILLED)."""
        for group in list(self.groups):
            with contextlib.suppress(Exception):
                self.context.cancelJobGroup(group)
        self.threads.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        self.threads.shutdown(wait=False, cancel_futures=True)   # every trial has ended, or was cancelled
        self.writer.close()
        self.closed = True
        with contextlib.suppress(Exception):
            self.listener.close()
