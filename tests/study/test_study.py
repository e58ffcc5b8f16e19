"""Searches end to end on a real SQLite store: nesting, summary, grid, parallel, pruning,
NaN and raising trials, resume after `kill -9`, SIGTERM, and every bad-config case via the CLI."""

from __future__ import annotations

import csv
import io
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import start_search_cli
from mlflow import MlflowClient
from typer.testing import CliRunner

from mlflow_tune.cli.app import app
from mlflow_tune.config.tunefile import parse_tune_config
from mlflow_tune.study.study import SearchOutcome, search
from mlflow_tune.tracking.runs import child_runs
from mlflow_tune.training.config import TrainConfig

TAG = "mlflow_tune."
TRAIN = {"dataset": "digits", "model": "mlp", "epochs": 3, "num_threads": 1, "hidden_units": 32}
EPOCH_METRICS = ("train_loss", "val_loss", "train_accuracy", "val_accuracy")


def tune_data(space: dict[str, Any], train: dict[str, Any] | None = None, **search_: Any) -> dict[str, Any]:
    settings = {"algo": "grid", "max_trials": 6, "pruning": "none", "top_k_models": 1, **search_}
    fixed = {k: v for k, v in {**TRAIN, **(train or {})}.items() if k not in space}
    return {"experiment": "t", "train": fixed, "space": space, "search": settings}


def run_search(uri: str, space: dict[str, Any], train: dict[str, Any] | None = None,
               **search_: Any) -> SearchOutcome:
    return search(parse_tune_config(tune_data(space, train, **search_)), tracking_uri=uri)


def children(client: MlflowClient, outcome: SearchOutcome) -> list[Any]:
    return child_runs(client, outcome.experiment_id, outcome.parent_run_id)


def artifact_text(client: MlflowClient, run_id: str, path: str, tmp: Path) -> str:
    return Path(client.download_artifacts(run_id, path, str(tmp))).read_text()


def test_nesting_and_parent_summary(tracking_uri: str, tmp_path: Path) -> None:
    out = run_search(tracking_uri, {"lr": {"choice": [0.003, 0.01]}}, pruning="median")
    client = MlflowClient(tracking_uri)
    kids = children(client, out)
    assert len(kids) == 2 and sorted(k.data.tags[TAG + "trial"] for k in kids) == ["0", "1"]
    for kid in kids:
        tags = kid.data.tags
        assert tags["mlflow.parentRunId"] == out.parent_run_id and tags[TAG + "role"] == "trial"
        assert kid.info.status == "FINISHED" and tags[TAG + "outcome"] == "completed"
        assert set(TrainConfig.__dataclass_fields__) <= set(kid.data.params)
        assert "objective" in kid.data.metrics and "best_val_accuracy" in kid.data.metrics
        for key in EPOCH_METRICS:
            assert [m.step for m in client.get_metric_history(kid.info.run_id, key)] == [0, 1, 2]
    parent = client.get_run(out.parent_run_id)
    assert parent.info.status == "FINISHED" and parent.data.tags[TAG + "role"] == "search"
    best = min(kids, key=lambda k: k.data.metrics["objective"])
    assert parent.data.tags[TAG + "best_run_id"] == best.info.run_id == out.best.run_id
    assert float(parent.data.params["lr"]) == float(best.data.params["lr"])
    assert parent.data.metrics["objective"] == pytest.approx(best.data.metrics["objective"])
    assert parent.data.metrics["n_trials"] == 2 and parent.data.metrics["n_completed"] == 2
    text = artifact_text(client, out.parent_run_id, "trials.csv", tmp_path)
    table = list(csv.DictReader(io.StringIO(text)))
    assert sorted(r["run_id"] for r in table) == sorted(k.info.run_id for k in kids)
    assert all(r["status"] == "completed" for r in table)
    assert "lr" in artifact_text(client, out.parent_run_id, "tune.yaml", tmp_path)
    # the winner has a full model; top_k_models=1 keeps it to the best at the time it finished
    assert TAG + "model_uri" in best.data.tags
    for kid in kids:   # every trial keeps its checkpoint and history; the UI and the report draw the curves
        files = {a.path for a in client.list_artifacts(kid.info.run_id)}
        assert {"checkpoints", "metrics_history.csv"} <= files
        assert "learning_curves.png" not in files


