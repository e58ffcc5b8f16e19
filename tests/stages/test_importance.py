"""Importance-first stages: the coarse stage's most important parameters are searched, the rest held."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest

from mlflow_tune.config.tunefile import parse_tune_config
from mlflow_tune.stages.importance import importance
from mlflow_tune.stages.plan import plan_stage
from mlflow_tune.training.config import ConfigError
from mlflow_tune.trials.records import TrialOutcome

SPACE = {"lr": {"loguniform": [1e-4, 1.0]}, "hidden_units": {"logint": [16, 256]},
         "dropout": {"uniform": [0.0, 0.6]}, "optimizer": {"choice": ["adam", "rmsprop", "momentum"]}}


def coarse(n: int = 30, seed: int = 0) -> list[TrialOutcome]:
    """The loss depends on lr (strongly, on its log scale) and a little on the optimizer; not on the rest."""
    rng = random.Random(seed)
    out = []
    for tid in range(n):
        lr = 10 ** rng.uniform(-4, 0)
        optimizer = rng.choice(["adam", "rmsprop", "momentum"])
        loss = (math.log10(lr) + 2.5) ** 2 + (0.3 if optimizer == "momentum" else 0.0)
        params = {"lr": lr, "hidden_units": rng.randint(16, 256), "dropout": rng.uniform(0, 0.6),
                  "optimizer": optimizer}
        out.append(TrialOutcome(tid, f"r{tid}", "completed", loss, loss, "healthy", 3, "", params))
    return out


def tune(**fine: Any) -> Any:
    stages = [{"name": "coarse", "algo": "random", "max_trials": 30, "epochs": 2},
              {"name": "fine", "max_trials": 5, "top_k": 5, "guided": False, **fine}]
    return parse_tune_config({"experiment": "t", "train": {"dataset": "digits", "epochs": 4},
                              "space": SPACE, "stages": stages})


def test_the_parameter_that_drives_the_loss_ranks_first() -> None:
    config = tune()
    ranked = importance(config.space, coarse())
    assert next(iter(ranked)) == "lr" and ranked["lr"] > 0.5
    assert ranked["lr"] > ranked["hidden_units"] and ranked["lr"] > ranked["dropout"]
    assert math.isclose(sum(ranked.values()), 1.0, abs_tol=0.01)


def test_too_few_or_unusable_trials_rank_nothing() -> None:
    config = tune()
    assert importance(config.space, coarse(4)) == {}
    flat = [TrialOutcome(o.tid, o.run_id, "completed", 1.0, 1.0, "", 3, "", o.params) for o in coarse()]
    assert importance(config.space, flat) == {}   # every loss equal: nothing to explain


def test_the_fine_stage_searches_the_most_important_and_holds_the_rest() -> None:
    config = tune(important=1)
    best = {"lr": 3e-3, "hidden_units": 99, "dropout": 0.2, "optimizer": "adam"}
    plan = plan_stage(config, 1, coarse(), best, config.space)
    assert plan.space.names == ("lr",)
    assert {k: plan.base[k] for k in ("hidden_units", "dropout", "optimizer")} == \
        {"hidden_units": 99, "dropout": 0.2, "optimizer": "adam"}
    assert any(r.startswith("importance: lr ") and r.endswith("searching lr") for r in plan.reasons)
    assert all(set(params) == {"lr"} for _, params, _ in plan.warm)   # warm start in the restricted space
    off = plan_stage(tune(), 1, coarse(), best, config.space)
    assert len(off.space) == 4 and not any(r.startswith("importance") for r in off.reasons)


def test_important_must_not_be_negative() -> None:
    with pytest.raises(ConfigError, match="important"):
        tune(important=-1)


# ------------------------------------------------------------- coarse sample size from the data


def sampled(**coarse_stage: Any) -> Any:
    stages = [{"name": "coarse", "algo": "random", "max_trials": 3, "epochs": 2, **coarse_stage},
              {"name": "fine", "max_trials": 3}]
    train = {"dataset": "synthetic", "n_samples": 10000, "epochs": 4}
    return parse_tune_config({"experiment": "t", "train": train, "space": SPACE, "stages": stages})


def test_sample_rows_sets_the_coarse_fraction_from_the_data_set_size() -> None:
    config = sampled(sample_rows=600)   # 10,000 rows, 60% of them for training: 6,000
    plan = plan_stage(config, 0, [], {}, config.space)
    assert plan.base["subsample"] == 0.1
    assert "sample_rows 600 of 6000 training rows: subsample 0.1" in plan.reasons
    assert plan_stage(sampled(sample_rows=50_000), 0, [], {}, config.space).base["subsample"] == 1.0
    assert "subsample" not in plan_stage(config, 1, [], {}, config.space).base   # the fine stage: all rows


def test_sample_rows_and_subsample_are_not_both_set_nor_used_with_a_function() -> None:
    with pytest.raises(ConfigError, match="subsample and sample_rows"):
        sampled(sample_rows=600, subsample=0.2)
    with pytest.raises(ConfigError, match="sample_rows needs the built-in trainer"):
        parse_tune_config({"experiment": "t", "objective": "math:sqrt", "space": {"x": {"uniform": [0, 1]}},
                           "stages": [{"name": "coarse", "max_trials": 2, "sample_rows": 100},
                                      {"name": "fine", "max_trials": 2}]})
