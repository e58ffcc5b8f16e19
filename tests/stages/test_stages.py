"""Coarse-to-fine stages: planning a stage from synthetic results (narrowing, diagnosis-guided moves,
held parameters, retrain points), the retrain table, the run hierarchy in a real SQLite store, and
resume after `kill -9` in the middle of stage 2. Narrowing itself is tested in test_space.py."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import start_search_cli
from mlflow import MlflowClient

from mlflow_tune.config.tunefile import TuneConfig, load_tune_file, parse_tune_config
from mlflow_tune.registry.trials import find_trials
from mlflow_tune.stages.plan import plan_stage, top_trials
from mlflow_tune.study.study import search
from mlflow_tune.study.summary import retrain_table, retrain_winner
from mlflow_tune.tracking.runs import child_runs
from mlflow_tune.trials.records import TrialOutcome

TAG = "mlflow_tune."
SPACE = {"lr": {"loguniform": [1e-4, 1.0]}, "hidden_units": {"logint": [16, 256]},
         "dropout": {"uniform": [0.0, 0.6]}, "layers": {"int": [1, 3]},
         "optimizer": {"choice": ["adam", "rmsprop", "momentum"]}}


def tune_with(stages: list[dict[str, Any]], space: dict[str, Any] | None = None) -> TuneConfig:
    train = {"dataset": "digits", "epochs": 4, "num_threads": 1}
    return parse_tune_config({"experiment": "t", "train": train, "space": space or SPACE, "stages": stages})


def outcome(tid: int, loss: float | None, diagnosis: str = "healthy", status: str = "completed",
            **params: Any) -> TrialOutcome:
    return TrialOutcome(tid, f"run{tid}", status, None if loss is None else loss, loss, diagnosis, 3, "",
                        params)


COARSE = {"name": "coarse", "algo": "random", "max_trials": 4, "epochs": 2, "subsample": 0.2}


def fine(**settings: Any) -> dict[str, Any]:
    return {"name": "fine", "max_trials": 4, "epochs": 6, "top_k": 2, "margin": 0, **settings}


def plan_after(tune: TuneConfig, previous: list[TrialOutcome], best_so_far: dict[str, Any] | None = None,
               index: int = 1) -> Any:
    return plan_stage(tune, index, previous, best_so_far or {}, tune.space)


# --------------------------------------------------------------------------------------------- planning


def test_first_stage_searches_the_whole_space_on_its_own_budget() -> None:
    tune = tune_with([COARSE, fine()])
    plan = plan_stage(tune, 0, [], {}, tune.space)
    assert plan.space == tune.space and plan.reasons == () and plan.points == ()
    assert plan.base == {"dataset": "digits", "epochs": 2, "num_threads": 1, "subsample": 0.2}


def test_next_stage_narrows_around_the_top_k_and_logs_each_change() -> None:
    tune = tune_with([COARSE, fine(guided=False)])
    previous = [outcome(0, 0.5, lr=1e-3, hidden_units=32, dropout=0.1, layers=1, optimizer="adam"),
                outcome(1, 0.4, lr=1e-2, hidden_units=64, dropout=0.3, layers=2, optimizer="rmsprop"),
                outcome(2, 2.0, lr=0.5, hidden_units=256, dropout=0.6, layers=3, optimizer="momentum"),
                outcome(3, None, "nonconvergent", "failed", lr=1.0, hidden_units=16, dropout=0.0, layers=1,
                        optimizer="momentum")]
    plan = plan_after(tune, previous)
    assert plan.space.get("lr").to_spec() == {"loguniform": [1e-3, 1e-2]}   # log scale, top 2 only
    assert plan.space.get("hidden_units").to_spec() == {"logint": [32, 64]}
    assert plan.space.get("dropout").to_spec() == {"uniform": [0.1, 0.3]}
    assert plan.space.get("layers").to_spec() == {"int": [1, 2]}
    assert plan.space.get("optimizer").choices == ("adam", "rmsprop")      # the worst trial's choice dropped
    assert "lr 0.0001..1 -> 0.001..0.01" in plan.reasons
    assert "optimizer {adam, rmsprop, momentum} -> {adam, rmsprop}" in plan.reasons
    assert plan.base["epochs"] == 6 and "subsample" not in plan.base     # the fine stage's own budget
    assert [o.tid for o in top_trials(previous, 2)] == [1, 0]             # failed trials never rank


def _previous(labels: list[str]) -> list[TrialOutcome]:
    """Top trials at hidden 32..64, dropout 0.2..0.3, lr 1e-2..1e-1; one bad trial elsewhere."""
    values = [(32, 0.2, 1e-2), (64, 0.3, 1e-1), (45, 0.25, 3e-2), (40, 0.22, 5e-2)]
    tops = [outcome(i, 0.1 * (i + 1), label, lr=lr, hidden_units=h, dropout=d, layers=2, optimizer="adam")
            for i, (label, (h, d, lr)) in enumerate(zip(labels, values, strict=True))]
    return [*tops, outcome(9, 3.0, "healthy", lr=1e-4, hidden_units=256, dropout=0.0, layers=1,
                           optimizer="momentum")]


def test_mostly_underfit_moves_capacity_up_and_regularisation_down_with_reasons() -> None:
    labels = ["underfit", "underfit", "underfit", "healthy"]
    plain = plan_after(tune_with([COARSE, fine(top_k=4, guided=False)]), _previous(labels))
    guided = plan_after(tune_with([COARSE, fine(top_k=4)]), _previous(labels))
    before, after = plain.space, guided.space
    assert before.get("hidden_units").to_spec() == {"logint": [32, 64]}
    assert after.get("hidden_units").to_spec() == {"logint": [64, 128]}   # up by its own width (log)
    assert after.get("layers") == before.get("layers")                   # 2..3 is already at the top
    assert "3 of 4 top trials underfit: layers stays 2..3 (no room to move up)" in guided.reasons
    assert after.get("dropout").high < before.get("dropout").high          # regularisation down
    assert after.get("dropout").to_spec() == {"uniform": [0.1, 0.2]}
    assert after.get("lr") == before.get("lr")                            # no nonconvergence: lr stays
    assert "3 of 4 top trials underfit: hidden_units 32..64 -> 64..128" in guided.reasons
    assert any(r.startswith("3 of 4 top trials underfit: dropout 0.2..0.3 -> ") for r in guided.reasons)
    assert not any("underfit" in r for r in plain.reasons)


def test_half_underfit_is_not_most_and_moves_nothing() -> None:
    labels = ["underfit", "underfit", "healthy", "healthy"]
    plain = plan_after(tune_with([COARSE, fine(top_k=4, guided=False)]), _previous(labels))
    guided = plan_after(tune_with([COARSE, fine(top_k=4)]), _previous(labels))
    assert guided.space == plain.space and guided.reasons == plain.reasons


def test_mostly_overfit_moves_regularisation_up() -> None:
    labels = ["overfit", "overfit", "overfit", "healthy"]
    guided = plan_after(tune_with([COARSE, fine(top_k=4)]), _previous(labels))
    assert guided.space.get("dropout").to_spec() == {"uniform": [0.3, 0.4]}
    assert guided.space.get("hidden_units").to_spec() == {"logint": [32, 64]}   # capacity left alone
    assert any(r.startswith("3 of 4 top trials overfit: dropout") for r in guided.reasons)


def test_nonconvergent_top_trials_move_the_lr_range_down_a_decade() -> None:
    labels = ["nonconvergent", "healthy", "healthy", "nonconvergent"]
    guided = plan_after(tune_with([COARSE, fine(top_k=4)]), _previous(labels))
    assert guided.space.get("lr").to_spec() == {"loguniform": [1e-3, 1e-2]}
    assert "2 of 4 top trials nonconvergent: lr 0.01..0.1 -> 0.001..0.01" in guided.reasons


def test_params_restriction_holds_the_rest_at_the_best_values_so_far() -> None:
    tune = tune_with([COARSE, fine(params=["lr", "dropout"])])
    best = {"lr": 0.02, "hidden_units": 48, "dropout": 0.25, "layers": 2, "optimizer": "adam"}
    plan = plan_after(tune, _previous(["healthy"] * 4), best)
    assert plan.space.names == ("lr", "dropout")
    assert {k: plan.base[k] for k in ("hidden_units", "layers", "optimizer")} == \
        {"hidden_units": 48, "layers": 2, "optimizer": "adam"}
    assert "lr" not in plan.base and "dropout" not in plan.base
    assert "held at best so far: hidden_units=48, layers=2, optimizer=adam" in plan.reasons
    tune.trial_config({**plan.base, **plan.space.example()})   # a valid TrainConfig


def test_retrain_points_are_the_top_configs_times_seeds_with_held_values() -> None:
    tune = tune_with([COARSE, fine(params=["lr"]), {"name": "final", "retrain": 2, "seeds": 3, "epochs": 9}])
    previous = [outcome(4, 0.3, lr=0.01), outcome(5, 0.1, lr=0.02), outcome(6, 0.2, lr=0.03),
                outcome(7, None, "nonconvergent", "failed", lr=0.9)]
    best = {"lr": 0.02, "hidden_units": 48, "dropout": 0.25, "layers": 2, "optimizer": "adam"}
    plan = plan_stage(tune, 2, previous, best, tune.space)
    held = {"hidden_units": 48, "dropout": 0.25, "layers": 2, "optimizer": "adam"}
    assert list(plan.points) == [{**held, "lr": lr, "seed": seed} for lr in (0.02, 0.03) for seed in range(3)]
    assert plan.base["epochs"] == 9 and plan.reasons == ("retrain top 2 x 3 seeds",)


def test_retrain_winner_is_the_best_mean_not_the_luckiest_seed_and_ties_go_to_the_steadier() -> None:
    lucky = [TrialOutcome(0, "l0", "completed", 0.05, 0.05, params={"lr": 0.1, "seed": 0}),
             TrialOutcome(1, "l1", "completed", 0.35, 0.35, params={"lr": 0.1, "seed": 1})]
    steady = [TrialOutcome(2, "s0", "completed", 0.15, 0.15, params={"lr": 0.01, "seed": 0}),
              TrialOutcome(3, "s1", "completed", 0.17, 0.17, params={"lr": 0.01, "seed": 1})]
    assert retrain_table(lucky + steady)[0]["run_ids"] == ["s0", "s1"]   # mean 0.16 beats 0.20 (best seed 0.05)
    same_mean = [TrialOutcome(4, "w0", "completed", 0.10, 0.10, params={"lr": 0.5, "seed": 0}),
                 TrialOutcome(5, "w1", "completed", 0.22, 0.22, params={"lr": 0.5, "seed": 1})]
    assert retrain_table(same_mean + steady)[0]["run_ids"] == ["s0", "s1"]   # 0.16 each: spread 0.01 < 0.06
    assert retrain_winner(steady)["run_ids"] == ["s0", "s1"] and retrain_winner(steady)["seeds"] == 2
    assert retrain_winner(lucky + steady) == {} and retrain_winner(steady[:1]) == {} and retrain_winner(None) == {}


def test_retrain_table_mean_and_spread_per_configuration() -> None:
    runs = [TrialOutcome(0, "a0", "completed", 0.90, -0.90, params={"lr": 0.01, "seed": 0}),
            TrialOutcome(1, "a1", "completed", 0.80, -0.80, params={"lr": "0.01", "seed": "1"}),  # restored
            TrialOutcome(2, "b0", "completed", 0.95, -0.95, params={"lr": 0.02, "seed": 0}),
            TrialOutcome(3, "b1", "completed", 0.93, -0.93, params={"lr": 0.02, "seed": 1}),
            TrialOutcome(4, "c0", "failed", params={"lr": 0.5, "seed": 0})]
    rows = retrain_table(runs)
    assert [r["run_ids"] for r in rows] == [["b0", "b1"], ["a0", "a1"]]   # best mean first, failed dropped
    assert rows[0]["mean"] == pytest.approx(0.94) and rows[0]["std"] == pytest.approx(0.01)
    assert rows[1]["mean"] == pytest.approx(0.85) and rows[1]["std"] == pytest.approx(0.05)
    assert rows[0]["seeds"] == 2 and rows[0]["params"] == {"lr": 0.02}


# ------------------------------------------------------------------------------------ real MLflow store

STAGED = {
    "experiment": "t",
    "train": {"dataset": "digits", "model": "mlp", "epochs": 3, "num_threads": 1},
    "space": {"lr": {"loguniform": [1e-3, 0.1]}, "hidden_units": {"logint": [16, 64]},
              "dropout": {"uniform": [0.0, 0.4]}},
    "search": {"pruning": "none", "top_k_models": 0, "seed": 3},
    "stages": [{"name": "coarse", "algo": "random", "max_trials": 3, "epochs": 2, "subsample": 0.3,
                "classes": "0,1"},
               {"name": "fine", "algo": "tpe", "max_trials": 3, "epochs": 3, "top_k": 2,
                "params": ["lr", "hidden_units"]},
               {"name": "final", "retrain": 2, "seeds": 2, "epochs": 3}],
}


def _runs(client: MlflowClient, experiment_id: str, parent_id: str) -> dict[str, list[Any]]:
    stages = child_runs(client, experiment_id, parent_id)
    return {s.data.tags[TAG + "stage"]: child_runs(client, experiment_id, s.info.run_id) for s in stages}


def _artifact(client: MlflowClient, run_id: str, path: str, tmp: Path) -> Any:
    return json.loads(Path(client.download_artifacts(run_id, path, str(tmp))).read_text())


def test_staged_search_builds_the_run_hierarchy(tracking_uri: str, tmp_path: Path) -> None:
    out = search(parse_tune_config(STAGED), tracking_uri=tracking_uri)
    client = MlflowClient(tracking_uri)
    parent = client.get_run(out.parent_run_id)
    assert parent.info.status == "FINISHED" and parent.data.tags[TAG + "role"] == "search"
    stages = child_runs(client, out.experiment_id, out.parent_run_id)
    assert [s.data.tags[TAG + "role"] for s in stages] == ["stage"] * 3
    assert [s.data.tags[TAG + "stage"] for s in stages] == ["0", "1", "2"]
    trials = _runs(client, out.experiment_id, out.parent_run_id)
    tids = {i: sorted(int(t.data.tags[TAG + "trial"]) for t in trials[i]) for i in trials}
    assert tids == {"0": [0, 1, 2], "1": [3, 4, 5], "2": [6, 7, 8, 9]}      # unique across stages
    for stage in stages:
        assert stage.info.status == "FINISHED"
        assert stage.data.tags["mlflow.parentRunId"] == out.parent_run_id
        for trial in trials[stage.data.tags[TAG + "stage"]]:
            assert trial.data.tags["mlflow.parentRunId"] == stage.info.run_id
            assert trial.data.tags[TAG + "role"] == "trial"
            assert trial.data.tags[TAG + "stage"] == stage.data.tags[TAG + "stage"]
    coarse, fine_, final = stages
    # each stage's budget reached its trials; its plan is logged as params and an artifact
    assert {(t.data.params["epochs"], t.data.params["subsample"], t.data.params["classes"])
            for t in trials["0"]} == {("2", "0.3", "0,1")}
    assert {(t.data.params["epochs"], t.data.params["subsample"]) for t in trials["1"]} == {("3", "1.0")}
    assert coarse.data.params["stage.subsample"] == "0.3" and coarse.data.params["stage.algo"] == "random"
    assert "space.lr" in coarse.data.params and "space.lr" in fine_.data.params
    assert "space.dropout" not in fine_.data.params                       # fine tunes lr, hidden_units only
    plan = _artifact(client, fine_.info.run_id, "stage_plan.json", tmp_path / "a")
    assert set(plan["space"]) == {"lr", "hidden_units"} and "dropout" in plan["fixed"]
    assert any(a.startswith("held at best so far: dropout=") for a in plan["adjustments"])
    assert "held at best so far" in fine_.data.tags[TAG + "adjustments"]
    held = {t.data.params["dropout"] for t in trials["1"]}
    assert len(held) == 1                                                   # one held dropout ...
    retrain = {t.data.params["dropout"] for t in trials["2"]}
    assert retrain == held                                                  # ... kept by the retrain
    low, high = json.loads(fine_.data.params["space.lr"])["loguniform"]
    assert all(low <= float(t.data.params["lr"]) <= high for t in trials["1"])
    # the retrain: 2 configurations x 2 seeds, mean and spread logged
    points = _artifact(client, final.info.run_id, "stage_plan.json", tmp_path / "b")["points"]
    assert sorted(p["seed"] for p in points) == [0, 0, 1, 1]
    rows = _artifact(client, final.info.run_id, "retrain.json", tmp_path / "c")
    assert len(rows) == 2 and all(r["seeds"] == 2 for r in rows)
    assert {"retrain_0_mean", "retrain_0_std", "retrain_1_mean"} <= set(final.data.metrics)
    # the best comes from the last stage: the best seed of the best configuration on average
    last = {t.info.run_id: t for t in trials["2"]}
    best_id = parent.data.tags[TAG + "best_run_id"]
    assert best_id == out.best.run_id and best_id in last and best_id in rows[0]["run_ids"]
    assert out.best.loss == min(last[r].data.metrics["objective"] for r in rows[0]["run_ids"])
    assert parent.data.metrics["n_trials"] == 10
    # the winning configuration (best mean) is named on the parent, and promote picks only from it
    assert parent.data.tags[TAG + "winner_run_ids"].split(",") == rows[0]["run_ids"] == out.winner["run_ids"]
    assert parent.data.metrics["winner_mean"] == pytest.approx(rows[0]["mean"])
    assert parent.data.metrics["winner_std"] == pytest.approx(rows[0]["std"])
    assert sorted(t.run_id for t in find_trials(client, out.parent_run_id)) == sorted(rows[0]["run_ids"])


def _wait_in_stage(client: MlflowClient, proc: subprocess.Popen[bytes], stage: str,
                   timeout: float = 150) -> str:
    """Poll until `stage` has one trial over and another one training; the search run's id.

    The driver creates a trial's run when it starts it (parallel 1: after the previous one
    ended); status and outcome follow through the background writer, so they are not waited on.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the search ended before it could be interrupted"
        experiment = client.get_experiment_by_name("t")
        parents = client.search_runs([experiment.experiment_id], f"tags.`{TAG}role` = 'search'") \
            if experiment else []
        if parents:
            runs = _runs(client, experiment.experiment_id, parents[0].info.run_id)
            if len(runs.get(stage, [])) == 2 and str(int(stage) + 1) not in runs:
                return parents[0].info.run_id
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for a finished trial in stage {stage}")


