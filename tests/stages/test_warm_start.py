"""The fine stage starts from the coarse stage's trials mapped into its narrowed space."""

from __future__ import annotations

import statistics
from typing import Any

from mlflow_tune.config.space_yaml import parse_space
from mlflow_tune.config.tunefile import parse_tune_config
from mlflow_tune.samplers.suggester import Suggester
from mlflow_tune.stages.plan import plan_stage
from mlflow_tune.stages.warm import warm_points
from mlflow_tune.trials.records import TrialOutcome

SPACE = {"lr": {"loguniform": [1e-4, 1.0]}, "hidden_units": {"logint": [16, 256]},
         "optimizer": {"choice": ["adam", "rmsprop", "momentum"]}}


def outcome(tid: int, loss: float | None, status: str = "completed", **params: Any) -> TrialOutcome:
    return TrialOutcome(tid, f"run{tid}", status, loss, loss, "healthy", 3, "", params)


COARSE = [outcome(0, 0.50, lr=1e-3, hidden_units=32, optimizer="adam"),
          outcome(1, 0.40, lr=1e-2, hidden_units=64, optimizer="rmsprop"),
          outcome(2, 0.45, lr="0.004", hidden_units="48", optimizer="adam"),      # strings, as read from MLflow
          outcome(3, 0.90, "pruned", lr=1.05e-2, hidden_units=66, optimizer="adam"),  # just outside: clipped
          outcome(4, 2.00, lr=0.5, hidden_units=256, optimizer="adam"),         # far outside: clipped too
          outcome(5, 0.60, lr=2e-3, hidden_units=40, optimizer="momentum"),     # choice no longer offered
          outcome(6, None, "failed", lr=3e-3, hidden_units=40, optimizer="adam")]


def tune(**fine: Any) -> Any:
    stages = [{"name": "coarse", "algo": "random", "max_trials": 7, "epochs": 2, "subsample": 0.2},
              {"name": "fine", "max_trials": 4, "epochs": 6, "top_k": 3, "margin": 0, "guided": False, **fine}]
    return parse_tune_config({"experiment": "t", "train": {"dataset": "digits", "epochs": 4},
                              "space": SPACE, "stages": stages})


def test_the_fine_plan_carries_the_coarse_best_points_mapped_into_its_space() -> None:
    config = tune()
    plan = plan_stage(config, 1, COARSE, {}, config.space)
    assert plan.space.get("lr").to_spec() == {"loguniform": [1e-3, 1e-2]}
    assert plan.space.get("optimizer").choices == ("adam", "rmsprop")
    assert [(tid, loss) for tid, _, loss in plan.warm] == [(1, 0.40), (2, 0.45), (0, 0.50), (3, 0.90), (4, 2.00)]
    assert plan.warm[1][1] == {"lr": 0.004, "hidden_units": 48, "optimizer": "adam"}   # typed
    assert plan.warm[3][1] == {"lr": 1e-2, "hidden_units": 64, "optimizer": "adam"}     # clipped onto the bounds
    assert plan.warm[4][1] == {"lr": 1e-2, "hidden_units": 64, "optimizer": "adam"}
    assert "warm start: 5 of 7 earlier trials mapped into this space" in plan.reasons
    assert plan_stage(tune(warm_start=False), 1, COARSE, {}, config.space).warm == ()
    assert plan_stage(config, 0, [], {}, config.space).warm == ()   # the first stage starts cold


def test_warm_points_skip_unfinished_and_unmappable_trials() -> None:
    space = parse_space({"lr": {"loguniform": [1e-3, 1e-2]}, "optimizer": {"choice": ["adam"]}})
    points = warm_points(space, [outcome(0, 0.3, "interrupted", lr=5e-3, optimizer="adam"),
                                 outcome(1, float("nan"), lr=5e-3, optimizer="adam"),
                                 outcome(2, 0.2, lr=5e-3),                       # lacks a parameter
                                 outcome(3, 0.1, lr="abc", optimizer="adam"),
                                 outcome(5, 0.1, lr=-1.0, optimizer="adam"),      # no log of it
                                 outcome(4, 0.4, lr=5e-3, optimizer="adam")])
    assert points == [(4, {"lr": 5e-3, "optimizer": "adam"}, 0.4)]


def test_the_sampler_knows_the_warm_points_before_its_first_ask() -> None:
    config = tune()
    plan = plan_stage(config, 1, COARSE, {}, config.space)
    suggester = Suggester(plan.space, "tpe", seed=0, max_trials=10)
    for tid, params, loss in plan.warm:
        suggester.learn(tid, params, loss)
    known = suggester._trials.trials   # hyperopt's own record of what it has seen
    assert [t["tid"] for t in known] == [1, 2, 0, 3, 4]
    assert [t["result"]["loss"] for t in known] == [0.40, 0.45, 0.50, 0.90, 2.00]
    assert known[0]["misc"]["vals"]["lr"] == [0.01] and known[0]["misc"]["vals"]["optimizer"] == [1]
    assert set(suggester.ask(10) or {}) == set(plan.space.names)   # asking goes on after them


def test_tpe_warm_started_near_a_good_region_asks_there_first() -> None:
    space = parse_space({"x": {"uniform": [0.0, 1.0]}}, free=True)
    # the coarse stage: good near 0.8, bad elsewhere; enough points for TPE to model at once
    history = [(i, {"x": i / 16 + 0.03}, abs(i / 16 + 0.03 - 0.8)) for i in range(16)]
    warm, cold = [], []
    for seed in range(12):
        started = Suggester(space, "tpe", seed=seed, max_trials=20)
        for tid, params, loss in history:
            started.learn(tid, params, loss)
        warm.append(abs(started.ask(100)["x"] - 0.8))
        cold.append(abs(Suggester(space, "tpe", seed=seed, max_trials=20).ask(100)["x"] - 0.8))
    assert max(warm) < 0.1 < statistics.median(cold)
