"""The suggester: ask/tell over hyperopt's algorithms and the grid, and restore on resume."""

from __future__ import annotations

import math

import pytest

from mlflow_tune.config.space import grid_points
from mlflow_tune.config.space_yaml import parse_space
from mlflow_tune.samplers.suggester import Suggester, tpe_startup

SPACE = parse_space({"lr": {"loguniform": [1e-4, 1]}, "dropout": {"uniform": [0.0, 0.7]},
                     "hidden_units": {"int": [16, 256]}, "optimizer": {"choice": ["adam", "sgd", "rmsprop"]}})
GRID = parse_space({"lr": {"choice": [0.001, 0.01]}, "hidden_units": {"choice": [32, 64, 128]}})
ALGOS = ("tpe", "random", "anneal", "grid")


def loss_of(params: dict) -> float:
    return abs(math.log10(float(params["lr"])) + 2.5) + float(params.get("dropout", 0.0))


def run(algo: str, seed: int, n: int = 8) -> list[dict]:
    space = GRID if algo == "grid" else SPACE
    suggester = Suggester(space, algo, seed=seed, max_trials=n)
    out = []
    for tid in range(n):
        params = suggester.ask(tid)
        if params is None:
            break
        out.append(params)
        suggester.tell(tid, loss_of(params))
    return out


@pytest.mark.parametrize("algo", ALGOS)
def test_same_seed_gives_the_same_trials(algo: str) -> None:
    assert run(algo, seed=3) == run(algo, seed=3)


@pytest.mark.parametrize("algo", ["tpe", "random", "anneal"])
def test_params_are_inside_the_space(algo: str) -> None:
    for params in run(algo, seed=1):
        assert set(params) == set(SPACE.names)
        assert 1e-4 <= params["lr"] <= 1 and 0 <= params["dropout"] <= 0.7
        assert isinstance(params["hidden_units"], int) and 16 <= params["hidden_units"] <= 256
        assert params["optimizer"] in ("adam", "sgd", "rmsprop")


@pytest.mark.parametrize("algo", ["tpe", "random"])
def test_different_seeds_differ(algo: str) -> None:
    assert run(algo, seed=0) != run(algo, seed=1)


def test_grid_enumerates_every_combination_once_then_stops() -> None:
    suggester = Suggester(GRID, "grid")
    points = []
    while (p := suggester.ask(len(points))) is not None:
        points.append(p)
    assert len(points) == 6 == len({tuple(sorted(p.items())) for p in points})
    expected = {(a, b) for a in (0.001, 0.01) for b in (32, 64, 128)}
    assert {(p["lr"], p["hidden_units"]) for p in points} == expected
    assert suggester.remaining == 0


def test_restored_grid_does_not_repeat_points() -> None:
    done = grid_points(GRID)[:4:2]          # two finished trials, not the first two
    suggester = Suggester(GRID, "grid")
    for tid, params in enumerate(done):
        suggester.restore(tid, {k: str(v) for k, v in params.items()}, 0.5)   # MLflow gives strings back
    rest = []
    while (p := suggester.ask(10 + len(rest))) is not None:
        rest.append(p)
    assert len(rest) == 4 and not any(p in done for p in rest)


def test_restored_tpe_history_is_used_and_trials_continue() -> None:
    first = run("tpe", seed=0, n=6)
    suggester = Suggester(SPACE, "tpe", seed=0, max_trials=12)
    for tid, params in enumerate(first):
        suggester.restore(tid, params, loss_of(params))
    suggester.restore(len(first), first[0], None)           # a failed trial is restored too
    assert len(suggester._trials.trials) == 7
    nxt = suggester.ask(7)
    assert nxt is not None and set(nxt) == set(SPACE.names)


def test_unknown_algo_is_an_error() -> None:
    with pytest.raises(ValueError, match="algo='foo'"):
        Suggester(SPACE, "foo")


def test_tpe_startup_scales_with_budget() -> None:
    assert tpe_startup(10) == 5 and tpe_startup(50) == 10 and tpe_startup(1000) == 20


@pytest.mark.parametrize("algo", ["random", "tpe"])
def test_resumed_suggester_does_not_repeat_earlier_trials(algo: str) -> None:
    first = run(algo, seed=0, n=4)
    suggester = Suggester(SPACE, algo, seed=0, max_trials=20)
    suggester.skip(4)   # as the driver does: past every number the earlier run used
    for tid, params in enumerate(first):
        suggester.restore(tid, params, loss_of(params))
    later = [suggester.ask(tid) for tid in range(4, 8)]
    assert not any(p in first for p in later)


def test_a_later_trial_that_finished_first_is_not_drawn_again_after_resume() -> None:
    """Parallel 2, killed after trial 1 finished while trial 0 was still training: trial 1's
    configuration must not come back (restoring only the finished trials' draws gave it again)."""
    earlier = Suggester(SPACE, "random", seed=0, max_trials=3)
    drawn = [earlier.ask(0), earlier.ask(1)]
    resumed = Suggester(SPACE, "random", seed=0, max_trials=3)
    resumed.skip(2)
    resumed.restore(1, drawn[1], loss_of(drawn[1]))
    assert resumed.ask(2) not in drawn


def test_hyperopt_internals_we_rely_on_are_still_there() -> None:
    """Suggester drives hyperopt's Trials documents directly (not through fmin). If a hyperopt
    release changes any of this, this test fails before a search silently misbehaves."""
    import hyperopt
    from hyperopt import JOB_STATE_DONE, STATUS_OK, Domain, Trials, hp, tpe

    domain = Domain(lambda _: 0.0, {"x": hp.uniform("x", 0.0, 1.0)})
    trials = Trials()
    assert isinstance(trials._dynamic_trials, list) and hasattr(domain, "cmd")
    docs = tpe.suggest([0], domain, trials, 123)
    assert set(docs[0]["misc"]) >= {"tid", "vals", "idxs", "cmd", "workdir"} and docs[0]["tid"] == 0
    trials.insert_trial_docs(docs)
    trials.refresh()
    doc = trials._dynamic_trials[0]
    doc["result"], doc["state"] = {"loss": 0.5, "status": STATUS_OK}, JOB_STATE_DONE
    trials.refresh()
    assert trials.losses() == [0.5]
    made = trials.new_trial_docs([1], [None], [{"loss": 0.2, "status": STATUS_OK}],
                                 [{"tid": 1, "cmd": domain.cmd, "workdir": None, "idxs": {"x": [1]},
                                   "vals": {"x": [0.3]}}])
    made[0]["state"] = JOB_STATE_DONE
    trials.insert_trial_docs(made)
    trials.refresh()
    assert sorted(trials.losses()) == [0.2, 0.5]
    assert tuple(int(p) for p in hyperopt.__version__.split(".")[:2]) < (0, 4)