def test_grid_enumerates_exactly_the_combinations(tracking_uri: str) -> None:
    space = {"lr": {"choice": [0.003, 0.01]}, "hidden_units": {"choice": [16, 32, 48]}}
    out = run_search(tracking_uri, space, train={"epochs": 1}, max_trials=50,
                     top_k_models=0)
    kids = children(MlflowClient(tracking_uri), out)
    combos = [(float(k.data.params["lr"]), int(k.data.params["hidden_units"])) for k in kids]
    assert sorted(combos) == sorted((a, b) for a in (0.003, 0.01) for b in (16, 32, 48))
    assert out.stopped_by == "grid_exhausted" and out.counts["trials"] == 6


def test_parallel_workers_run_trials_concurrently(tracking_uri: str) -> None:
    out = run_search(tracking_uri, {"lr": {"choice": [0.001, 0.003, 0.01, 0.03]}},
                     train={"epochs": 8}, parallel=2, top_k_models=0)
    client = MlflowClient(tracking_uri)
    kids = children(client, out)
    assert len(kids) == 4 and all(k.info.status == "FINISHED" for k in kids)
    # trials trained in two worker processes, neither of them this one
    workers = {k.data.tags[TAG + "worker"] for k in kids}
    assert len(workers) == 2 and all(not w.endswith(f":{os.getpid()}") for w in workers)
    # a second search in the process trains in the same workers: they start once per process
    again = run_search(tracking_uri, {"lr": {"choice": [0.001, 0.003]}}, train={"epochs": 2}, parallel=2)
    assert {k.data.tags[TAG + "worker"] for k in children(client, again)} <= workers


def test_parallel_search_prunes_across_workers_and_keeps_the_top_models(tracking_uri: str) -> None:
    # The board (curves for the pruner, losses for top-k) lives in the driver; workers ask it over their pipes.
    out = run_search(tracking_uri, {"lr": {"choice": [0.01, 0.003, 0.001, 1e-5]}}, train={"epochs": 4},
                     parallel=2, pruning="median", pruning_warmup=1, min_trials_for_pruning=2, top_k_models=1)
    client = MlflowClient(tracking_uri)
    kids = {float(k.data.params["lr"]): k for k in children(client, out)}
    bad = kids[1e-5]
    assert bad.info.status == "FINISHED" and bad.data.tags[TAG + "pruned"] == "true"
    assert 1 <= len(client.get_metric_history(bad.info.run_id, "val_loss")) < 4
    assert out.best is not None and TAG + "model_uri" in client.get_run(out.best.run_id).data.tags
    assert len({k.data.tags[TAG + "worker"] for k in kids.values()}) == 2


DIES = '''
import os
from torch import nn


def build(cfg, spec):
    os._exit(7)   # the worker process itself goes, as on an out-of-memory kill
'''


def test_a_trial_that_kills_its_worker_is_failed_and_the_search_goes_on(tracking_uri: str, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "dies_model.py").write_text(DIES)
    monkeypatch.syspath_prepend(str(tmp_path))   # after the workers started: they follow the driver's path
    out = run_search(tracking_uri, {"model": {"choice": ["dies_model:build", "mlp"]}, "lr": {"choice": [0.003, 0.01]}},
                     parallel=2)
    failed = [o for o in out.trials if o.params["model"] == "dies_model:build"]
    assert len(failed) == 2 and all(o.status == "failed" and "died" in o.error for o in failed)
    run = MlflowClient(tracking_uri).get_run(failed[0].run_id)
    assert run.info.status == "FAILED" and "died" in run.data.tags[TAG + "error"]
    assert out.counts["completed"] == 2 and out.best is not None and out.best.params["model"] == "mlp"


