"""Trials as Spark tasks on a local Spark session (pyspark from the package index, the machine's Java).

The session is the process's one SparkContext: the first test pays its start (seconds), the
others reuse it. What a trial writes must be what a local search writes.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from helpers import needs
from typer.testing import CliRunner

from mlflow_tune.cli.app import app
from mlflow_tune.config.tunefile import load_tune_file
from mlflow_tune.study.study import optimize, search
from mlflow_tune.tracking.runs import TAG, client_for, trial_runs

pytestmark = needs(bool(os.environ.get("JAVA_HOME") or shutil.which("java")), "Java")

EPOCH_METRICS = ("train_loss", "val_loss", "train_accuracy", "val_accuracy", "lr", "grad_norm", "epoch_seconds")
# Per run by nature, not by where it trained.
PARENT = "mlflow.parentRunId"
VARYING = {TAG + "worker", "mlflow.runName", TAG + "trial", PARENT, TAG + "model_uri"}


def tune_file(tmp_path: Path, search: str, epochs: int = 3, name: str = "tune.yaml") -> Path:
    path = tmp_path / name
    path.write_text(f"""experiment: spark
train: {{dataset: digits, model: mlp, epochs: {epochs}, hidden_units: 16, subsample: 0.3, num_threads: 1}}
space:
  lr: {{choice: [0.05, 0.00001]}}
