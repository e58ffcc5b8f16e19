"""Every training knob in one place: a frozen, validated :class:`TrainConfig`.

Field names are the contract: they are the MLproject ``train`` parameters, the
``mlflow-tune train --option`` names, the keys of a YAML ``train:`` section and the
MLflow param keys of every run.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

DATASETS = ("digits", "wine", "breast_cancer", "iris", "synthetic", "sequences", "csv", "parquet")
MODELS = ("mlp", "cnn", "rnn")
OPTIMIZERS = ("sgd", "momentum", "adam", "adamw", "rmsprop", "adadelta")
ACTIVATIONS = ("relu", "tanh", "gelu", "leaky_relu", "elu", "sigmoid")
BALANCE = ("none", "oversample", "batches")
CLASS_WEIGHTS = ("none", "balanced")
IMPUTE = ("none", "mean", "median", "most_frequent")
RNN_CELLS = ("gru", "lstm")
DEVICES = ("auto", "cpu", "cuda")


class ConfigError(ValueError):
    """A user-supplied value is invalid; the message names the value and the valid choices."""


def _choice(name: str, value: str, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise ConfigError(f"{name}={value!r} is not valid; choose one of: {', '.join(valid)}.")


def _range(name: str, value: float, low: float, high: float, *, low_open: bool = False,
           high_open: bool = False) -> None:
    ok_low = value > low if low_open else value >= low
    ok_high = value < high if high_open else value <= high
    if not (math.isfinite(value) and ok_low and ok_high):
        lo, hi = ("(" if low_open else "["), (")" if high_open else "]")
        raise ConfigError(f"{name}={value!r} is out of range; it must be in {lo}{low}, {high}{hi}.")


@dataclass(frozen=True)
class TrainConfig:
    """One training run. Defaults follow ../shared/PRACTICE.md ("starting values from experience")."""

    # data
    dataset: str = "digits"
    data_path: str = ""          # CSV or Parquet file for dataset=csv|parquet (or any dataset name + path)
    target: str = "target"       # label column of a user file
    impute: str = "none"         # fill missing feature values; none = a missing value is an error
    subsample: float = 1.0       # stratified fraction of the training split (coarse search stages)
    classes: str = ""            # comma-separated class subset, e.g. "0,1"; empty = all classes
    balance: str = "none"
    class_weight: str = "none"   # loss weights n / (C * count_c) of the training split
    val_fraction: float = 0.2
    test_fraction: float = 0.2
    n_samples: int = 2000        # synthetic / sequences only
    n_features: int = 20         # synthetic only
    n_classes: int = 3           # synthetic only
    imbalance: float = 1.0       # synthetic only: majority/minority class ratio
    # model
    model: str = "mlp"           # mlp | cnn | rnn | module:function | entry-point name
    layers: int = 1              # "start with 1"
    hidden_units: int = 128
    activation: str = "relu"
    dropout: float = 0.0
    embedding_dim: int = 128
    rnn_cell: str = "gru"
    # optimisation
    optimizer: str = "adam"      # adaptive optimizers spare most learning-rate tuning
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 0.0
    batch_size: int = 128
    epochs: int = 20
    grad_clip: float = 0.0       # global-norm clipping; 0 = off (5, 10, 15 are typical)
    lr_decay: float = 0.5        # multiply lr by this when val loss stalls; 1 = off
    lr_patience: int = 3
    early_stopping_patience: int = 0   # 0 = off
    # run control
    seed: int = 0
    sanity_check: bool = False
    num_threads: int = 0         # torch intra-op threads; 0 = torch's default
    device: str = "auto"
    stop_stalled: bool = False   # live guard also stops runs stalled at chance level

    def __post_init__(self) -> None:
        _choice("dataset", self.dataset, DATASETS)
        if self.dataset in ("csv", "parquet") and not self.data_path:
            raise ConfigError(f"dataset={self.dataset!r} needs data_path=FILE.")
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        _choice("activation", self.activation, ACTIVATIONS)
        _choice("balance", self.balance, BALANCE)
        _choice("class_weight", self.class_weight, CLASS_WEIGHTS)
        _choice("impute", self.impute, IMPUTE)
        _choice("rnn_cell", self.rnn_cell, RNN_CELLS)
        _choice("device", self.device, DEVICES)
        if self.model not in MODELS and not self.model.strip():
            raise ConfigError(f"model={self.model!r} is not valid; choose one of: "
                              f"{', '.join(MODELS)}, or module:function.")
        _range("subsample", self.subsample, 0.0, 1.0, low_open=True)
        _range("val_fraction", self.val_fraction, 0.0, 1.0, low_open=True, high_open=True)
        _range("test_fraction", self.test_fraction, 0.0, 1.0, high_open=True)
        if self.val_fraction + self.test_fraction >= 0.9:
            raise ConfigError(f"val_fraction + test_fraction = {self.val_fraction + self.test_fraction}"
                              " leaves too little training data; keep the sum below 0.9.")
        _range("dropout", self.dropout, 0.0, 1.0, high_open=True)
        _range("lr", self.lr, 0.0, 1e3, low_open=True)
        _range("momentum", self.momentum, 0.0, 1.0, high_open=True)
        _range("weight_decay", self.weight_decay, 0.0, 1e3)
        _range("grad_clip", self.grad_clip, 0.0, 1e6)
        _range("lr_decay", self.lr_decay, 0.0, 1.0, low_open=True)
        _range("imbalance", self.imbalance, 1.0, 1e4)
        # Upper bounds far past any sensible run, so that a typo (epochs: 1e12) is refused, not run for ever.
        for name, low, high in (("layers", 1, 100), ("hidden_units", 1, 100_000), ("embedding_dim", 1, 100_000),
                                ("batch_size", 1, 10_000_000), ("epochs", 1, 1_000_000), ("lr_patience", 1, 1_000_000),
                                ("early_stopping_patience", 0, 1_000_000), ("n_samples", 20, 100_000_000),
                                ("n_features", 2, 1_000_000), ("n_classes", 2, 100_000), ("num_threads", 0, 4096)):
            value = getattr(self, name)
            if not low <= value <= high:
                raise ConfigError(f"{name}={value!r} is out of range; it must be in [{low}, {high}].")

    @property
    def class_subset(self) -> tuple[str, ...]:
        return tuple(c.strip() for c in self.classes.split(",") if c.strip())

    def replace(self, **changes: Any) -> TrainConfig:
        return from_mapping({**dataclasses.asdict(self), **changes})

    def to_params(self) -> dict[str, str]:
        """All fields as MLflow params (strings), in field order."""
        return {k: _format(v) for k, v in dataclasses.asdict(self).items()}


FIELD_HELP = {
    "dataset": f"Built-in data set or file format: {', '.join(DATASETS)}.",
    "data_path": "CSV or Parquet file of user data.",
    "target": "Label column of the user file.",
    "impute": f"Fill missing feature values with the training split's statistic: {', '.join(IMPUTE)} "
              "(none: a missing value is an error).",
    "subsample": "Stratified fraction of the training split to train on (cheap coarse stages).",
    "classes": "Comma-separated subset of classes to keep, e.g. 0,1.",
    "balance": f"Class imbalance handling: {', '.join(BALANCE)}.",
    "class_weight": f"Weight the training loss by class: {', '.join(CLASS_WEIGHTS)} (n / (C * count) "
                    "of the training split; 1 for every class when balance already evens them).",
    "val_fraction": "Fraction of rows held out for validation.",
    "test_fraction": "Fraction of rows held out for the final test (never used for selection).",
    "n_samples": "Rows of generated data (synthetic, sequences).",
    "n_features": "Features of the synthetic data set.",
    "n_classes": "Classes of the generated data sets.",
    "imbalance": "Majority/minority class ratio of the synthetic data set.",
    "model": f"Model: {', '.join(MODELS)}, an entry point of mlflow_tune.models, or module:function.",
    "layers": "Hidden layers (mlp), conv blocks (cnn) or recurrent layers (rnn).",
    "hidden_units": "Units per hidden layer / recurrent state size.",
    "activation": f"Activation: {', '.join(ACTIVATIONS)}.",
    "dropout": "Dropout probability.",
    "embedding_dim": "Token embedding size (rnn on token data).",
    "rnn_cell": f"Recurrent cell: {', '.join(RNN_CELLS)}.",
    "optimizer": f"Optimizer: {', '.join(OPTIMIZERS)}.",
    "lr": "Initial learning rate.",
    "momentum": "Momentum of optimizer=momentum.",
    "weight_decay": "L2 regularisation (weight decay).",
    "batch_size": "Mini-batch size.",
    "epochs": "Maximum number of epochs.",
    "grad_clip": "Clip gradients to this global norm; 0 = off.",
    "lr_decay": "Multiply the learning rate by this when val loss stalls; 1 = off.",
    "lr_patience": "Epochs without val-loss improvement before the learning rate decays.",
    "early_stopping_patience": "Stop after this many epochs without improvement; 0 = off.",
    "seed": "Random seed (splits, init, batches).",
    "sanity_check": "First check the initial loss against ln(C) and that one batch can be overfit.",
    "num_threads": "Torch CPU threads; 0 = torch's default.",
    "device": f"Device: {', '.join(DEVICES)}.",
    "stop_stalled": "Also stop runs stalled at chance level (the guard always stops NaN/diverged runs).",
}

FIELD_TYPES: dict[str, type] = {f.name: type(f.default) for f in fields(TrainConfig)}
FIELD_NAMES: tuple[str, ...] = tuple(FIELD_TYPES)


def _format(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def check_names(names: Mapping[str, Any] | list[str] | tuple[str, ...], where: str = "config") -> None:
    """Raise ConfigError for the first unknown TrainConfig field, suggesting the closest name."""
    for name in names:
        if name not in FIELD_TYPES:
            close = difflib.get_close_matches(name, FIELD_NAMES, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"unknown {where} parameter {name!r}{hint}; valid parameters: "
                              f"{', '.join(FIELD_NAMES)}.")


def coerce(name: str, value: Any) -> Any:
    """Convert a CLI/MLflow/YAML value (often a string) to the field's type, or raise ConfigError."""
    kind = FIELD_TYPES[name]
    try:
        if kind is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("true", "1", "yes", "on"):
                return True
            if text in ("false", "0", "no", "off", ""):
                return False
            raise ValueError(value)
        if kind is int:
            number = float(value)   # MLflow passes "10" or "10.0" for float-typed project params
            if not number.is_integer():
                raise ValueError(value)
            return int(number)
        if kind is float:
            return float(value)
        if name == "classes" and isinstance(value, (list, tuple)):
            return ",".join(str(v) for v in value)
        return str(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}={value!r} is not a valid {kind.__name__}.") from None


def from_mapping(values: Mapping[str, Any]) -> TrainConfig:
    """Build a TrainConfig from loose values (strings allowed); unknown keys are errors."""
    check_names(list(values))
    return TrainConfig(**{k: coerce(k, v) for k, v in values.items()})
