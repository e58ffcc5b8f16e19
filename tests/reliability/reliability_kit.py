"""Real `mlflow-tune` processes, interrupted from Python, and the store checked afterwards.

Signals are sent with `Popen.send_signal` (a background job of a non-interactive shell ignores
SIGINT); moments that timing cannot hit are reached with MLFLOW_TUNE_FAULT (mlflow_tune/faults.py).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from servers import MlflowServer

EPOCHS = 6
CLI = [sys.executable, "-c", "from mlflow_tune.cli import main; main()"]
COMPLETED = re.compile(r"^trial (\d+): completed ", re.M)


def tune_file(folder: Path, *, parallel: int = 1, max_trials: int = 3, epochs: int = EPOCHS,
              algo: str = "random") -> Path:
    path = folder / "tune.yaml"
    path.write_text(
        "experiment: reliability\n"
        f"train: {{dataset: digits, model: mlp, epochs: {epochs}, subsample: 0.5}}\n"
        "space:\n  lr: {loguniform: [1e-3, 1e-1]}\n  hidden_units: {logint: [8, 64]}\n"
        f"search: {{algo: {algo}, max_trials: {max_trials}, parallel: {parallel}, pruning: none, seed: 0}}\n")
    return path


@dataclass
class Finished:
    code: int
    stdout: str
    stderr: str
    seconds: float


def env_for(uri: str, fault: str = "", **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "PYTEST"))}
    env.update(MLFLOW_TRACKING_URI=uri, PYTHONUNBUFFERED="1", **extra)
    if fault:
        env["MLFLOW_TUNE_FAULT"] = fault
    return env


def start(args: list[str], cwd: Path, uri: str, fault: str = "", **extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen([*CLI, *args], cwd=cwd, env=env_for(uri, fault, **extra), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)


def finish(proc: subprocess.Popen[str], timeout: float = 120) -> Finished:
    began = time.monotonic()
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise AssertionError(f"hung for {timeout} s; stderr: {err[-2000:]}") from None
    return Finished(proc.returncode, out, err, time.monotonic() - began)


def run(args: list[str], cwd: Path, uri: str, fault: str = "", timeout: float = 120, **extra: str) -> Finished:
    return finish(start(args, cwd, uri, fault, **extra), timeout)


def parent_id(text: str, uri: str = "") -> str:
    """The search's run id as printed, else (no text given) the store's only search."""
    found = re.search(r"(?:search run|saved in run|--resume) ([0-9a-f]{32})", text)
    if found:
        return found.group(1)
    searches = [r.info.run_id for r in all_runs(uri) if r.data.tags.get("mlflow_tune.role") == "search"] if uri else []
    assert len(searches) == 1, f"no search run id in: {text[-1500:]}"
    return searches[0]


def completed_printed(*texts: str) -> set[int]:
    return {int(t) for text in texts for t in COMPLETED.findall(text)}


def client(uri: str) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri)


def all_runs(uri: str) -> list[Any]:
    c = client(uri)
    ids = [e.experiment_id for e in c.search_experiments()]
    return list(c.search_runs(ids, max_results=5000)) if ids else []


def running(uri: str) -> list[str]:
    """Runs left RUNNING, deleted ones included (a run made ahead and discarded must be ended too)."""
    from mlflow.entities import ViewType

    c = client(uri)
    ids = [e.experiment_id for e in c.search_experiments()]
    found = c.search_runs(ids, run_view_type=ViewType.ALL, max_results=5000) if ids else []
    return [r.info.run_id for r in found if r.info.status == "RUNNING"]


def measure(uri: str, parent: str, printed: set[int], epochs: int = EPOCHS) -> dict[str, Any]:
    """What the issue's property counts: runs left RUNNING, trials printed completed that are not
    completed with all their points in the store (points lost), configurations trained twice,
    whether the parent is FINISHED with a complete summary (counts and trials.csv)."""
    c = client(uri)
    runs = all_runs(uri)
    top = c.get_run(parent)
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent]
    final = [r for r in children if r.data.tags.get("mlflow_tune.outcome") in ("completed", "pruned", "failed",
                                                                                "nonconvergent")]
    done = {int(r.data.tags["mlflow_tune.trial"]): r for r in final
            if r.data.tags["mlflow_tune.outcome"] == "completed"}
    points = {tid: len(c.get_metric_history(r.info.run_id, "val_loss")) for tid, r in done.items()}
    lost = sorted((printed - set(done)) | {tid for tid, n in points.items() if n != epochs})
    configs = [(r.data.params.get("lr"), r.data.params.get("hidden_units")) for r in final]
    rows: list[str] = []
    try:
        rows = Path(c.download_artifacts(parent, "trials.csv")).read_text().strip().splitlines()[1:]
    except Exception:   # no table: the summary is incomplete
        rows = []
    summary_ok = (top.info.status == "FINISHED" and top.data.metrics.get("n_trials") == len(final)
                  and top.data.metrics.get("n_completed", 0) == len(done) and len(rows) == len(final))
    return {"running": [r.info.run_id for r in runs if r.info.status == "RUNNING"], "lost": lost,
            "duplicated": len(configs) - len(set(configs)), "summary_ok": summary_ok,
            "parent_status": top.info.status, "final": len(final), "completed": len(done)}


def check_search(uri: str, parent: str, printed: set[int], epochs: int = EPOCHS) -> dict[str, Any]:
    """The issue's property, after an interrupt and a --resume: no run RUNNING, every trial printed
    completed holds all its metric points, no configuration trained twice, the parent FINISHED
    with a complete summary."""
    found = measure(uri, parent, printed, epochs)
    assert not found["running"], f"runs left RUNNING: {found['running']}"
    assert not found["lost"], f"trials printed completed without all {epochs} points in the store: {found['lost']}"
    assert not found["duplicated"], "a configuration trained twice"
    assert found["summary_ok"], found
    return found


def sqlite_server(folder: Path) -> MlflowServer:
    """A real `mlflow server` on 127.0.0.1 over a SQLite store in `folder` (tests/servers.py)."""
    return MlflowServer(folder, f"sqlite:///{folder}/server.db")
