"""What a finished search looks like in MLflow, on a real SQLite store through the CLI: the experiment's
kind, run names, the search run's description, params and objective on every trial, the printed
links, and report.html logged on the search run and linked from its description."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from mlflow import MlflowClient
from typer.testing import CliRunner

from mlflow_tune.cli.app import app
from mlflow_tune.reports.data import read_search
from mlflow_tune.tracking.runs import TAG, child_runs, trial_runs
from mlflow_tune.trials.naming import compact, search_name, stage_name, trial_name

STAGED = {
    "experiment": "ui",
    "train": {"dataset": "digits", "model": "mlp", "epochs": 3, "num_threads": 1},
    "space": {"lr": {"loguniform": [1e-3, 0.1]}, "hidden_units": {"choice": [16, 32]}},
    "search": {"pruning": "none", "top_k_models": 0, "seed": 3},
    "stages": [{"name": "coarse", "algo": "random", "max_trials": 3, "epochs": 2, "subsample": 0.3},
               {"name": "final", "retrain": 1, "seeds": 2, "epochs": 3}],
}


def test_names_say_what_a_run_is() -> None:
    assert trial_name(7, {"lr": 0.0031622776, "hidden_units": 128}) == "trial-07 lr=3.2e-3 units=128"
    assert trial_name(123, {"optimizer": "adam", "dropout": 0.25}) == "trial-123 opt=adam drop=0.25"
    # the learning rate first: the runs table cuts a long name, and lr is what a reader looks for
    name = trial_name(12, {"batch_size": 128, "dropout": 0.1, "zeta": 1, "lr": 0.003, "hidden_units": 64})
    assert name == "trial-12 lr=3e-3 units=64 drop=0.1 batch=128 zeta=1"
    assert search_name("tpe", {"dataset": "digits", "model": "mlp"}) == "search tpe digits-mlp"
    when = search_name("tpe", {"dataset": "digits", "model": "mlp"}, when="12-03 14:07")
    assert when == "search tpe digits-mlp 12-03 14:07"
    assert search_name("tpe", {"dataset": "digits", "model": "mlp"}, first_stage_algo="random") \
        == "search random digits-mlp"
    assert stage_name(0, 2, "random", {"subsample": 0.3, "epochs": 6}) == "stage 1/2 random 30% data 6 epochs"
    assert stage_name(1, 2, "tpe", {"epochs": 20}, retrain=3, seeds=2) == "stage 2/2 retrain top 3 x 2 seeds 20 epochs"
    assert [compact(v) for v in (1e-5, 0.5, 2.0, 12345.6, float("nan"))] == ["1e-5", "0.5", "2", "1.2e4", "nan"]
    assert len(trial_name(1, {f"p{i}": 0.123456 for i in range(40)})) <= 120


def test_a_finished_search_in_mlflow(tracking_uri: str, tmp_path: Path) -> None:
    config = tmp_path / "tune.yaml"
    config.write_text(yaml.safe_dump(STAGED))
    result = CliRunner().invoke(app, ["search", "--config", str(config), "--tracking-uri", tracking_uri,
                                      "--quiet"])
    assert result.exit_code == 0, result.output
    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name("ui")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    eid = experiment.experiment_id
    parent = client.search_runs([eid], f"tags.`{TAG}role` = 'search'")[0]
    rid = parent.info.run_id
    assert re.fullmatch(r"search random digits-mlp \d\d-\d\d \d\d:\d\d", parent.info.run_name), parent.info.run_name

    # the command prints where to look: the mlflow ui command and the two pages
    assert f"mlflow ui --backend-store-uri {tracking_uri}" in result.output
    assert (f"http://127.0.0.1:5000/#/experiments/{eid}/runs?workflowType=machine_learning"
            "&viewStateShareKey=mlflow-tune\n") in result.output
    assert f"http://127.0.0.1:5000/#/experiments/{eid}/runs/{rid}?workflowType=machine_learning" in result.output
    page = tmp_path / "reports" / rid / "report.html"
    assert f"report: {Path('reports') / rid / 'report.html'}" in result.output and page.is_file()

    stages = child_runs(client, eid, rid)
    assert [s.info.run_name for s in stages] == ["stage 1/2 random 30% data 2 epochs",
                                                 "stage 2/2 retrain top 1 x 2 seeds 3 epochs"]
    trials = trial_runs(client, eid, rid)
    assert len(trials) == 5
    keys = {frozenset(t.data.params) for t in trials}
    assert len(keys) == 1, "every trial logs the same param keys"
    for t in trials:
        tid, params = int(t.data.tags[TAG + "trial"]), t.data.params
        seed = f" seed={params['seed']}" if t.data.tags[TAG + "stage"] == "1" else ""   # retrain: one per seed
        assert t.info.run_name == f"trial-{tid:02d} lr={compact(float(params['lr']))} " \
                                  f"units={params['hidden_units']}{seed}"
        assert "objective" in t.data.metrics and TAG + "diagnosis" in t.data.tags
        assert params["lr"] == repr(float(params["lr"]))   # one formatting: Python's shortest round-trip

    note = parent.data.tags["mlflow.note.content"]
    best = client.get_run(parent.data.tags[TAG + "best_run_id"])
    assert f"**Best trial:** {best.data.tags[TAG + 'trial']}" in note
    assert f"lr={compact(float(best.data.params['lr']))}" in note.split("**Best trial:**")[1].split("\n")[0]
    assert "test_accuracy" in note and "**Stopped because** every stage ran." in note
    diagnoses = [t.data.tags[TAG + "diagnosis"] for t in trials]
    shown = re.search(r"\*\*Diagnoses:\*\* ([^·\n]*[^·\n ])", note)
    assert shown and sum(int(w.split()[0]) for w in shown.group(1).split(", ")) == len(diagnoses)
    assert f"[report.html](#/experiments/{eid}/runs/{rid}/artifacts/report.html?workflowType=machine_learning)" \
        in note.split("**Best trial:**")[0]   # above the fold: MLflow cuts a long description
    assert "report.html" in [a.path for a in client.list_artifacts(rid)]

    data = read_search(client, rid)
    assert [s.name for s in data.stages] == [s.info.run_name for s in stages]
    assert data.stages[1].retrain and data.stages[1].retrain[0]["seeds"] == 2
    assert data.log_names == {"lr"}

    text = CliRunner().invoke(app, ["report", rid, "--text", "--tracking-uri", tracking_uri])
    assert text.exit_code == 0, text.output
    assert "diagnosis" in text.output and all(t.data.tags[TAG + "trial"] in text.output for t in trials)
    # piped at 80 columns: the width is COLUMNS', and columns that do not fit are left out, not squeezed
    narrow = CliRunner().invoke(app, ["report", rid, "--text", "--tracking-uri", tracking_uri], env={"COLUMNS": "80"})
    lines = narrow.output.splitlines()
    assert narrow.exit_code == 0 and max(len(line) for line in lines) <= 80, narrow.output
    header = next(line for line in lines if "trial" in line and "outcome" in line)
    assert all(f" {name} " in header for name in ("trial", "outcome", "diagnosis", "lr")), narrow.output
    assert len(lines) < 4 * len(data.rows) + 12   # one line a trial (and the borders), not a column per line