search: {{{search}}}
""")
    return path


def trials(uri: str, parent: str) -> list[Any]:
    client = client_for(uri)
    return sorted(trial_runs(client, client.get_run(parent).info.experiment_id, parent),
                  key=lambda r: int(r.data.tags[TAG + "trial"]))


@pytest.mark.slow
def test_spark_trials_are_child_runs_like_local_ones_with_every_epoch(tracking_uri: str, tmp_path: Path) -> None:
    settings = "algo: grid, max_trials: 2, pruning: none"
    spark = search(load_tune_file(tune_file(tmp_path, f"{settings}, parallel: 2, executor: spark")))
    local = search(load_tune_file(tune_file(tmp_path, f"{settings}, parallel: 1", name="local.yaml")))
    client = client_for(tracking_uri)
    on_spark, here = trials(tracking_uri, spark.parent_run_id), trials(tracking_uri, local.parent_run_id)
    assert [r.info.status for r in on_spark] == [r.info.status for r in here] == ["FINISHED", "FINISHED"]
    for a, b in zip(on_spark, here, strict=True):
        assert a.data.tags[PARENT] == spark.parent_run_id
        assert set(a.data.tags) == set(b.data.tags)   # same tags: outcome, diagnosis, advice, ...
        assert {k: v for k, v in a.data.tags.items() if k not in VARYING and "evidence" not in k} == \
            {k: v for k, v in b.data.tags.items() if k not in VARYING and "evidence" not in k}
        assert a.data.params == b.data.params
        assert set(a.data.metrics) == set(b.data.metrics)
        for key in EPOCH_METRICS:   # every per-epoch point arrived
            assert [m.step for m in client.get_metric_history(a.info.run_id, key)] == [0, 1, 2], key
        assert a.data.tags[TAG + "worker"].split(":")[1] != str(os.getpid())   # trained in a Spark worker
    assert spark.best is not None and spark.best.params == local.best.params   # type: ignore[union-attr]
    assert client.get_run(spark.best.run_id).data.tags.get(TAG + "model_uri")   # the kept model, logged


@pytest.mark.slow
def test_pruning_on_spark_decides_as_a_local_search(tracking_uri: str, tmp_path: Path) -> None:
    # One at a time, so the comparison is exact: the bad second trial is pruned against the first.
    settings = "algo: grid, max_trials: 2, pruning: median, min_trials_for_pruning: 1, pruning_warmup: 1"
    spark = search(load_tune_file(tune_file(tmp_path, f"{settings}, executor: spark", epochs=5)))
    local = search(load_tune_file(tune_file(tmp_path, settings, epochs=5, name="local.yaml")))
    outcomes = [(r.data.tags[TAG + "outcome"], r.data.tags.get(TAG + "stop_reason", ""))
                for r in trials(tracking_uri, spark.parent_run_id)]
    assert outcomes == [(r.data.tags[TAG + "outcome"], r.data.tags.get(TAG + "stop_reason", ""))
                        for r in trials(tracking_uri, local.parent_run_id)]
    assert outcomes[1][0] == "pruned"


@pytest.mark.slow
def test_a_crashed_executor_fails_its_trial_and_the_search_goes_on(tracking_uri: str,
                                                                   capfd: pytest.CaptureFixture[str]) -> None:
    def fit(trial: Any) -> None:
        for step in range(3):
            trial.report(step, {"score": trial.params["x"] + step})
            if trial.number == 0:
                time.sleep(3)   # the first point is written at once (was: only after 2 s, at a later report)
                os._exit(3)   # the Spark worker process dies mid-trial

    outcome = optimize(fit, {"x": {"uniform": [0, 1]}}, metric="score", mode="max", max_trials=2,
                       pruning="none", executor="spark")
    runs = trials(tracking_uri, outcome.parent_run_id)
    assert [r.info.status for r in runs] == ["FAILED", "FINISHED"]
    error = runs[0].data.tags[TAG + "error"]
    assert "Spark task failed" in error and "\n" not in error
    # Spark's Java stack trace went to its log file, which the error names, not over the terminal
    log = Path(error.rsplit("Spark's log: ", 1)[1].rstrip(")"))
    assert "\tat org.apache.spark" in log.read_text()
    assert "\tat org.apache.spark" not in capfd.readouterr().err
    assert len(client_for(tracking_uri).get_metric_history(runs[1].info.run_id, "score")) == 3
    # the failed trial keeps what it had reported before its worker died: evidence for the diagnosis
    assert len(client_for(tracking_uri).get_metric_history(runs[0].info.run_id, "score")) == 1
    assert "x" in runs[0].data.params


@pytest.mark.slow
def test_ctrl_c_cancels_the_spark_jobs_and_resume_completes(tracking_uri: str, tmp_path: Path) -> None:
    config = tune_file(tmp_path, "algo: random, max_trials: 3, parallel: 2, pruning: none, executor: spark",
                       epochs=3000)
    search_cli = subprocess.Popen([sys.executable, "-m", "mlflow_tune.cli", "search", "--config", str(config),
                                   "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    client = client_for(tracking_uri)
    deadline = time.monotonic() + 180
    parent = ""
    while time.monotonic() < deadline:   # both trials training on Spark
        found = client.search_runs([e.experiment_id for e in client.search_experiments()],
                                   f"tags.`{TAG}role` = 'search'")
        if found:
            parent = found[0].info.run_id
            running = [r for r in trials(tracking_uri, parent) if client.get_metric_history(r.info.run_id, "val_loss")]
            if len(running) == 2:
                break
        time.sleep(1)
    assert parent, "the search never started"
    search_cli.send_signal(signal.SIGINT)
    assert search_cli.wait(60) == 130
    killed = trials(tracking_uri, parent)
    assert [(r.info.status, r.data.tags[TAG + "outcome"]) for r in killed] == [("KILLED", "interrupted")] * 2
    assert client.get_run(parent).info.status == "KILLED"
    # A cancelled task's worker may still land its last batch of points after the search exits
    # (seen once: 667 -> 778 within 4 s; README, "Scale out"); then it is gone and writes no more.
    points, settled = [-1], time.monotonic() + 30
    while time.monotonic() < settled:
        now = [len(client.get_metric_history(r.info.run_id, "val_loss")) for r in killed]
        if now == points:
            break
        points = now
        time.sleep(4)
    assert now == points, f"the cancelled trials were still writing 30 s after the search exited: {now}"
    assert b"Traceback" not in search_cli.stderr.read()   # type: ignore[union-attr]

    short = tune_file(tmp_path, "algo: random, max_trials: 3, parallel: 2, pruning: none, executor: spark",
                      name="short.yaml")
    resumed = search(load_tune_file(short), resume=parent)
    assert resumed.counts.get("completed") == 3
    assert sorted(int(r.data.tags[TAG + "trial"]) for r in trials(tracking_uri, parent)) == [0, 1, 2, 3, 4]


def test_sqlite_with_a_cluster_master_is_refused_before_any_run(tracking_uri: str, tmp_path: Path) -> None:
    config = tune_file(tmp_path, "max_trials: 2")
    result = CliRunner().invoke(app, ["search", "--config", str(config), "--backend", "spark",
                                      "--spark-master", "spark://cluster:7077", "--parallel", "8"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "cannot reach" in lines[0] and "spark://cluster:7077" in lines[0]
    assert client_for(tracking_uri).search_runs(["0"]) == []
    assert client_for(tracking_uri).get_experiment_by_name("spark") is None


def test_missing_pyspark_or_java_is_one_line(tracking_uri: str, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    config = tune_file(tmp_path, "max_trials: 2")
    monkeypatch.setitem(sys.modules, "pyspark", None)   # what an environment without the extra has
    result = CliRunner().invoke(app, ["search", "--config", str(config), "--backend", "spark"])
    assert result.exit_code == 2 and result.output.count("\n") == 1
    assert 'pip install "mlflow-tune[spark]"' in result.output
    monkeypatch.delitem(sys.modules, "pyspark")
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    result = CliRunner().invoke(app, ["search", "--config", str(config), "--backend", "spark"])
    assert result.exit_code == 2 and "Java 17" in result.output and result.output.count("\n") == 1
    assert client_for(tracking_uri).get_experiment_by_name("spark") is None


def test_spark_master_without_the_spark_backend_is_refused(tracking_uri: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["search", "--config", str(tune_file(tmp_path, "max_trials: 2")),
                                      "--spark-master", "local[2]"])
    assert result.exit_code == 2 and "executor: spark" in result.output
