"""Tuning a user's own training function (`mlflow_tune.optimize`, `objective: module:function`),
on a real SQLite store: nested runs, pruning, failures, NaN, stages' budget, resume, the CLI."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

import mlflow_tune as mt
from mlflow_tune.cli import app
from mlflow_tune.tracking.runs import TAG, child_runs
from mlflow_tune.training.config import ConfigError
from mlflow_tune.trials.records import best_of

# A user's training script: plain PyTorch, nothing from mlflow-tune but the Trial it is handed.
USER_MODULE = '''
import math
import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.metrics import f1_score


class Net(torch.nn.Module):
    def __init__(self, units, dropout):
        super().__init__()
        self.layers = torch.nn.Sequential(torch.nn.Linear(64, units), torch.nn.ReLU(),
                                          torch.nn.Dropout(dropout), torch.nn.Linear(units, 10))

    def forward(self, x):
        return self.layers(x)


def fit(trial):
    x, y = load_digits(return_X_y=True)
    x = torch.as_tensor(x / 16.0, dtype=torch.float32)
    y = torch.as_tensor(y)
    xt, yt, xv, yv = x[:1400], y[:1400], x[1400:], y[1400:]
    torch.manual_seed(trial.number)
    model = Net(int(trial.params["units"]), float(trial.params["dropout"]))
    lr = float(trial.params["lr"]) * (1e-3 if trial.number >= 4 else 1.0)   # later trials learn badly
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    if trial.number == 1:
        raise RuntimeError("the user's code broke")
    for epoch in range(trial.budget.get("epochs", trial.params.get("epochs", 6))):
        model.train()
        for i in range(0, len(xt), 128):
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(xt[i:i + 128]), yt[i:i + 128])
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            train_loss = torch.nn.functional.cross_entropy(model(xt), yt).item()
            logits = model(xv)
            val_loss = torch.nn.functional.cross_entropy(logits, yv).item()
            f1 = f1_score(yv.numpy(), logits.argmax(1).numpy(), average="macro")
        if trial.number == 2:
            val_loss = float("nan")
        trial.report(epoch, {"train_loss": train_loss, "val_loss": val_loss, "val_f1": f1})
    trial.log_model(model, input_example=xv[:3].numpy())
'''

SPACE = {"lr": {"loguniform": [3e-3, 3e-2]}, "units": {"choice": [32, 64]}, "dropout": {"uniform": [0.0, 0.3]}}


@pytest.fixture
def user_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """`usertrain.py` in the working directory, importable (as the CLI's `module:function` is)."""
    path = tmp_path / "usertrain.py"
    path.write_text(USER_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("usertrain", None)
    return path


def _kids(client: MlflowClient, out: mt.SearchOutcome) -> dict[int, Any]:
    return {int(k.data.tags[TAG + "trial"]): k for k in child_runs(client, out.experiment_id, out.parent_run_id)}


@pytest.mark.slow
def test_a_users_pytorch_function_tuned_with_tpe_in_two_workers(tracking_uri: str, user_module: Path,
                                                                capfd: pytest.CaptureFixture[str]) -> None:
    import usertrain

    out = mt.optimize(usertrain.fit, SPACE, metric="val_f1", mode="max", algo="tpe", max_trials=7,
                      parallel=2, pruning="median", min_trials_for_pruning=1, pruning_warmup=1,
                      experiment="fn", seed=3)
    client = MlflowClient(tracking_uri)
    kids = _kids(client, out)
    assert sorted(kids) == list(range(7))
    status = {o.tid: o.status for o in out.trials}
    assert status[1] == "failed" and "the user's code broke" in next(o for o in out.trials if o.tid == 1).error
    assert "error.txt" in {a.path for a in client.list_artifacts(kids[1].info.run_id)}
    assert status[2] == "nonconvergent" and kids[2].data.tags[TAG + "diagnosis"] == "nonconvergent"
    assert "pruned" in status.values()   # the slow learners were stopped early
    pruned = [t for t, s in status.items() if s == "pruned"]
    assert all(kids[t].info.status == "FINISHED" and kids[t].data.tags[TAG + "pruned"] == "true" for t in pruned)
    assert len({k.data.tags[TAG + "worker"] for k in kids.values()}) == 2   # both workers trained
    best = out.best
    assert best is not None and best.tid in (0, 3) and best.status == "completed"
    run = kids[best.tid]
    # the user's own per-epoch metrics, one point per reported epoch, and the objective from them
    f1 = [m.value for m in client.get_metric_history(run.info.run_id, "val_f1")]
    # the default objective: the best of the smoothed curve (training.selection), not one lucky epoch
    assert len(f1) == 6 and run.data.metrics["objective"] == pytest.approx(best_of(f1, "max", "smoothed"))
    assert {"lr", "units", "dropout"} <= set(run.data.params)
    assert run.data.tags[TAG + "diagnosis"] in ("healthy", "underfit", "overfit")
    # the best trial's logged model is promotable and predicts from raw rows
    import mlflow
    import numpy as np

    uri = run.data.tags[TAG + "model_uri"]
    probabilities = mlflow.pyfunc.load_model(uri).predict(np.zeros((2, 64), dtype=np.float32))
    assert probabilities.shape == (2, 10)
    assert client.get_run(out.parent_run_id).data.tags[TAG + "best_run_id"] == run.info.run_id
    # the route shows what `mlflow-tune search` shows and leaves the same report on the parent
    err = capfd.readouterr().err
    assert "trial 0: " in err and "[search] 7/7 done" in err and f"search run {out.parent_run_id}: 7 trials" in err
    assert "report.html" in {a.path for a in client.list_artifacts(out.parent_run_id)}
    assert "val_f1" in out.best_metrics and "val_f1" in client.get_run(out.parent_run_id).data.metrics
    # promotion: the best eligible trial with a logged model, with exactly the metrics its run logged
    promoted = mt.promote(out.parent_run_id, "user-digits", allow=("underfit", "overfit"))
    assert promoted.version == "1" and promoted.alias_moved
    logged = client.get_run(promoted.run_id).data
    assert promoted.metrics == {"objective": logged.metrics["objective"]}
    assert promoted.model_uri == logged.tags[TAG + "model_uri"]
    assert {p.reason for p in promoted.passed_over} >= {"failed", "nonconvergent"}
    again = mt.promote(out.parent_run_id, "user-digits", allow=("underfit", "overfit"))
    assert again.version == "1" and not again.created and not again.alias_moved


def test_the_metric_must_be_reported_and_named_with_a_mode(tracking_uri: str) -> None:
    def fit(trial: mt.Trial) -> None:
        trial.report(0, {"valid/loss": 1.0})

    with pytest.raises(ConfigError, match=r"'val_f1' is not among the reported metrics \(valid/loss\)"):
        mt.optimize(fit, {"a": {"uniform": [0, 1]}}, metric="val_f1", max_trials=3, experiment="m")
    client = MlflowClient(tracking_uri)
    parent = client.search_runs([client.get_experiment_by_name("m").experiment_id],
                                f"tags.`{TAG}role` = 'search'")[0]
    assert parent.info.status == "FAILED" and parent.data.metrics["n_trials"] == 1   # stopped at once
    with pytest.raises(ConfigError, match=r"search.metric='valid/loss' is not one whose direction"):
        mt.optimize(fit, {"a": {"uniform": [0, 1]}}, metric="valid/loss", max_trials=3)
    out = mt.optimize(fit, {"a": {"uniform": [0, 1]}}, metric="valid/loss", mode="min", max_trials=2,
                      experiment="m", pruning="none")
    assert out.counts["completed"] == 2 and out.best is not None and out.best.objective == 1.0


def test_stages_reach_the_function_as_its_budget(tracking_uri: str) -> None:
    seen: list[dict[str, Any]] = []

    def fit(trial: mt.Trial) -> None:
        seen.append(dict(trial.budget))
        for step in range(trial.budget.get("epochs", 3)):
            trial.report(step, {"score": trial.params["a"] * (step + 1)})

    out = mt.optimize(fit, {"a": {"uniform": [0.1, 1.0]}}, metric="score", mode="max", experiment="st",
                      pruning="none", stages=[{"name": "coarse", "max_trials": 3, "epochs": 2, "subsample": 0.1},
                                              {"name": "fine", "max_trials": 2, "epochs": 5}])
    assert seen[:3] == [{"epochs": 2, "subsample": 0.1}] * 3 and seen[3:] == [{"epochs": 5}] * 2
    assert out.best is not None and out.counts["trials"] == 5


def _tune_file(folder: Path, objective: str, **search: Any) -> Path:
    settings = {"algo": "random", "max_trials": 4, "metric": "val_f1", "mode": "max", "pruning": "none", **search}
    path = folder / "tune.yaml"
    path.write_text(textwrap.dedent(f"""\
        experiment: cli-fn
        objective: {objective}
        train: {{epochs: 3}}
        space: {json.dumps(SPACE)}
        search: {json.dumps(settings)}
        """))
    return path


@pytest.mark.slow
def test_cli_objective_module_function_and_its_errors(tracking_uri: str, user_module: Path) -> None:
    runner = CliRunner()
    config = _tune_file(user_module.parent, "usertrain:fit")
    done = runner.invoke(app, ["search", "--config", str(config), "--json", "--quiet"])
    assert done.exit_code == 0, done.output
    payload = json.loads(done.output.strip().splitlines()[-1])
    assert payload["counts"]["trials"] == 4 and payload["best_params"]
    for objective, needle in (("nosuchmodule:fit", "cannot import 'nosuchmodule'"),
                              ("usertrain:nosuch", "usertrain has no function 'nosuch'; functions there: fit"),
                              ("usertrain", "must be module:function")):
        done = runner.invoke(app, ["search", "--config", str(_tune_file(user_module.parent, objective))])
        assert done.exit_code == 2 and needle in done.output, done.output
        assert len(done.output.strip().splitlines()) == 1


@pytest.mark.slow
def test_resume_a_function_search_after_kill_9(tracking_uri: str, user_module: Path) -> None:
    config = _tune_file(user_module.parent, "usertrain:fit", max_trials=6, algo="tpe")
    config.write_text(config.read_text().replace("epochs: 3", "epochs: 25"))
    env = {"MLFLOW_TRACKING_URI": tracking_uri, "PATH": str(Path(sys.executable).parent)}
    proc = subprocess.Popen([sys.executable, "-m", "mlflow_tune.cli", "search", "--config", str(config), "--quiet"],
                            cwd=user_module.parent, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = MlflowClient(tracking_uri)
    deadline, parent_id = time.monotonic() + 120, ""
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            exp = client.get_experiment_by_name("cli-fn")
            parents = client.search_runs([exp.experiment_id], f"tags.`{TAG}role` = 'search'") if exp else []
            if parents:
                parent_id = parents[0].info.run_id
                kids = child_runs(client, exp.experiment_id, parent_id)
                if sum(1 for k in kids if k.data.tags.get(TAG + "outcome")) >= 1 and \
                        any(k.info.status == "RUNNING" for k in kids):
                    break
            time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert parent_id
    exp_id = client.get_experiment_by_name("cli-fn").experiment_id
    finished_before = {k.data.tags[TAG + "trial"]: k.info.run_id for k in child_runs(client, exp_id, parent_id)
                       if k.data.tags.get(TAG + "outcome")}
    done = CliRunner().invoke(app, ["search", "--config", str(config), "--resume", parent_id, "--quiet", "--json"])
    assert done.exit_code == 0, done.output
    after = child_runs(client, exp_id, parent_id)
    assert not [k for k in after if k.info.status == "RUNNING"]
    outcomes = [k for k in after if k.data.tags.get(TAG + "outcome") not in (None, "interrupted")]
    assert len(outcomes) == 6 and len({k.data.tags[TAG + "trial"] for k in outcomes}) == 6
    for tid, run_id in finished_before.items():   # what finished before the kill was kept, not re-run
        assert any(k.info.run_id == run_id for k in outcomes if k.data.tags[TAG + "trial"] == tid)
    assert client.get_run(parent_id).info.status == "FINISHED"
