from __future__ import annotations

import dataclasses

import pytest

from mlflow_tune.training.config import (
    ACTIVATIONS,
    OPTIMIZERS,
    ConfigError,
    TrainConfig,
    check_names,
    coerce,
    from_mapping,
)


def test_defaults_are_valid_and_frozen() -> None:
    cfg = TrainConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.lr = 1.0  # type: ignore[misc]


@pytest.mark.parametrize(("field", "value", "choices"), [
    ("optimizer", "adamax", OPTIMIZERS),
    ("activation", "swish", ACTIVATIONS),
    ("balance", "undersample", ("none", "oversample", "batches")),
    ("impute", "zero", ("none", "mean", "median", "most_frequent")),
    ("class_weight", "auto", ("none", "balanced")),
    ("dataset", "mnist", ("digits", "wine", "iris")),
])
def test_bad_choice_names_value_and_choices(field: str, value: str, choices: tuple[str, ...]) -> None:
    with pytest.raises(ConfigError) as err:
        TrainConfig(**{field: value})
    message = str(err.value)
    assert f"{field}={value!r}" in message
    assert all(choice in message for choice in choices)
    assert "\n" not in message


@pytest.mark.parametrize(("field", "value"), [
    ("lr", 0.0), ("lr", -1.0), ("lr", float("nan")), ("dropout", 1.0), ("subsample", 0.0),
    ("epochs", 0), ("batch_size", 0), ("lr_decay", 0.0), ("lr_decay", 1.5), ("momentum", 1.0),
])
def test_out_of_range_names_value(field: str, value: float) -> None:
    with pytest.raises(ConfigError, match=field):
        TrainConfig(**{field: value})


def test_fractions_must_leave_training_data() -> None:
    with pytest.raises(ConfigError, match="val_fraction"):
        TrainConfig(val_fraction=0.5, test_fraction=0.45)


def test_file_dataset_needs_a_path() -> None:
    with pytest.raises(ConfigError, match="data_path"):
        TrainConfig(dataset="csv")


def test_coerce_from_strings() -> None:
    cfg = from_mapping({"epochs": "10.0", "batch_size": "64", "lr": "3e-3", "sanity_check": "true",
                        "stop_stalled": "0", "classes": [0, 1]})
    assert cfg.epochs == 10 and isinstance(cfg.epochs, int)
    assert cfg.batch_size == 64
    assert cfg.lr == pytest.approx(3e-3)
    assert cfg.sanity_check is True and cfg.stop_stalled is False
    assert cfg.classes == "0,1" and cfg.class_subset == ("0", "1")


@pytest.mark.parametrize(("field", "value"), [("epochs", "10.5"), ("epochs", "ten"), ("lr", "fast"),
                                              ("sanity_check", "maybe")])
def test_coerce_rejects_bad_strings(field: str, value: str) -> None:
    with pytest.raises(ConfigError, match=f"{field}={value!r}"):
        coerce(field, value)


def test_unknown_key_suggests_closest() -> None:
    with pytest.raises(ConfigError) as err:
        from_mapping({"learning_rat": "0.1", "hiden_units": 3})
    assert "'learning_rat'" in str(err.value)
    with pytest.raises(ConfigError, match="did you mean 'hidden_units'"):
        check_names(["hiden_units"])


def test_to_params_round_trip() -> None:
    cfg = TrainConfig(lr=0.003, epochs=7, sanity_check=True, classes="1,2", dropout=0.25)
    params = cfg.to_params()
    assert list(params) == [f.name for f in dataclasses.fields(TrainConfig)]
    assert all(isinstance(v, str) for v in params.values())
    assert params["sanity_check"] == "true"
    assert from_mapping(params) == cfg


def test_replace_revalidates() -> None:
    cfg = TrainConfig()
    assert cfg.replace(lr=0.1).lr == 0.1
    with pytest.raises(ConfigError):
        cfg.replace(optimizer="nope")