def test_pruning_stops_a_clearly_bad_trial(tracking_uri: str) -> None:
    out = run_search(tracking_uri, {"lr": {"choice": [0.01, 0.003, 0.001, 1e-5]}}, train={"epochs": 4},
                     pruning="median", pruning_warmup=1, min_trials_for_pruning=2)
    client = MlflowClient(tracking_uri)
    bad = next(k for k in children(client, out) if float(k.data.params["lr"]) == 1e-5)
    assert bad.info.status == "FINISHED" and bad.data.tags[TAG + "pruned"] == "true"
    history = client.get_metric_history(bad.info.run_id, "val_loss")
    assert 1 <= len(history) < 4                      # stopped early, curve kept
    # lr 1e-3 may also fall below the median after 2 epochs; the clearly bad one must
    assert out.counts.get("pruned", 0) >= 1 and out.best is not None and out.best.params["lr"] != 1e-5


def test_hyperband_prunes_within_brackets_and_runs_its_last_bracket_in_full(tracking_uri: str) -> None:
    from mlflow_tune.pruners.make import make_pruner

    # Brackets of (1, 4 epochs, reduction 2): first rungs 1, 2 and 4 (never prunes); trials 0, 3 |
    # 1, 4 | 2, 5. The tiny learning rates are hopeless; each meets a good trial of its bracket.
    lrs = [0.01, 0.008, 1e-6, 2e-6, 3e-6, 0.005]
    out = run_search(tracking_uri, {"lr": {"choice": lrs}}, train={"epochs": 4}, pruning="hyperband",
                     pruning_warmup=1, asha_reduction=2)
    hyperband = make_pruner("hyperband", warmup=1, reduction=2, horizon=4)
    assert [hyperband.bracket(o.tid) for o in sorted(out.trials, key=lambda o: o.tid)] == [0, 1, 2, 0, 1, 2]
    client = MlflowClient(tracking_uri)
    runs = {float(k.data.params["lr"]): k for k in children(client, out)}
    for lr, rung in ((2e-6, 1), (3e-6, 2)):
        run = runs[lr]
        assert run.data.tags[TAG + "pruned"] == "true" and "Hyperband bracket" in run.data.tags[TAG + "stop_reason"]
        assert len(client.get_metric_history(run.info.run_id, "val_loss")) == rung
    last = runs[1e-6]   # as hopeless, but in the bracket that hedges against early judgement
    assert last.data.tags[TAG + "outcome"] == "completed"
    assert len(client.get_metric_history(last.info.run_id, "val_loss")) == 4


def test_nan_trial_is_recorded_and_the_search_goes_on(tracking_uri: str) -> None:
    out = run_search(tracking_uri, {"lr": {"choice": [500.0, 0.01]}}, train={"optimizer": "sgd"})
    by_lr = {o.params["lr"]: o for o in out.trials}
    assert by_lr[500.0].status == "nonconvergent" and by_lr[0.01].status == "completed"
    assert out.best is not None and out.best.tid == by_lr[0.01].tid
    run = MlflowClient(tracking_uri).get_run(by_lr[500.0].run_id)
    assert run.info.status == "FAILED" and run.data.tags[TAG + "outcome"] == "nonconvergent"


BOOM = '''
import torch
from torch import nn


class Boom(nn.Module):
    def __init__(self, n_in, n_out):
        super().__init__()
        self.lin = nn.Linear(n_in, n_out)

    def forward(self, x):
        raise RuntimeError("boom in forward")


def build(cfg, spec):
    import math
    return Boom(math.prod(spec.input_shape), spec.n_classes)
'''


