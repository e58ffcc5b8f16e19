"""Interrupts at every moment of a search or a training run: nothing lost, nothing left RUNNING.

Each case interrupts a real `mlflow-tune` process (a signal from Python, or a fault point that
makes the process signal itself at a named moment), checks what the interrupted process left,
then resumes and checks the issue's property (`reliability_kit.check_search`).
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
from reliability_kit import (
    EPOCHS,
    check_search,
    client,
    completed_printed,
    parent_id,
    run,
    running,
    start,
    tune_file,
)

pytestmark = pytest.mark.slow


def _search(tmp_path: Path, uri: str, fault: str = "", parallel: int = 1, max_trials: int = 3,
            resume: str = "", algo: str = "random"):  # type: ignore[no-untyped-def]
    args = ["search", "--config", str(tune_file(tmp_path, parallel=parallel, max_trials=max_trials, algo=algo))]
    return run([*args, *(["--resume", resume] if resume else [])], tmp_path, uri, fault)


def _resume_and_check(tmp_path: Path, uri: str, first, parallel: int = 1,  # type: ignore[no-untyped-def]
                      algo: str = "random") -> dict:
    parent = parent_id(first.stderr + first.stdout, uri)
    again = _search(tmp_path, uri, parallel=parallel, resume=parent, algo=algo)
    assert again.code == 0, again.stderr[-2000:]
    return check_search(uri, parent, completed_printed(first.stderr, again.stderr))


@pytest.mark.parametrize(("parallel", "algo"), [(1, "random"), (2, "random"), (2, "mtpe")])
def test_kill_9_right_after_a_trial_is_reported_completed_loses_nothing(tmp_path: Path, tracking_uri: str,
                                                                       parallel: int, algo: str) -> None:
    """Item 1: what the terminal called completed is in the store, even after kill -9 at once."""
    first = _search(tmp_path, tracking_uri, "after-trial-completed:1", parallel=parallel, algo=algo)
    assert first.code == -signal.SIGKILL, first.stderr[-2000:]
    # the stderr pipe closes when the orphaned workers are gone too: they leave quietly
    assert "Traceback" not in first.stderr and "BrokenPipeError" not in first.stderr, first.stderr[-2000:]
    printed = completed_printed(first.stderr)
    assert printed, first.stderr[-2000:]
    # the id --resume needs was on the terminal before the kill
    assert parent_id(first.stderr) == parent_id("", tracking_uri), first.stderr[-2000:]
    c = client(tracking_uri)
    for r in c.search_runs([e.experiment_id for e in c.search_experiments()]):
        if r.data.tags.get("mlflow_tune.trial") in {str(t) for t in printed}:
            assert r.info.status == "FINISHED" and len(c.get_metric_history(r.info.run_id, "val_loss")) == EPOCHS
    figures = _resume_and_check(tmp_path, tracking_uri, first, parallel, algo)
    assert figures["final"] == 3


@pytest.mark.parametrize(("fault", "parallel"), [("after-trial-completed:1:TERM", 2),
                                                 ("trial-started:2:INT", 1)])
def test_sigterm_or_sigint_mid_search_stops_cleanly_and_resumes(tmp_path: Path, tracking_uri: str, fault: str,
                                                                parallel: int) -> None:
    """Items 1, 4, 5: one line saying what was saved and how to resume, exit 130, nothing RUNNING."""
    first = _search(tmp_path, tracking_uri, fault, parallel=parallel)
    assert first.code == 130, first.stderr[-2000:]
    last = first.stderr.strip().splitlines()[-1]
    assert last.startswith("interrupted (SIG") and "trials saved in run" in last and "--resume" in last, last
    assert "Traceback" not in first.stderr
    assert running(tracking_uri) == []
    summary = client(tracking_uri).get_run(parent_id(last))
    assert summary.info.status == "KILLED" and summary.data.metrics["n_completed"] >= 1
    _resume_and_check(tmp_path, tracking_uri, first, parallel)


@pytest.mark.parametrize("fault", ["setup-logged:1:TERM", "before-summary:1:INT"])
def test_a_signal_in_the_set_up_or_the_summary_never_leaves_the_parent_running(
        tmp_path: Path, tracking_uri: str, fault: str) -> None:
    """Item 2: the parent ends (KILLED, or FINISHED when every trial was done) with its summary."""
    first = _search(tmp_path, tracking_uri, fault, max_trials=2)
    assert running(tracking_uri) == []
    parent = client(tracking_uri).get_run(parent_id(first.stderr + first.stdout, tracking_uri))
    assert "n_trials" in parent.data.metrics, parent.data.metrics
    if fault.startswith("before-summary"):   # the trials were all done: nothing to resume
        assert first.code == 0 and parent.info.status == "FINISHED", first.stderr[-2000:]
        # the signal still stops what the summary does not need: the report, which the line names
        assert first.stderr.strip().splitlines()[-1] == (
            f"SIGINT after the last trial: the search is complete (run {parent.info.run_id} FINISHED); "
            f"report skipped, write it with: mlflow-tune report {parent.info.run_id}"), first.stderr[-2000:]
        assert not list(tmp_path.glob("reports/*/report.html"))
        check_search(tracking_uri, parent.info.run_id, completed_printed(first.stderr))
    else:
        assert first.code == 130 and parent.info.status == "KILLED", first.stderr[-2000:]
        _resume_and_check(tmp_path, tracking_uri, first)


def test_sigterm_at_start_up_exits_at_once_with_one_line(tmp_path: Path, tracking_uri: str) -> None:
    """Item 4: honoured from the first instant (no run exists yet: nothing to save)."""
    proc = start(["search", "--config", str(tune_file(tmp_path))], tmp_path, tracking_uri)
    time.sleep(0.5)
    began = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and time.monotonic() - began < 5, (proc.returncode, err)
    assert err.strip().splitlines() == ["interrupted (SIGTERM): nothing was saved"], err
    assert running(tracking_uri) == []


def test_train_stops_on_sigterm_with_its_run_saved(tmp_path: Path, tracking_uri: str) -> None:
    """Item 5: `mlflow-tune train` ends its run KILLED, with the epochs so far, and says so."""
    proc = start(["train", "--dataset", "digits", "--model", "mlp", "--epochs", "500"], tmp_path, tracking_uri)
    c = client(tracking_uri)
    deadline = time.monotonic() + 90
    run_id = ""
    while time.monotonic() < deadline and not run_id:
        time.sleep(0.5)
        found = [r for e in c.search_experiments() for r in c.search_runs([e.experiment_id])
                 if c.get_metric_history(r.info.run_id, "val_loss")]
        run_id = found[0].info.run_id if found else ""
    assert run_id, "no epoch logged"
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-2000:]
    assert err.strip().splitlines()[-1].startswith(f"interrupted (SIGTERM): run {run_id} saved")
    assert "Traceback" not in err
    saved = c.get_run(run_id)
    assert saved.info.status == "KILLED"
    assert 0 < len(c.get_metric_history(run_id, "val_loss")) < 500



def test_workers_orphaned_by_a_kill_9_leave_quietly(tmp_path: Path, tracking_uri: str) -> None:
    """The driver dies as its second trial starts, the first still training in a worker: the worker
    finds the pipe broken when it reports, and exits without a traceback (stderr closes when it is gone)."""
    config = tune_file(tmp_path, parallel=2, max_trials=4, epochs=150)
    first = run(["search", "--config", str(config)], tmp_path, tracking_uri, "trial-started:2")
    assert first.code == -signal.SIGKILL, first.stderr[-2000:]
    assert "Traceback" not in first.stderr and "BrokenPipeError" not in first.stderr, first.stderr[-3000:]
