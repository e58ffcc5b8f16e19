"""Searches against a real `mlflow server` over HTTP, backed by PostgreSQL: nothing lost, with local
workers and Spark, with basic-auth on, and across a server restart in the middle of a search."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import needs
from servers import MlflowServer, Postgres, postgres_bin, start_postgres

from mlflow_tune.config.tunefile import load_tune_file
from mlflow_tune.study.study import search
from mlflow_tune.tracking.runs import TAG, client_for, trial_runs

pytestmark = [pytest.mark.slow,
              needs(postgres_bin("initdb") is not None, "PostgreSQL")]

EPOCH_METRICS = ("train_loss", "val_loss", "train_accuracy", "val_accuracy", "val_f1", "lr", "grad_norm",
                 "epoch_seconds")
PASSWORD = "pw-4f9c2e7a1b3d"   # what must appear nowhere but in the environment


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    server = start_postgres()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def server(postgres: Postgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    mlflow = MlflowServer(tmp_path_factory.mktemp("mlflow-server"), postgres.create_database("tracking")).start()
    yield mlflow
    mlflow.stop()


@pytest.fixture(scope="module")
def auth_server(postgres: Postgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    folder = tmp_path_factory.mktemp("mlflow-auth")
    (folder / "auth.ini").write_text(f"""[mlflow]
default_permission = READ
database_uri = sqlite:///{folder}/basic_auth.db
admin_username = admin
authorization_function = mlflow.server.auth:authenticate_request_basic_auth
# A password check is a PBKDF2 hash (~0.1 s of CPU): once a minute, not once per request.
auth_cache_ttl_seconds = 60
""")
    env = {"MLFLOW_AUTH_CONFIG_PATH": str(folder / "auth.ini"), "MLFLOW_AUTH_ADMIN_PASSWORD": PASSWORD,
           "MLFLOW_FLASK_SERVER_SECRET_KEY": os.urandom(8).hex()}
    mlflow = MlflowServer(folder, postgres.create_database("authstore"), app_name="basic-auth", env=env).start()
    yield mlflow
    mlflow.stop()


def tune_file(folder: Path, search_settings: str, epochs: int = 4, name: str = "tune.yaml") -> Path:
    path = folder / name
    path.write_text(f"""experiment: {name.split('.')[0]}
train: {{dataset: digits, model: mlp, epochs: {epochs}, hidden_units: 16, subsample: 0.3, num_threads: 1}}
space:
  lr: {{loguniform: [0.001, 0.1]}}
search: {{pruning: none, {search_settings}}}
""")
    return path


def every_point(uri: str, parent: str, epochs: int, trials: int) -> list[Any]:
    """The search's trials, each FINISHED with every per-epoch point of every metric."""
    client = client_for(uri)
    runs = trial_runs(client, client.get_run(parent).info.experiment_id, parent)
    assert len(runs) == trials
    for run in runs:
        assert (run.info.status, run.data.tags[TAG + "outcome"]) == ("FINISHED", "completed")
        for key in EPOCH_METRICS:
            steps = [m.step for m in client.get_metric_history(run.info.run_id, key)]
            assert sorted(steps) == list(range(epochs)), (run.info.run_name, key)
    return runs


def test_parallel_search_against_a_postgres_backed_server(server: MlflowServer, tmp_path: Path) -> None:
    outcome = search(load_tune_file(tune_file(tmp_path, "max_trials: 4, parallel: 2")), tracking_uri=server.uri)
    every_point(server.uri, outcome.parent_run_id, epochs=4, trials=4)
    assert outcome.best is not None
    client = client_for(server.uri)   # the kept model went through the server's artifact proxy
    assert client.get_run(outcome.best.run_id).data.tags[TAG + "model_uri"].startswith("models:/")
    assert (server.folder / "artifacts").is_dir() and any((server.folder / "artifacts").rglob("MLmodel"))


def test_spark_search_against_the_server(server: MlflowServer, tmp_path: Path) -> None:
    config = tune_file(tmp_path, "max_trials: 2, parallel: 2, executor: spark", name="spark.yaml")
    outcome = search(load_tune_file(config), tracking_uri=server.uri)
    runs = every_point(server.uri, outcome.parent_run_id, epochs=4, trials=2)
    assert all(r.data.tags[TAG + "worker"].split(":")[1] != str(os.getpid()) for r in runs)