def test_raising_trial_is_a_failed_child_and_the_search_goes_on(tracking_uri: str, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "boom_model.py").write_text(BOOM)
    monkeypatch.syspath_prepend(str(tmp_path))
    out = run_search(tracking_uri, {"model": {"choice": ["boom_model:build", "mlp"]}})
    client = MlflowClient(tracking_uri)
    failed = next(o for o in out.trials if o.params["model"] == "boom_model:build")
    assert failed.status == "failed" and "boom in forward" in failed.error
    run = client.get_run(failed.run_id)
    assert run.info.status == "FAILED" and "boom in forward" in run.data.tags[TAG + "error"]
    assert "RuntimeError" in artifact_text(client, failed.run_id, "error.txt", tmp_path)
    assert out.counts["failed"] == 1 and out.counts["completed"] == 1 and out.best.params["model"] == "mlp"
    assert client.get_run(out.parent_run_id).data.metrics["n_failed"] == 1


def _write_tune(tmp_path: Path, **search_: Any) -> Path:
    path = tmp_path / "tune.yaml"
    space = {"lr": {"choice": [0.001, 0.003, 0.01]}, "hidden_units": {"choice": [16, 32]}}
    # long enough trials (~0.3 s) that the search is still running when the test has seen one end
    path.write_text(yaml.safe_dump(tune_data(space, {"epochs": 30}, top_k_models=0, **search_)))
    return path


