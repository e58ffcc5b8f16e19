"""A resumed search is the search that was started: its budget and settings come from its own run,
its counts go on from where it stopped, and the summary and the report count the same trials."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from reliability_kit import client, parent_id, run, tune_file

from mlflow_tune.reports.data import read_search

pytestmark = pytest.mark.slow


def test_resume_keeps_the_budget_given_on_the_command_line(tmp_path: Path, tracking_uri: str) -> None:
    config = tune_file(tmp_path, max_trials=2)   # the file says 2; the search is started with 4
    first = run(["search", "--config", str(config), "--max-trials", "4", "--parallel", "2"], tmp_path,
                tracking_uri, "after-trial-completed:1:INT")
    assert first.code == 130, first.stderr[-2000:]
    stop = first.stderr.strip().splitlines()[-1]
    parent = parent_id(stop)
    assert f"--parallel 2 --resume {parent}" in stop, stop   # where it ran is repeated; the budget is its own
    done_before = len(re.findall(r"^trial \d+: completed", first.stderr, re.M))

    again = run(["search", "--config", str(config), "--resume", parent], tmp_path, tracking_uri)
    assert again.code == 0, again.stderr[-2000:]
    assert "resumed with the search's own settings: max_trials=4 (not 2)" in again.stderr, again.stderr[-2000:]
    assert "parallel=1 this time (the search started with 2)" in again.stderr
    # the counter goes on from the trials already done, to the search's own budget
    counters = re.findall(r"\| \[search\] (\d+)/(\d+) done", again.stderr)
    assert counters[0] == (str(done_before + 1), "4") and counters[-1] == ("4", "4"), counters
    assert "4 trials" in again.stdout.splitlines()[0], again.stdout

    c = client(tracking_uri)
    runs = c.search_runs([c.get_run(parent).info.experiment_id], f"tags.mlflow.parentRunId = '{parent}'")
    finished = [r for r in runs if r.data.tags.get("mlflow_tune.outcome") in ("completed", "pruned")]
    assert len(finished) == 4 and c.get_run(parent).data.params["search.max_trials"] == "4"
    data = read_search(c, parent)
    assert data.trial_count().startswith("4 trials"), data.trial_count()