@pytest.mark.slow
def test_resume_after_kill_9_in_the_middle_of_stage_2(tracking_uri: str, tmp_path: Path) -> None:
    config = tmp_path / "tune.yaml"
    staged = {**STAGED, "stages": [*STAGED["stages"][:1], {**STAGED["stages"][1], "epochs": 30},
                                   STAGED["stages"][2]]}
    config.write_text(yaml.safe_dump(staged))
    client = MlflowClient(tracking_uri)
    proc = start_search_cli(config, tracking_uri)
    try:
        parent_id = _wait_in_stage(client, proc, "1")
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    time.sleep(3)   # the orphaned file writer finishes what already reached it, then exits
    experiment_id = client.get_run(parent_id).info.experiment_id
    before = _runs(client, experiment_id, parent_id)
    assert "2" not in before
    # a stage ends only once its trials' files are written: stage 1 is complete
    assert [t.info.status for t in before["0"]] == ["FINISHED"] * 3
    stage1 = {t.data.tags[TAG + "trial"]: t.info.run_id for t in before["0"]}
    done2 = {t.data.tags[TAG + "trial"]: t.info.run_id for t in before["1"] if t.info.status == "FINISHED"}
    killed = [t.info.run_id for t in before["1"] if t.info.status == "RUNNING"]
    assert killed

    out = search(load_tune_file(config), tracking_uri=tracking_uri, resume=parent_id)
    assert out.parent_run_id == parent_id and client.get_run(parent_id).info.status == "FINISHED"
    after = _runs(client, experiment_id, parent_id)
    stages = child_runs(client, experiment_id, parent_id)
    assert [s.data.tags[TAG + "stage"] for s in stages] == ["0", "1", "2"]    # no stage opened twice
    assert all(s.info.status == "FINISHED" for s in stages)
    # stage 1 was not re-run
    assert {t.data.tags[TAG + "trial"]: t.info.run_id for t in after["0"]} == stage1
    # stage 2 kept its finished trials and went on with fresh, unique trial numbers
    finished2 = {t.data.tags[TAG + "trial"]: t.info.run_id for t in after["1"] if t.info.status == "FINISHED"}
    assert done2.items() <= finished2.items() and len(finished2) == 3   # done2 may be empty: its files lagged
    every = [int(t.data.tags[TAG + "trial"]) for runs in after.values() for t in runs]
    assert len(every) == len(set(every))                  # killed trials' numbers are not reused either
    assert min(int(t) for t in finished2) > max(int(t) for t in stage1)
    for run_id in killed:
        run = client.get_run(run_id)
        assert run.info.status == "KILLED" and run.data.tags[TAG + "outcome"] == "interrupted"
    # the resumed stage sampled the same narrowed space and held the same values as before the kill
    fine_run = next(s for s in stages if s.data.tags[TAG + "stage"] == "1")
    low, high = json.loads(fine_run.data.params["space.lr"])["loguniform"]
    done = [t for t in after["1"] if t.info.status == "FINISHED"]
    assert all(low <= float(t.data.params["lr"]) <= high for t in done)
    assert len({t.data.params["dropout"] for t in done}) == 1
    # stage 3 ran all its points; the best is one of them
    last = sorted(int(t.data.tags[TAG + "trial"]) for t in after["2"])
    first = max(int(t.data.tags[TAG + "trial"]) for t in after["1"]) + 1
    assert last == list(range(first, first + 4))
    assert all(t.info.status == "FINISHED" for t in after["2"])
    assert out.best.run_id in {t.info.run_id for t in after["2"]}
    tids = [o.tid for o in out.trials]
    assert sorted(tids) == sorted(set(tids)) and len(tids) == 10
