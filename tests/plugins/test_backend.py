"""The `tune` project backend and the run context provider, through the real `mlflow run` CLI."""

from __future__ import annotations

import inspect
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient

from mlflow_tune.tracking.runs import TAG, child_runs
from mlflow_tune.trials.records import best_of

ROOT = Path(__file__).resolve().parents[2]
PLAIN = ROOT / "projects" / "plain-mlflow"


def mlflow_run(uri: str, cwd: Path, project: Path, config: dict[str, Any] | str, *extra: str,
               timeout: float = 400) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update(MLFLOW_TRACKING_URI=uri, PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}")
    text = config if isinstance(config, str) else json.dumps(config)
    return subprocess.run([sys.executable, "-m", "mlflow", "run", str(project), "--backend", "tune",
                           "--backend-config", text, "--env-manager", "local", *extra],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def _search(client: MlflowClient, experiment: str) -> Any:
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None, "the search is not in the tune config's experiment"
    parents = client.search_runs([exp.experiment_id], f"tags.`{TAG}role` = 'search'")
    assert len(parents) == 1
    return parents[0]


@pytest.mark.slow
def test_a_foreign_project_is_searched_as_nested_trials_and_its_own_runs_are_linked(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    config = {**json.loads((PLAIN / "tune.json").read_text()), "experiment": "plain"}
    config["search"] = {**config["search"], "max_trials": 3, "pruning": "none"}
    done = mlflow_run(uri, tmp_path, PLAIN, config)
    assert done.returncode == 0, done.stderr[-3000:]
    client = MlflowClient(uri)
    parent = _search(client, "plain")
    assert parent.info.status == "FINISHED"
    tags = parent.data.tags
    assert tags["mlflow.project.backend"] == "tune" and tags["mlflow.project.entryPoint"] == "main"
    assert not client.search_runs(["0"])   # nothing in Default
    trials = [k for k in child_runs(client, parent.info.experiment_id, parent.info.run_id)
              if k.data.tags.get(TAG + "role") == "trial"]
    assert sorted(int(k.data.tags[TAG + "trial"]) for k in trials) == [0, 1, 2]
    for trial in trials:
        history = client.get_metric_history(trial.info.run_id, "valid/loss")
        assert len(history) == 30   # every per-epoch point of the project's own metric
        values = [m.value for m in sorted(history, key=lambda m: m.step)]
        assert trial.data.metrics["objective"] == pytest.approx(best_of(values, "min", "smoothed"))
        assert trial.data.params["epochs"] == "30" and "learning_rate" in trial.data.params
        assert trial.data.tags[TAG + "diagnosis"] in ("healthy", "underfit", "overfit", "nonconvergent")
        assert "stdout.txt" in {a.path for a in client.list_artifacts(trial.info.run_id)}
        # the script's own nested run: tagged by the run context provider, no code change
        own = [r for r in child_runs(client, parent.info.experiment_id, trial.info.run_id)]
        assert len(own) == 1 and own[0].data.tags["mlflow_tune.search_run_id"] == parent.info.run_id
        assert own[0].data.tags["mlflow_tune.trial"] == trial.data.tags[TAG + "trial"]
    assert parent.data.tags[TAG + "best_run_id"] in {t.info.run_id for t in trials}
    # not silent: progress, then the summary `mlflow-tune search` prints, and the report on the parent
    assert "trial 0: " in done.stderr and "[search] 3/3 done" in done.stderr, done.stderr[-2000:]
    assert f"search run {parent.info.run_id}: 3 trials" in done.stderr
    assert "report.html" in {a.path for a in client.list_artifacts(parent.info.run_id)}


@pytest.mark.slow
def test_a_project_trial_is_pruned_while_it_runs(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    config = {"experiment": "prune", "train": {"epochs": 400},
              "space": {"learning_rate": {"choice": [0.3, 0.0001]}},
              "search": {"algo": "grid", "metric": "valid/loss", "mode": "min", "pruning": "median",
                         "pruning_warmup": 3, "min_trials_for_pruning": 1},
              "curves": {"train_loss": "train/loss", "val_loss": "valid/loss"}}
    done = mlflow_run(uri, tmp_path, PLAIN, config)
    assert done.returncode == 0, done.stderr[-3000:]
    client = MlflowClient(uri)
    parent = _search(client, "prune")
    trials = {k.data.params["learning_rate"]: k for k in child_runs(client, parent.info.experiment_id,
                                                                       parent.info.run_id)}
    slow = trials["0.0001"]
    assert slow.info.status == "FINISHED" and slow.data.tags[TAG + "pruned"] == "true"
    assert slow.data.tags[TAG + "outcome"] == "pruned"
    assert len(client.get_metric_history(slow.info.run_id, "valid/loss")) < 400   # its process was ended early
    # One good trial, not two: a near twin (lr 0.31) overfits a few steps sooner, and whether the
    # median pruner sees it worse at some late step depends on when the watcher polls.
    good = trials["0.3"]
    assert (good.info.status, good.data.tags[TAG + "outcome"]) == ("FINISHED", "completed")


@pytest.mark.slow
def test_our_own_train_entry_point_as_a_searched_project(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    config = {"experiment": "ours", "train": {"dataset": "iris", "epochs": 3, "num_threads": 1},
              "space": {"lr": {"loguniform": [0.001, 0.1]}}, "search": {"max_trials": 2, "pruning": "none"}}
    done = mlflow_run(uri, tmp_path, ROOT, config, "-e", "train")
    assert done.returncode == 0, done.stderr[-3000:]
    client = MlflowClient(uri)
    parent = _search(client, "ours")
    trials = child_runs(client, parent.info.experiment_id, parent.info.run_id)
    assert len(trials) == 2
    for trial in trials:
        assert len(client.get_metric_history(trial.info.run_id, "val_loss")) == 3
        assert trial.data.tags[TAG + "outcome"] == "completed" and trial.data.params["dataset"] == "iris"


@pytest.mark.slow
@pytest.mark.parametrize(("config", "entry", "needle"), [
    ('{"tune_file": "missing.yaml"}', "main", "tune_file 'missing.yaml' does not exist"),
    ({"space": {"learning_rate": {"loguniform": [1, 0.1]}}, "search": {"metric": "valid/loss", "mode": "min"}},
     "main", "space entry 'learning_rate': low must be below high"),
    ({"space": {"learning_rate": {"uniform": [0, 1]}}, "search": {"metric": "valid/loss"}}, "main",
     "search.metric='valid/loss' is not one whose direction mlflow-tune knows"),
    ({"space": {"learning_rate": {"uniform": [0, 1]}}, "search": {"metric": "valid/loss", "mode": "min"}},
     "nope", "Could not find nope among entry points ['main']"),
])
def test_a_bad_backend_config_is_one_line_before_any_run(tmp_path: Path, config: Any, entry: str, needle: str) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    done = mlflow_run(uri, tmp_path, PLAIN, config, "-e", entry, timeout=120)
    errors = [line for line in done.stderr.splitlines() if "ERROR" in line or "Traceback" in line]
    assert done.returncode != 0 and len(errors) == 1 and needle in errors[0], done.stderr[-2000:]
    client = MlflowClient(uri)
    assert not client.search_runs([e.experiment_id for e in client.search_experiments()])


def test_the_context_provider_tags_runs_only_inside_a_trial(monkeypatch: pytest.MonkeyPatch) -> None:
    from mlflow_tune_plugins.context import TrialContext

    monkeypatch.delenv("MLFLOW_TUNE_SEARCH_RUN_ID", raising=False)
    assert not TrialContext().in_context()
    monkeypatch.setenv("MLFLOW_TUNE_SEARCH_RUN_ID", "abc")
    monkeypatch.setenv("MLFLOW_TUNE_TRIAL", "7")
    assert TrialContext().in_context()
    assert TrialContext().tags() == {"mlflow_tune.search_run_id": "abc", "mlflow_tune.trial": "7"}


def test_mlflow_finds_both_plugins_and_the_config_keys_it_adds_are_known() -> None:
    import mlflow.projects
    from mlflow.projects.backend import loader
    from mlflow.tracking.context.registry import _run_context_provider_registry
    from mlflow_tune_plugins.backend import _MLFLOW_KEYS, TuneBackend

    assert isinstance(loader.load_backend("tune"), TuneBackend)
    assert any(type(p).__name__ == "TrialContext" for p in _run_context_provider_registry)
    # MLflow writes its own settings into every backend config; the backend must skip all of them.
    import mlflow.projects.utils as project_utils

    source = inspect.getsource(mlflow.projects._run)   # type: ignore[attr-defined]
    added = {getattr(project_utils, name) for name in re.findall(r"backend_config\[(\w+)\]", source)}
    assert added and added <= _MLFLOW_KEYS


@pytest.mark.slow
def test_mlflow_run_of_a_project_lands_in_the_experiment_it_declares(tmp_path: Path) -> None:
    """digits-cnn declares `mlflow_tune: {experiment: digits-cnn}`; --experiment-name still wins;
    a project that declares nothing goes where MLflow puts it."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update(MLFLOW_TRACKING_URI=uri, PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}")
    base = [sys.executable, "-m", "mlflow", "run", "--env-manager", "local"]
    runs = [(ROOT / "projects" / "digits-cnn", ["-P", "epochs=1", "-P", "num_threads=1"]),
            (ROOT / "projects" / "digits-cnn", ["-P", "epochs=1", "-P", "num_threads=1", "--experiment-name", "mine"]),
            (PLAIN, ["-P", "epochs=1"])]
    for project, extra in runs:
        done = subprocess.run([*base, *extra, str(project)], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
    client = MlflowClient(uri)
    sources = {e.name: [r.data.tags["mlflow.source.name"] for r in client.search_runs([e.experiment_id])
                        if "mlflow.parentRunId" not in r.data.tags] for e in client.search_experiments()}
    assert [Path(s).name for s in sources["digits-cnn"]] == ["digits-cnn"]
    assert [Path(s).name for s in sources["mine"]] == ["digits-cnn"]
    assert [Path(s).name for s in sources["Default"]] == ["plain-mlflow"]