def _wait_for(client: MlflowClient, proc: subprocess.Popen[bytes], finished: int,
              timeout: float = 150) -> tuple[str, list[Any]]:
    """Poll the store until `finished` trials are over (their outcome is written) and another
    one is running, so the signal lands in the middle of a search, not in its first imports.

    Trial runs are made ahead of their trials; everything else a trial writes goes through the
    background writer, a little later.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the search ended before it could be interrupted"
        parents = client.search_runs(["1"], f"tags.`{TAG}role` = 'search'") if \
            client.get_experiment_by_name("t") else []
        if parents:
            pid = parents[0].info.run_id
            kids = child_runs(client, parents[0].info.experiment_id, pid)
            done = [k for k in kids if k.data.tags.get(TAG + "outcome")]
            if len(done) >= finished and len(kids) > len(done):
                return pid, kids
        time.sleep(0.1)
    raise AssertionError("timed out waiting for finished trials")


@pytest.mark.slow
@pytest.mark.parametrize("parallel", [1, 2])
def test_resume_after_kill_9_loses_and_duplicates_nothing(tracking_uri: str, tmp_path: Path, parallel: int) -> None:
    config = _write_tune(tmp_path, parallel=parallel)
    client = MlflowClient(tracking_uri)
    proc = start_search_cli(config, tracking_uri)
    try:
        parent_id, _ = _wait_for(client, proc, finished=2)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    # The writer thread died with the process: what it had queued is lost and re-run on resume.
    before = child_runs(client, "1", parent_id)
    done_before = {k.data.tags[TAG + "trial"]: k.info.run_id for k in before if k.info.status == "FINISHED"}
    killed = [k.info.run_id for k in before if k.info.status == "RUNNING"]
    assert killed   # trials whose files had not been written count as unfinished: they are re-run

    from mlflow_tune.config.tunefile import load_tune_file

    out = search(load_tune_file(config), tracking_uri=tracking_uri, resume=parent_id)
    assert out.parent_run_id == parent_id and client.get_run(parent_id).info.status == "FINISHED"
    tids = [o.tid for o in out.trials]
    assert len(tids) == len(set(tids)) == 6               # unique, total = max_trials
    after = child_runs(client, "1", parent_id)
    numbers = [k.data.tags[TAG + "trial"] for k in after]
    assert len(numbers) == len(set(numbers))              # numbering continues: none reused
    finished = [k.data.tags[TAG + "trial"] for k in after if k.info.status == "FINISHED"]
    assert len(finished) == 6                             # no trial finished twice
    for tid, run_id in done_before.items():               # finished trials were not re-run
        assert next(o for o in out.trials if str(o.tid) == tid).run_id == run_id
    for run_id in killed:
        run = client.get_run(run_id)
        assert run.info.status == "KILLED" and run.data.tags[TAG + "outcome"] == "interrupted"
    grid = {(float(k.data.params["lr"]), int(k.data.params["hidden_units"]))
            for k in after if k.info.status == "FINISHED"}
    assert len(grid) == 6                                 # the grid was covered once
    assert client.get_run(parent_id).data.metrics["n_trials"] == 6


@pytest.mark.slow
@pytest.mark.parametrize("parallel", [1, 2])
def test_sigterm_kills_running_children_and_writes_the_summary(tracking_uri: str, tmp_path: Path,
                                                                parallel: int) -> None:
    config = _write_tune(tmp_path, parallel=parallel)
    client = MlflowClient(tracking_uri)
    proc = start_search_cli(config, tracking_uri)
    try:
        parent_id, _ = _wait_for(client, proc, finished=1)
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert code == 130
    parent = client.get_run(parent_id)
    assert parent.info.status == "KILLED" and parent.data.tags[TAG + "stopped_by"] == "interrupted"
    kids = child_runs(client, "1", parent_id)
    assert "RUNNING" not in [k.info.status for k in kids]
    assert any(k.info.status == "KILLED" and k.data.tags.get(TAG + "outcome") == "interrupted" for k in kids)
    table = artifact_text(client, parent_id, "trials.csv", tmp_path)
    assert table.startswith("trial,run_id,status")


GOOD_SPACE = {"lr": {"loguniform": [1e-4, 1]}}


@pytest.mark.parametrize(("space", "args", "needle"), [
    ({"learning_rate": {"loguniform": [1e-4, 1]}}, [], "learning_rate"),
    ({"dropout": {"uniform": [0.5, 0.2]}}, [], "dropout"),
    ({"lr": {"loguniform": [0, 1]}}, [], "lr"),
    ({"optimizer": {"choice": []}}, [], "optimizer"),
    (GOOD_SPACE, ["--algo", "foo"], "algo"),
])
def test_bad_config_exits_2_with_one_line_naming_the_entry(tmp_path: Path, space: dict[str, Any],
                                                             args: list[str], needle: str) -> None:
    path = tmp_path / "tune.yaml"
    path.write_text(yaml.safe_dump(tune_data(space, algo="tpe")))
    result = CliRunner().invoke(app, ["search", "--config", str(path),
                                      "--tracking-uri", f"sqlite:///{tmp_path}/x.db", *args])
    message = result.output.strip()
    assert result.exit_code == 2, result.output
    assert len(message.splitlines()) == 1 and needle in message and "Traceback" not in message
    assert not (tmp_path / "x.db").exists()               # validated before anything ran


def test_malformed_yaml_and_missing_file_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("space:\n  lr: {loguniform: [1e-4, 1]\n  dropout: [\n")
    for path, needle in ((bad, "not valid YAML"), (tmp_path / "missing.yaml", "does not exist")):
        result = CliRunner().invoke(app, ["search", "--config", str(path)])
        assert result.exit_code == 2 and needle in result.output
        assert len(result.output.strip().splitlines()) == 1


def test_resume_with_a_bogus_id_exits_2(tracking_uri: str, tmp_path: Path) -> None:
    path = tmp_path / "tune.yaml"
    path.write_text(yaml.safe_dump(tune_data(GOOD_SPACE, algo="tpe")))
    result = CliRunner().invoke(app, ["search", "--config", str(path), "--tracking-uri", tracking_uri,
                                      "--resume", "0123456789abcdef0123456789abcdef"])
    assert result.exit_code == 2 and "--resume" in result.output and "0123456789abcdef" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_resume_ends_a_trial_whose_outcome_was_written_but_not_its_end(tracking_uri: str, tmp_path: Path) -> None:
    """kill -9 between a trial's outcome tag and its run's end: resume keeps the trial and ends its run."""
    from mlflow_tune.config.settings import SearchSettings
    from mlflow_tune.study.driver import restore_trials

    client = MlflowClient(tracking_uri)
    out = run_search(tracking_uri, {"lr": {"choice": [0.01, 0.03]}})
    kids = children(client, out)
    half = kids[0].info.run_id
    client.update_run(half, status="RUNNING")   # as if killed after the outcome tag
    restored, _ = restore_trials(client, out.experiment_id, out.parent_run_id, ("lr",), SearchSettings())
    assert half in {o.run_id for o in restored}
    assert client.get_run(half).info.status == "FINISHED"


def test_resume_ends_a_discarded_run_made_ahead_that_was_left_running(tracking_uri: str) -> None:
    """A run made ahead and deleted while RUNNING (an older version's discard) is ended by --resume."""
    from mlflow_tune.config.settings import SearchSettings
    from mlflow_tune.study.driver import restore_trials

    client = MlflowClient(tracking_uri)
    out = run_search(tracking_uri, {"lr": {"choice": [0.01, 0.03]}})
    ahead = client.create_run(out.experiment_id, tags={"mlflow.parentRunId": out.parent_run_id,
                                                       TAG + "role": "trial", TAG + "trial": "2"}).info.run_id
    client.delete_run(ahead)
    restored, _ = restore_trials(client, out.experiment_id, out.parent_run_id, ("lr",), SearchSettings())
    assert client.get_run(ahead).info.status == "KILLED" and len(restored) == 2


def test_runs_made_ahead_and_not_used_are_ended_before_they_are_deleted(tracking_uri: str) -> None:
    from mlflow.entities import ViewType

    # the target is met by the first trial: the run made ahead for the second is never used
    out = run_search(tracking_uri, {"lr": {"choice": [0.01, 0.03, 0.1]}}, max_trials=3, target=100.0)
    assert out.stopped_by == "target"
    client = MlflowClient(tracking_uri)
    deleted = client.search_runs([out.experiment_id], run_view_type=ViewType.DELETED_ONLY)
    assert deleted and all(r.info.status == "KILLED" for r in deleted), [r.info.status for r in deleted]


def test_a_search_logs_the_models_of_its_k_best_trials_only(tracking_uri: str) -> None:
    # lr rising: each trial may be among the best when it ends; only the final best two keep a model
    out = run_search(tracking_uri, {"lr": {"choice": [0.001, 0.003, 0.01, 0.03]}}, top_k_models=2)
    client = MlflowClient(tracking_uri)
    with_model = {k.info.run_id for k in children(client, out) if TAG + "model_uri" in k.data.tags}
    best_two = {o.run_id for o in sorted((o for o in out.trials if o.loss is not None), key=lambda o: o.loss)[:2]}
    assert with_model == best_two


def test_the_board_keeps_the_k_best_offered_models() -> None:
    from mlflow_tune.trials.records import Board

    board = Board()
    for tid, loss in enumerate([0.5, 0.4, 0.9, 0.1, 0.3]):
        board.offer(tid, f"run{tid}", loss, f"model{tid}", keep=2)
    assert [(tid, run) for tid, run, _ in board.take_models(2, range(5))] == [(3, "run3"), (4, "run4")]
    assert board.take_models(2, range(5)) == []


def test_a_trial_that_offered_its_model_and_did_not_finish_takes_no_finished_ones_place() -> None:
    from mlflow_tune.trials.records import Board

    board = Board()   # trial 3 offered the best model, then its worker was killed: it is FAILED
    for tid, loss in enumerate([0.5, 0.4, 0.9, 0.1, 0.3]):
        board.offer(tid, f"run{tid}", loss, f"model{tid}", keep=2)
    assert [tid for tid, _, _ in board.take_models(2, {0, 1, 2, 4})] == [4, 1]