def test_basic_auth_credentials_only_in_the_environment(auth_server: MlflowServer, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    config = tune_file(tmp_path, "max_trials: 2, parallel: 2", name="auth.yaml")
    env = {**os.environ, "MLFLOW_TRACKING_USERNAME": "admin", "MLFLOW_TRACKING_PASSWORD": PASSWORD}
    search_cli = subprocess.Popen([sys.executable, "-m", "mlflow_tune.cli", "search", "--config", str(config),
                                   "--tracking-uri", auth_server.uri, "--json"], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    arguments: set[str] = set()
    while search_cli.poll() is None:   # every process's command line while the search runs
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            with contextlib.suppress(OSError):   # a process that just ended
                arguments.add(cmdline.read_bytes().decode(errors="replace"))
        time.sleep(0.2)
    output = search_cli.stdout.read().decode()   # type: ignore[union-attr]
    assert search_cli.returncode == 0, output[-2000:]
    assert not [a for a in arguments if PASSWORD in a]
    assert PASSWORD not in output

    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "admin")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", PASSWORD)
    client = client_for(auth_server.uri)
    experiment = client.get_experiment_by_name("auth")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 3
    parent = next(r for r in runs if r.data.tags.get(TAG + "role") == "search")
    every_point(auth_server.uri, parent.info.run_id, epochs=4, trials=2)
    for run in runs:
        assert PASSWORD not in repr(run.data.params) + repr(run.data.tags)
        folder = client.download_artifacts(run.info.run_id, "", str(tmp_path / run.info.run_id))
        for path in Path(folder).rglob("*"):
            assert not path.is_file() or PASSWORD.encode() not in path.read_bytes(), path


def test_a_wrong_password_is_one_line_before_any_run(auth_server: MlflowServer, tmp_path: Path) -> None:
    config = tune_file(tmp_path, "max_trials: 2", name="refused.yaml")
    env = {**os.environ, "MLFLOW_TRACKING_USERNAME": "admin", "MLFLOW_TRACKING_PASSWORD": "not-the-password"}
    done = subprocess.run([sys.executable, "-m", "mlflow_tune.cli", "search", "--config", str(config),
                           "--tracking-uri", auth_server.uri], env=env, capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "refused the credentials (HTTP 401)" in done.stderr
    assert "not-the-password" not in done.stderr + done.stdout
    env["MLFLOW_TRACKING_PASSWORD"] = PASSWORD
    check = subprocess.run([sys.executable, "-c", "import mlflow; print(mlflow.MlflowClient("
                            f"{auth_server.uri!r}).get_experiment_by_name('refused'))"],
                           env=env, capture_output=True, text=True)
    assert check.stdout.strip() == "None"   # no experiment, so no run


SLOW_TRIAL = """
import time


def fit(trial):
    for step in range(40):   # 10 s of reports, without taking the CPU from the restarting server
        time.sleep(0.25)
        trial.report(step, {"score": trial.params["x"] * step})
"""


def test_a_server_restarted_mid_search_loses_nothing(server: MlflowServer, tmp_path: Path) -> None:
    """The server goes away mid-search for longer than the bounded retries (tracking/runs.py):
    the search stops with one line naming the run to resume (exit 1, no hang), and once the
    server is back `--resume` completes it: every completed trial holds every point."""
    (tmp_path / "slow_trial.py").write_text(SLOW_TRIAL)
    config = tmp_path / "restart.yaml"
    config.write_text("""experiment: restart
objective: slow_trial:fit
space: {x: {uniform: [0, 1]}}
search: {max_trials: 2, parallel: 2, pruning: none, metric: score, mode: max}
""")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    command = [sys.executable, "-m", "mlflow_tune.cli", "search", "--config", str(config),
               "--tracking-uri", server.uri, "--quiet", "--json"]
    search_cli = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    client = client_for(server.uri)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:   # the trials are writing their steps
        experiment = client.get_experiment_by_name("restart")
        runs = client.search_runs([experiment.experiment_id]) if experiment else []
        if any(r.data.metrics.get("score") is not None for r in runs):
            break
        time.sleep(0.5)
    assert search_cli.poll() is None   # still running: the outage falls in the middle of the search
    server.stop()
    _out, err = search_cli.communicate(timeout=120)   # bounded: the retries give up, no hang
    assert search_cli.returncode == 1, err[-2000:]
    lines = [line for line in err.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1 and "resume with:" in lines[0], err[-2000:]
    parent = re.search(r"--resume (\w+)", lines[0]).group(1)   # type: ignore[union-attr]
    server.start()
    resumed = subprocess.run([*command, "--resume", parent], env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert json.loads(resumed.stdout)["parent_run_id"] == parent
    assert client.get_run(parent).info.status == "FINISHED"
    runs = trial_runs(client, client.get_run(parent).info.experiment_id, parent)
    assert "RUNNING" not in {r.info.status for r in runs}
    done = [r for r in runs if r.data.tags.get(TAG + "outcome") == "completed"]
    assert len(done) == 2
    for run in done:
        assert sorted(m.step for m in client.get_metric_history(run.info.run_id, "score")) == list(range(40))


def test_train_diagnose_report_and_promote_against_the_server(server: MlflowServer, tmp_path: Path) -> None:
    """Every command a user runs after a search, as processes against the server: nothing of it
    needs a local store."""
    def cli(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "mlflow_tune.cli", *args, "--tracking-uri", server.uri],
                              capture_output=True, text=True, cwd=tmp_path, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout

    trained = json.loads(cli("train", "dataset=digits", "model=mlp", "epochs=3", "hidden_units=16",
                             "subsample=0.3", "num_threads=1", "--experiment", "server-train", "--json"))
    client = client_for(server.uri)
    run = client.get_run(trained["run_id"])
    assert run.info.status == "FINISHED" and len(client.get_metric_history(run.info.run_id, "val_loss")) == 3
    assert trained["model_uri"]

    parent = json.loads(cli("search", "--config", str(tune_file(tmp_path, "max_trials: 2", name="cmds.yaml")),
                            "--json", "--quiet"))["parent_run_id"]
    labels = json.loads(cli("diagnose", "--parent", parent, "--json"))
    assert len(labels) == 2 and {r["label"] for r in labels} <= {"healthy", "underfit", "overfit", "nonconvergent"}
    assert "report.html" in {a.path for a in client.list_artifacts(parent)}   # written by the search
    cli("report", parent, "--out", str(tmp_path / "report"))
    page = (tmp_path / "report" / "report.html").read_text()
    assert "<img" in page and "src=\"data:image/png;base64," in page

    promoted = json.loads(cli("promote", parent, "--model-name", "digits-on-server", "--allow", "underfit",
                              "--allow", "overfit", "--allow", "nonconvergent", "--json"))
    assert promoted["alias_moved"]
    import mlflow.pyfunc
    import numpy as np

    mlflow.set_tracking_uri(server.uri)
    model = mlflow.pyfunc.load_model("models:/digits-on-server@champion")
    assert len(model.predict(np.zeros((2, 64), dtype=np.float32))) == 2
