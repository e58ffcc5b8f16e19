"""The tune file: loading, validation errors, settings, overrides and the starter file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from mlflow_tune.config.tunefile import (
    SearchSettings,
    StageSettings,
    default_tune_yaml,
    load_tune_file,
    parse_tune_config,
)
from mlflow_tune.training.config import ConfigError

GOOD = """\
experiment: demo
train:
  dataset: digits
  epochs: 3
  lr: 1e-3            # not in space: fixed
space:
  dropout: {uniform: [0.0, 0.5]}
  optimizer: {choice: [adam, rmsprop]}
search:
  algo: random
  max_trials: 4
"""


def _config(**sections: Any) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(GOOD)
    data.update(sections)
    return data


def _error(data: Any) -> str:
    with pytest.raises(ConfigError) as info:
        parse_tune_config(data)
    assert "\n" not in str(info.value)
    return str(info.value)


def test_load_good_file(tmp_path: Path) -> None:
    path = tmp_path / "tune.yaml"
    path.write_text(GOOD)
    config = load_tune_file(path)
    assert config.experiment == "demo"
    assert config.train == {"dataset": "digits", "epochs": 3, "lr": 0.001}
    assert config.space.names == ("dropout", "optimizer")
    assert config.search.algo == "random" and config.search.max_trials == 4
    assert config.search.mode == "min" and config.search.objective_key == "best_val_loss"
    assert config.stages == () and config.source == GOOD
    assert config.trial_config({"dropout": 0.25, "optimizer": "adam"}).lr == 0.001


def test_defaults_when_sections_are_left_out() -> None:
    config = parse_tune_config({"space": {"lr": {"loguniform": [1e-4, 1]}}})
    assert config.experiment == "mlflow-tune" and config.train == {}
    assert config.search == SearchSettings()
    assert config.search.algo == "mtpe" and config.search.pruning == "median"


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"config file '.*x\.yaml' does not exist"):
        load_tune_file(tmp_path / "x.yaml")
    with pytest.raises(ConfigError, match="is a directory"):
        load_tune_file(tmp_path)


def test_malformed_yaml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("experiment: x\nspace:\n  lr: {loguniform: [1e-4, 1]\n  dropout: 1\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml' is not valid YAML \(line \d+, column \d+\)"):
        load_tune_file(path)
    path.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match="must be a YAML mapping with keys: experiment, train"):
        load_tune_file(path)


def test_yaml_is_loaded_safely(tmp_path: Path) -> None:
    path = tmp_path / "evil.yaml"
    path.write_text("experiment: !!python/object/apply:os.system ['echo hacked']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_tune_file(path)


@pytest.mark.parametrize(("sections", "needles"), [
    ({"serach": {}}, ["unknown top-level key 'serach'", "did you mean 'search'", "valid keys: experiment"]),
    ({"search": {"max_trails": 3}}, ["unknown search key 'max_trails'", "did you mean 'max_trials'"]),
    ({"search": {"algo": "bayes"}}, ["search.algo='bayes' is not valid", "mtpe, tpe, random, anneal, grid"]),
    ({"search": {"pruning": "hyperbnd"}}, ["search.pruning='hyperbnd'", "none, median, asha, hyperband, curve"]),
    ({"search": {"objective": "mean"}}, ["search.objective='mean' is not valid", "best, smoothed, last"]),
    ({"search": {"metric": "loss"}}, ["search.metric='loss'", "val_loss"]),
    ({"search": {"metric": "val_accuracy", "mode": "min"}}, ["search.mode='min' does not fit"]),
    ({"search": {"max_trials": 0}}, ["search.max_trials=0 is out of range"]),
    ({"search": {"max_trials": "many"}}, ["search.max_trials='many' is not a valid int"]),
    ({"search": {"parallel": True}}, ["search.parallel=True is not a valid int"]),
    ({"search": {"executor": "project"}}, ["needs search.project=URI"]),
    ({"search": {"algo": "grid"}}, ["'dropout': grid search needs discrete values, not uniform"]),
    ({"train": {"dropout": 0.1}}, ["'dropout' is in both train and space"]),
    ({"train": {"epoch": 3}}, ["unknown train parameter 'epoch'", "did you mean 'epochs'"]),
    ({"train": {"epochs": "x"}}, ["epochs='x' is not a valid int"]),
    ({"train": {"dataset": "csv"}}, ["dataset='csv' needs data_path"]),
    ({"space": {"lr": {"loguniform": [0, 1]}}}, ["space entry 'lr'", "must be positive"]),
    ({"space": {}}, ["the space is empty"]),
    ({"space": None}, ["needs a 'space' section"]),
    ({"experiment": ["x"]}, ["experiment must be a name"]),
    ({"stages": {"name": "x"}}, ["stages must be a list"]),
    ({"stages": [{"max_trials": 3, "epoch": 2}]}, ["unknown key 'epoch' in stage 1", "'epochs'?"]),
    ({"stages": [{"name": "a"}]}, ["stage 'a' needs max_trials"]),
    ({"stages": [{"max_trials": 3, "algo": "bayes"}]}, ["stage 'stage1' algo='bayes' is not valid"]),
    ({"stages": [{"max_trials": 3, "subsample": 0}]}, ["subsample=0.0 is out of range"]),
    ({"stages": [{"max_trials": 3, "params": ["lr"]}]}, ["stage 'stage1' params", "'lr' is not in the"]),
    ({"stages": [{"max_trials": 3, "params": ["lrr"]}]}, ["unknown stage 'stage1' params parameter 'lrr'"]),
    ({"stages": [{"name": "a", "max_trials": 2}, {"name": "a", "max_trials": 2}]}, ["'a' is used twice"]),
    ({"stages": [{"name": "r", "retrain": 2}, {"max_trials": 2}]}, ["'r' retrains, so it must be the last"]),
    ({"stages": [{"name": "r", "retrain": 2}]}, ["'r' retrains, but no earlier stage"]),
    ({"stages": [{"max_trials": 2, "algo": "grid"}]}, ["grid search needs discrete values"]),
])
def test_every_bad_entry_is_a_one_line_error(sections: dict[str, Any], needles: list[str]) -> None:
    message = _error(_config(**sections))
    for needle in needles:
        assert needle in message, message


def test_stages_parse_with_defaults() -> None:
    config = parse_tune_config(_config(stages=[
        {"name": "coarse", "algo": "random", "max_trials": 8, "epochs": 2, "subsample": 0.3,
         "classes": [0, 1], "params": "dropout"},
        {"name": "final", "retrain": 2, "seeds": 3},
    ]))
    coarse, final = config.stages
    assert coarse == StageSettings("coarse", 8, "random", 2, 0.3, "0,1", ("dropout",))
    assert coarse.train_overrides == {"epochs": 2, "subsample": 0.3, "classes": "0,1"}
    assert final.max_trials == 6 and final.retrain == 2 and final.algo == "mtpe"


def test_with_overrides_validates_again() -> None:
    config = parse_tune_config(_config())
    changed = config.with_overrides(algo="tpe", max_trials="7", parallel=2, timeout=None)
    assert (changed.search.algo, changed.search.max_trials, changed.search.parallel) == ("tpe", 7, 2)
    assert changed.space == config.space and config.search.algo == "random"
    assert changed.with_overrides(metric="val_accuracy").search.mode == "max"
    assert config.with_overrides(project="projects/x").search.executor == "project"
    with pytest.raises(ConfigError, match=r"search\.algo='bogus' is not valid"):
        config.with_overrides(algo="bogus")
    with pytest.raises(ConfigError, match="unknown search setting 'algorithm'"):
        config.with_overrides(algorithm="tpe")
    with pytest.raises(ConfigError, match="grid search needs discrete values"):
        config.with_overrides(algo="grid")


@pytest.mark.parametrize("staged", [False, True])
@pytest.mark.parametrize(("dataset", "model"), [("digits", "mlp"), ("iris", "cnn"), ("sequences", "rnn"),
                                                ("csv", "mlp")])
def test_default_tune_yaml_loads_back(dataset: str, model: str, staged: bool) -> None:
    text = default_tune_yaml(dataset, model, staged=staged)
    config = parse_tune_config(yaml.safe_load(text), source=text)
    assert config.train["dataset"] == dataset and config.train["epochs"] == 20
    assert config.search.algo == "mtpe" and config.search.pruning == "median"
    assert config.space.get("lr").log_scale and "# " in text
    if not staged:
        assert config.stages == ()
        return
    coarse, fine, final = config.stages
    assert (coarse.algo, coarse.epochs) == ("random", 5)
    assert coarse.subsample == (0.1 if dataset == "csv" else 0.3)
    assert (fine.algo, fine.subsample) == ("tpe", 1.0)
    assert (final.retrain, final.seeds) == (3, 3)
