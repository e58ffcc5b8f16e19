"""Search spaces: validation, hyperopt conversion, grid, narrowing and diagnosis-guided moves."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from mlflow_tune.config.space import Param, Space, default_space, grid_points
from mlflow_tune.config.space_yaml import parse_space
from mlflow_tune.stages.narrowing import adjust_for_diagnoses, narrow
from mlflow_tune.training.config import ConfigError

SPEC: dict[str, Any] = {
    "lr": {"loguniform": ["1e-4", 1]},    # PyYAML reads 1e-4 (no dot) as a string
    "dropout": {"uniform": [0.0, 0.7]},
    "batch_size": {"quniform": [32, 256, 32]},
    "layers": {"int": [1, 3]},
    "hidden_units": {"logint": [16, 256]},
    "weight_decay": {"qloguniform": [1e-5, 1e-1, 1e-5]},
    "optimizer": {"choice": ["adam", "rmsprop", "momentum"]},
}


@pytest.mark.parametrize(("spec", "needles"), [
    ({"lrr": {"uniform": [0, 1]}}, ["unknown space parameter 'lrr' (did you mean 'lr'?)", "valid param"]),
    ({"lr": {"loguniform": [0, 1]}}, ["'lr'", "loguniform bounds must be positive", "[0, 1]"]),
    ({"lr": {"loguniform": [1, 1e-3]}}, ["'lr'", "low must be below high"]),
    ({"dropout": {"uniform": [0.5, 0.5]}}, ["'dropout'", "low must be below high", "[0.5, 0.5]"]),
    ({"optimizer": {"choice": []}}, ["'optimizer'", "at least one value"]),
    ({"optimizer": {"choice": ["adam", "adam"]}}, ["'optimizer'", "duplicate value 'adam'"]),
    ({"optimizer": {"choice": ["adam", "bogus"]}}, ["'optimizer'", "'bogus'", "choose one of"]),
    ({"batch_size": {"quniform": [32, 256, 0]}}, ["'batch_size'", "q must be positive"]),
    ({"layers": {"int": [1.5, 3]}}, ["'layers'", "int bounds must be integers"]),
    ({"layers": {"uniform": [1, 3]}}, ["'layers'", "int field", "use int, logint"]),
    ({"optimizer": {"uniform": [0, 1]}}, ["'optimizer'", "str field", "use choice"]),
    ({"dropout": {"uniform": [0.0, 1.0]}}, ["'dropout'", "bound 1.0 is not valid", "out of range"]),
    ({"lr": {"logunifrom": [1e-4, 1]}}, ["'lr'", "unknown kind 'logunifrom'", "did you mean 'loguniform'"]),
    ({"lr": {"loguniform": [1e-4, 1], "uniform": [0, 1]}}, ["'lr'", "exactly one kind", "valid kinds"]),
    ({"lr": 0.1}, ["'lr'", "exactly one kind", "valid kinds"]),
    ({"lr": {"uniform": [0.1]}}, ["'lr'", "uniform needs [low, high]"]),
    ({"lr": {"uniform": [0.1, "x"]}}, ["'lr'", "expected a number, got 'x'"]),
    ({"batch_size": {"quniform": [33, 60, 64]}}, ["'batch_size'", "no multiple of q=64"]),
])
def test_parse_space_errors_name_the_entry(spec: dict[str, Any], needles: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        parse_space(spec)
    message = str(info.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message, message


def test_spec_round_trips_and_types() -> None:
    space = parse_space(SPEC)
    assert space.names == tuple(SPEC)
    assert parse_space(space.to_spec()) == space
    assert space.to_spec()["lr"] == {"loguniform": [0.0001, 1.0]}
    assert space.to_spec()["batch_size"] == {"quniform": [32, 256, 32]}
    assert space.get("lr").log_scale and space.get("hidden_units").log_scale
    assert not space.get("dropout").log_scale
    # choices hold the field's python type: grad_clip is a float field
    assert parse_space({"grad_clip": {"choice": [0, 5]}}).get("grad_clip").choices == (0.0, 5.0)


def test_hyperopt_samples_decode_into_bounds() -> None:
    from hyperopt.pyll.stochastic import sample

    space = parse_space(SPEC)
    expr = space.to_hyperopt()
    rng = np.random.default_rng(0)
    seen_layers = set()
    for _ in range(100):
        values = space.decode(sample(expr, rng=rng))
        assert 1e-4 <= values["lr"] <= 1 and isinstance(values["lr"], float)
        assert 0 <= values["dropout"] <= 0.7
        assert values["batch_size"] % 32 == 0 and 32 <= values["batch_size"] <= 256
        assert isinstance(values["batch_size"], int) and isinstance(values["hidden_units"], int)
        assert 16 <= values["hidden_units"] <= 256
        assert 1e-5 <= values["weight_decay"] <= 1e-1
        assert values["optimizer"] in ("adam", "rmsprop", "momentum")
        assert len(f"{values['lr']:.10g}".replace(".", "").lstrip("0").rstrip("0")) <= 7
        seen_layers.add(values["layers"])
    assert seen_layers == {1, 2, 3}   # both end values reachable


def test_decode_clips_rounds_and_requires_every_param() -> None:
    space = parse_space(SPEC)
    sample = {"lr": 0.00012345678, "dropout": 0.9, "batch_size": 290.0, "layers": 3.4,
              "hidden_units": 15.6, "weight_decay": 0.0, "optimizer": "adam"}
    values = space.decode(sample)
    assert values == {"lr": 0.000123457, "dropout": 0.7, "batch_size": 256, "layers": 3,
                      "hidden_units": 16, "weight_decay": 1e-5, "optimizer": "adam"}
    with pytest.raises(ConfigError, match="lacks space parameters: optimizer"):
        space.decode({k: v for k, v in sample.items() if k != "optimizer"})


def test_to_hyperopt_vals_from_mlflow_strings_rebuilds_trials() -> None:
    from hyperopt import Trials, fmin, space_eval, tpe

    space = parse_space(SPEC)
    params = {"lr": "0.001", "dropout": "0.25", "batch_size": "64", "layers": "2",
              "hidden_units": "32", "weight_decay": "0.0001", "optimizer": "momentum"}
    vals = space.to_hyperopt_vals(params)
    assert vals["optimizer"] == [2] and vals["lr"] == [0.001] and vals["layers"] == [2.0]
    assert all(len(v) == 1 for v in vals.values())
    # the vals evaluate back to the same trial
    assert space.decode(space_eval(space.to_hyperopt(), {k: v[0] for k, v in vals.items()})) == \
        space.decode(params)
    # and hyperopt's TPE accepts a history rebuilt from them
    trials = Trials()
    docs = trials.new_trial_docs([0], [None], [{"status": "ok", "loss": 0.5}],
                                 [{"tid": 0, "cmd": None, "workdir": None,
                                   "idxs": {k: [0] for k in vals}, "vals": vals}])
    docs[0]["state"] = 2   # JOB_STATE_DONE
    trials.insert_trial_docs(docs)
    trials.refresh()
    fmin(lambda p: 0.0, space.to_hyperopt(), algo=tpe.suggest, max_evals=2, trials=trials,
         show_progressbar=False, rstate=np.random.default_rng(0))
    assert len(trials.trials) == 2
    with pytest.raises(ConfigError, match="'optimizer': value 'sgd' is not one of the choices"):
        space.to_hyperopt_vals({**params, "optimizer": "sgd"})


def test_grid_enumerates_exactly_the_product() -> None:
    space = parse_space({"layers": {"int": [1, 3]}, "batch_size": {"quniform": [64, 128, 32]},
                         "optimizer": {"choice": ["adam", "momentum"]}})
    points = grid_points(space)
    assert len(points) == 3 * 3 * 2
    assert points[0] == {"layers": 1, "batch_size": 64, "optimizer": "adam"}
    assert points[1] == {"layers": 1, "batch_size": 64, "optimizer": "momentum"}
    assert {tuple(p.values()) for p in points} == {
        (a, b, c) for a in (1, 2, 3) for b in (64, 96, 128) for c in ("adam", "momentum")}
    assert grid_points(parse_space({"dropout": {"quniform": [0.1, 0.3, 0.1]}})) == [
        {"dropout": 0.1}, {"dropout": 0.2}, {"dropout": 0.3}]


def test_grid_rejects_continuous_and_huge_spaces() -> None:
    with pytest.raises(ConfigError, match="'lr': grid search needs discrete values, not loguniform"):
        grid_points(parse_space({"lr": {"loguniform": [1e-4, 1]}}))
    with pytest.raises(ConfigError, match=r"grid has 60516 points .*at most 10000"):
        grid_points(parse_space({"hidden_units": {"int": [1, 246]}, "embedding_dim": {"int": [1, 246]}}))


def test_narrow_log_scale() -> None:
    space = parse_space({"lr": {"loguniform": [1e-4, 1]}})
    top: list[dict[str, Any]] = [{"lr": 1e-3}, {"lr": "0.01"}]
    assert narrow(space, top, margin=0).get("lr").to_spec() == {"loguniform": [1e-3, 1e-2]}
    # margin 0.5 of a one-decade span: half a decade on each side
    wide = narrow(space, top, margin=0.5).get("lr")
    assert (wide.low, wide.high) == (0.000316228, 0.0316228)
    # clipped to the original bounds, not slid
    edge = narrow(space, [{"lr": 0.1}, {"lr": 1.0}], margin=0.5).get("lr")
    assert (edge.low, edge.high) == (0.0316228, 1.0)


def test_narrow_linear_int_quantised_and_choice() -> None:
    space = parse_space(SPEC)
    top = [{"dropout": 0.2, "layers": 2, "batch_size": 64, "hidden_units": 32, "optimizer": "rmsprop"},
           {"dropout": "0.4", "layers": "2", "batch_size": 96, "hidden_units": 64, "optimizer": "adam"}]
    narrowed = narrow(space, top, margin=0.25)
    assert narrowed.get("dropout").to_spec() == {"uniform": [0.15, 0.45]}
    assert narrowed.get("layers").to_spec() == {"int": [2, 3]}           # one value: one step kept
    assert narrowed.get("batch_size").to_spec() == {"quniform": [64, 96, 32]}
    assert narrowed.get("hidden_units").to_spec() == {"logint": [27, 76]}  # 32..64 +- a quarter octave
    assert narrowed.get("optimizer").choices == ("adam", "rmsprop")      # original order
    assert narrowed.get("lr") == space.get("lr")                          # no evidence: unchanged


def test_narrow_keeps_a_minimum_width_and_the_original_bounds() -> None:
    original = parse_space({"dropout": {"uniform": [0.0, 0.7]}})
    one = narrow(original, [{"dropout": 0.0}], margin=0.25).get("dropout")
    assert one.low == 0.0 and one.high == pytest.approx(0.035)            # 5% of the range, slid inside
    stage2 = Space((Param("dropout", "uniform", 0.0, 0.1),))
    again = narrow(stage2, [{"dropout": 0.05}, {"dropout": 0.3}], margin=1.0, original=original)
    assert (again.get("dropout").low, again.get("dropout").high) == (0.0, 0.55)


def test_adjust_underfit_moves_capacity_up_and_regularisation_down() -> None:
    original = parse_space({"hidden_units": {"logint": [16, 1024]}, "dropout": {"uniform": [0.0, 0.7]},
                            "layers": {"int": [1, 4]}, "lr": {"loguniform": [1e-4, 1]}})
    space = Space((Param("hidden_units", "logint", 16, 64), Param("dropout", "uniform", 0.3, 0.5),
                   Param("layers", "int", 1, 2), original.get("lr")))
    labels = ["underfit"] * 7 + ["healthy"] * 3
    moved, reasons = adjust_for_diagnoses(space, labels, original)
    assert moved.get("hidden_units").to_spec() == {"logint": [64, 256]}
    assert moved.get("layers").to_spec() == {"int": [2, 3]}
    assert moved.get("dropout").to_spec() == {"uniform": [0.1, 0.3]}
    assert moved.get("lr") == space.get("lr")
    assert "7 of 10 top trials underfit: hidden_units 16..64 -> 64..256" in reasons
    assert "7 of 10 top trials underfit: dropout 0.3..0.5 -> 0.1..0.3" in reasons


def test_adjust_overfit_moves_regularisation_up_within_original() -> None:
    original = parse_space({"dropout": {"uniform": [0.0, 0.7]}, "weight_decay": {"loguniform": [1e-6, 1e-1]}})
    space = Space((Param("dropout", "uniform", 0.4, 0.6), Param("weight_decay", "loguniform", 1e-4, 1e-3)))
    moved, reasons = adjust_for_diagnoses(space, ["overfit", "overfit", "healthy"], original)
    assert moved.get("dropout").to_spec() == {"uniform": [0.5, 0.7]}     # slid back inside, width kept
    assert moved.get("weight_decay").to_spec() == {"loguniform": [1e-3, 1e-2]}
    assert reasons[0].startswith("2 of 3 top trials overfit: dropout 0.4..0.6 -> 0.5..0.7")


def test_adjust_nonconvergent_lowers_lr_and_prefers_clipping() -> None:
    original = parse_space({"lr": {"loguniform": [1e-5, 1]}, "grad_clip": {"choice": [0, 5, 10]},
                            "optimizer": {"choice": ["momentum", "adam"]},
                            "batch_size": {"choice": [32, 64, 128]}})
    space = narrow(original, [{"lr": 1e-2}, {"lr": 1e-1}], margin=0)
    moved, reasons = adjust_for_diagnoses(space, ["nonconvergent"] * 2 + ["healthy"] * 4, original)
    assert moved.get("lr").to_spec() == {"loguniform": [1e-3, 1e-2]}
    assert moved.get("grad_clip").choices == (5.0, 10.0)
    assert moved.get("optimizer").choices == ("adam",)
    assert moved.get("batch_size") == space.get("batch_size")
    assert reasons[0] == "2 of 6 top trials nonconvergent: lr 0.01..0.1 -> 0.001..0.01"


def test_adjust_moves_numeric_choice_windows_and_reports_no_room() -> None:
    original = parse_space({"hidden_units": {"choice": [16, 32, 64, 128]}, "layers": {"int": [1, 3]}})
    space = Space((Param("hidden_units", "choice", choices=(16, 32)), original.get("layers")))
    moved, reasons = adjust_for_diagnoses(space, ["underfit"], original)
    assert moved.get("hidden_units").choices == (64, 128)
    assert reasons == ["1 of 1 top trials underfit: layers stays 1..3 (no room to move up)",
                       "1 of 1 top trials underfit: hidden_units {16, 32} -> {64, 128}"]


def test_adjust_without_a_majority_changes_nothing() -> None:
    space = parse_space(SPEC)
    labels = ["healthy"] * 4 + ["underfit"] * 3 + ["overfit"] * 2 + ["nonconvergent"]
    assert adjust_for_diagnoses(space, labels, space) == (space, [])
    assert adjust_for_diagnoses(space, [], space) == (space, [])


@pytest.mark.parametrize(("dataset", "model"), [("digits", "mlp"), ("wine", "mlp"), ("sequences", "rnn")])
def test_default_space_parses(dataset: str, model: str) -> None:
    space = parse_space(default_space(dataset, model))
    assert space.get("lr").log_scale and space.get("weight_decay").log_scale
    assert space.get("dropout").to_spec() == {"uniform": [0.0, 0.7]}
    assert space.get("grad_clip").choices == (0.0, 5.0, 10.0, 15.0)
    assert ("embedding_dim" in space) == (model == "rnn")
    assert space.get("lr").high == (1e-2 if model == "rnn" else 1.0)
    assert math.isclose(space.get("hidden_units").low or 0, 16)
    with pytest.raises(ConfigError, match="dataset='mnist' is not valid"):
        default_space("mnist", model)
