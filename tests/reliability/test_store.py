"""The tracking store: made once under a lock (SQLite), checked before anything starts (a server),
and a server lost mid-search stops the search in bounded time, for `--resume` to complete."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest
from reliability_kit import (
    check_search,
    completed_printed,
    parent_id,
    run,
    running,
    sqlite_server,
    start,
    tune_file,
)

pytestmark = pytest.mark.slow


def test_two_first_searches_on_a_new_store_both_work(tmp_path: Path) -> None:
    """Item 3: MLflow's migrations raced (`duplicate column name: step`); now one process makes the store."""
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    config = str(tune_file(tmp_path, max_trials=1, epochs=2))
    procs = [start(["search", "--config", config, "--quiet"], tmp_path, uri) for _ in range(2)]
    results = [p.communicate(timeout=180) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-1500:] for _, err in results]
    assert running(uri) == []


def test_a_first_creation_killed_midway_leaves_no_half_made_store(tmp_path: Path) -> None:
    """Item 3: the schema is made in a side file and renamed into place once complete."""
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    args = ["search", "--config", str(tune_file(tmp_path, max_trials=1, epochs=2)), "--quiet"]
    killed = run(args, tmp_path, uri, fault="store-created:1")
    assert killed.code == -signal.SIGKILL
    assert not (tmp_path / "mlflow.db").exists()
    again = run(args, tmp_path, uri)
    assert again.code == 0, again.stderr[-2000:]
    assert not list(tmp_path.glob(".mlflow.db.creating-*"))


def test_an_unreachable_server_is_one_line_and_exit_2_within_seconds(tmp_path: Path) -> None:
    """Item 6: was 248 s of silence and a 143-line traceback."""
    done = run(["search", "--config", str(tune_file(tmp_path))], tmp_path, "http://127.0.0.1:9", timeout=60)
    assert done.code == 2 and done.seconds < 15, (done.code, done.seconds)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: tracking server http://127.0.0.1:9 does not answer")


def test_json_against_a_server_and_a_server_lost_mid_search(tmp_path: Path) -> None:
    """Items 9 and 6: with --json stdout is our JSON only (MLflow prints "View run" lines against a
    server); a server that goes away stops the search in bounded time with one line, and once it
    is back `--resume` completes the search."""
    server = sqlite_server(tmp_path).start()
    try:
        config = str(tune_file(tmp_path, max_trials=2, epochs=8))
        proc = start(["search", "--config", config], tmp_path, server.uri)
        err = ""
        while " completed " not in err and proc.poll() is None:   # the first trial is in: stop the server
            err += proc.stderr.readline()
        server.stop()
        began = time.monotonic()
        _out, rest = proc.communicate(timeout=150)
        err += rest
        assert time.monotonic() - began < 45, f"not bounded: {time.monotonic() - began:.0f} s"
        assert proc.returncode == 1, err[-2000:]
        last = err.strip().splitlines()[-1]
        assert last.startswith("Error: the tracking store stopped answering ([Errno 111] Connection refused)")
        assert "--resume" in last and "Traceback" not in err, err[-2000:]
        server.start()
        parent = parent_id(last)
        again = run(["search", "--config", config, "--resume", parent, "--json"], tmp_path, server.uri)
        assert again.code == 0, again.stderr[-2000:]
        assert json.loads(again.stdout)["parent_run_id"] == parent   # the whole of stdout is one JSON
        check_search(server.uri, parent, completed_printed(err, again.stderr), epochs=8)
    finally:
        server.stop()
