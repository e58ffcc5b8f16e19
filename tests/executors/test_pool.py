"""The process's worker pool on real worker processes: board calls over the pipe, forwarded
writes, a worker that dies, the driver's working directory and import path, reuse."""

from __future__ import annotations

import os
import sys
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest

from mlflow_tune.executors.pool import Task, WorkerPool
from mlflow_tune.trials.records import Board


class Recorder:
    """Stands in for the level's Writer: keeps the jobs a worker forwarded, in order."""

    def __init__(self) -> None:
        self.jobs: list[Any] = []

    def submit(self, job: Any) -> None:
        self.jobs.append(job)


def uses_the_board(spec: dict[str, Any], board: Any) -> dict[str, Any]:
    board.outbox.put(("first write", spec["tid"]))
    board.publish(spec["tid"], [3.0, 2.0])
    board.record(spec["tid"], spec["loss"])
    return {"rank": board.rank(spec["loss"]), "seen": sorted(board.snapshot()), "pid": os.getpid()}


def dies(spec: dict[str, Any], board: Any) -> None:
    os._exit(spec["code"])


def where(spec: dict[str, Any], board: Any) -> dict[str, Any]:
    import importlib.util

    found = importlib.util.find_spec(spec["module"]) is not None
    return {"cwd": os.getcwd(), "found": found, "pid": os.getpid()}


@pytest.fixture
def pool() -> Any:
    workers = WorkerPool()
    workers.ensure(2)
    yield workers
    workers.close()


def run(pool: WorkerPool, fn: Any, spec: dict[str, Any], board: Board | None = None,
        writer: Recorder | None = None) -> Any:
    future: Future[Any] = Future()
    pool.submit(Task(fn, (spec,), board or Board(), writer or Recorder(), future, owner=pool))  # type: ignore[arg-type]
    return future.result(timeout=60)


def test_board_calls_and_writes_cross_the_pipe(pool: WorkerPool) -> None:
    board, writer = Board(curves={7: [1.0]}, losses={7: 0.5}), Recorder()
    out = run(pool, uses_the_board, {"tid": 8, "loss": 0.9}, board, writer)
    assert out["rank"] == 2 and out["seen"] == [7, 8] and out["pid"] != os.getpid()
    assert board.curves[8] == [3.0, 2.0] and board.losses[8] == 0.9   # the driver's board holds it
    assert writer.jobs == [("first write", 8)]


def test_a_dead_worker_fails_its_task_and_is_replaced(pool: WorkerPool) -> None:
    with pytest.raises(RuntimeError, match=r"worker process \d+ died \(exit code 3\)"):
        run(pool, dies, {"code": 3})
    out = run(pool, uses_the_board, {"tid": 0, "loss": 1.0})   # the pool goes on
    assert out["rank"] == 1
    assert len([w for w in pool.workers if w.alive]) >= 1


def test_workers_follow_the_drivers_cwd_and_import_path(pool: WorkerPool, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "late_module_xyz.py").write_text("VALUE = 1\n")
    before = run(pool, where, {"module": "late_module_xyz"})
    assert not before["found"]
    # changed after the workers were forked: the next trial sees it as the driver does
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [str(tmp_path), *sys.path])
    after = run(pool, where, {"module": "late_module_xyz"})
    assert after["found"] and after["cwd"] == str(tmp_path)


def test_workers_are_reused_across_tasks(pool: WorkerPool) -> None:
    pids = {run(pool, where, {"module": "os"})["pid"] for _ in range(4)}
    assert pids <= {w.process.pid for w in pool.workers} and len(pool.workers) == 2


def test_a_worker_that_died_while_idle_is_passed_over(pool: WorkerPool) -> None:
    idle = pool.workers[0]
    idle.process.kill()
    idle.process.join(10)
    out = run(pool, uses_the_board, {"tid": 1, "loss": 0.5})   # whether or not its reader noticed yet
    assert out["pid"] != idle.process.pid and out["rank"] == 1


def test_a_running_worker_takes_a_function_from_a_module_added_to_the_path_later(
        pool: WorkerPool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Unpickling a user's function imports its module: the worker must take the driver's path
    first (a worker kept from an earlier search knew nothing of the user's folder)."""
    assert run(pool, where, {"module": "json"})["found"]   # the worker is up, before the folder exists
    (tmp_path / "late_module.py").write_text("def fit(spec, board):\n    return spec['x'] * 2\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import late_module  # type: ignore[import-not-found]

    assert run(pool, late_module.fit, {"x": 21}) == 42
