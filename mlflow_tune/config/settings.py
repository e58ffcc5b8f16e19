"""Search and stage settings of a tune file: frozen, validated on construction.

``coerce_section`` turns YAML or CLI values (strings allowed) into the settings' field types.
"""

from __future__ import annotations

import difflib
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from mlflow_tune.executors.names import EXECUTORS as EXECUTORS
from mlflow_tune.executors.names import local_master
from mlflow_tune.pruners.make import PRUNERS as PRUNERS
from mlflow_tune.training.config import ConfigError, check_names
from mlflow_tune.training.selection import OBJECTIVES

ALGOS = ("mtpe", "tpe", "random", "anneal", "grid")
# Optuna's multivariate TPE, chosen by bench/efficiency.py (README "Which sampler and pruner")
DEFAULT_ALGO = "mtpe"
# Metrics whose direction is known; any other name (a user function's, a project's) needs `mode`.
KNOWN_MODES = {"val_loss": "min", "train_loss": "min", "val_accuracy": "max", "train_accuracy": "max",
               "val_f1": "max", "val_balanced_accuracy": "max", "val_auc": "max",
               # the names Lightning users log and Hugging Face's Trainer reports
               "val_acc": "max", "train_acc": "max", "eval_loss": "min", "eval_accuracy": "max"}
METRICS = tuple(KNOWN_MODES)
MODES = ("min", "max")
MAX_TRIALS = 100_000
ENV_MANAGERS = ("local", "virtualenv", "uv", "conda")


def _one_of(where: str, value: str, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise ConfigError(f"{where}={value!r} is not valid{hint(value, valid)}; "
                          f"choose one of: {', '.join(valid)}.")


def _at_least(where: str, value: float, low: float) -> None:
    if not (math.isfinite(value) and value >= low):
        raise ConfigError(f"{where}={value!r} is out of range; it must be at least {low}.")


def hint(name: str, valid: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(name, valid, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


@dataclass(frozen=True)
class SearchSettings:
    """How a search runs. ``mode`` left empty follows the metric: min for a loss, max for accuracy."""

    algo: str = DEFAULT_ALGO
    max_trials: int = 20
    parallel: int = 1
    metric: str = "val_loss"          # per-epoch metric the objective and the pruners read
    mode: str = ""
    objective: str = "smoothed"       # best | smoothed | last epoch of the metric (training.selection)
    pruning: str = "median"
    pruning_warmup: int = 2           # epochs before a trial may be pruned
    min_trials_for_pruning: int = 3   # earlier trials the median pruner needs at an epoch
    asha_reduction: int = 3
    seed: int = 0
    timeout: float = 0.0              # seconds; 0 = none
    no_progress: int = 0              # stop after this many trials without improvement; 0 = off
    target: float | None = None       # stop once the objective reaches this value
    top_k_models: int = 3             # trials whose full MLflow model is logged
    executor: str = "process"         # process | thread | project (an MLflow Project run) | spark
    project: str = ""                 # project URI for executor=project
    entry_point: str = "train"
    env_manager: str = "local"
    spark_master: str = ""            # executor=spark: the cluster's master URL; "" = local[parallel]

    def __post_init__(self) -> None:
        _one_of("search.algo", self.algo, ALGOS)
        if not self.metric or len(self.metric) > 250:
            raise ConfigError(f"search.metric={self.metric[:60]!r} must be a metric name of 1 to 250 characters.")
        natural = KNOWN_MODES.get(self.metric)
        if not self.mode and natural is None:
            raise ConfigError(f"search.metric={self.metric!r} is not one whose direction mlflow-tune knows "
                              f"({', '.join(METRICS)}); give search.mode: min or max.")
        if not self.mode:
            object.__setattr__(self, "mode", natural)
        _one_of("search.mode", self.mode, MODES)
        if natural is not None and self.mode != natural:
            raise ConfigError(f"search.mode={self.mode!r} does not fit metric {self.metric!r}; "
                              f"use mode {natural!r} or leave it out.")
        _one_of("search.objective", self.objective, OBJECTIVES)
        _one_of("search.pruning", self.pruning, PRUNERS)
        _one_of("search.executor", self.executor, EXECUTORS)
        _one_of("search.env_manager", self.env_manager, ENV_MANAGERS)
        for name, low in (("max_trials", 1), ("parallel", 1), ("pruning_warmup", 0),
                          ("min_trials_for_pruning", 1), ("asha_reduction", 2), ("seed", 0),
                          ("timeout", 0), ("no_progress", 0), ("top_k_models", 0)):
            _at_least(f"search.{name}", getattr(self, name), low)
        if self.max_trials > MAX_TRIALS:
            raise ConfigError(f"search.max_trials={self.max_trials} is out of range; at most {MAX_TRIALS}.")
        # Each trial is a process: more than the cores only thrashes (and forks). 2 even on one core,
        # so the demo and examples (parallel: 2) run anywhere.
        cores = os.cpu_count() or 1
        on_cluster = self.executor == "spark" and not local_master(self.spark_master)
        if self.parallel > max(cores, 2) and not on_cluster:   # a cluster's cores are not this machine's
            raise ConfigError(f"search.parallel={self.parallel} is more than this machine's {cores} cores; "
                              f"use at most {max(cores, 2)}.")
        if self.target is not None and not math.isfinite(self.target):
            raise ConfigError(f"search.target={self.target!r} must be a finite number.")
        if self.executor == "project" and not self.project:
            raise ConfigError("search.executor='project' needs search.project=URI (a directory or git URI).")
        if self.project and self.executor != "project":
            raise ConfigError(f"search.project is set but search.executor={self.executor!r}; "
                              "set executor: project or remove project.")
        if self.spark_master and self.executor != "spark":
            raise ConfigError(f"search.spark_master is set but search.executor={self.executor!r}; "
                              "set executor: spark (--backend spark) or remove spark_master.")
        if not self.entry_point:
            raise ConfigError("search.entry_point must not be empty.")

    @property
    def objective_key(self) -> str:
        """The per-trial summary metric the search optimises, e.g. ``best_val_loss``."""
        return "best_" + self.metric


@dataclass(frozen=True)
class StageSettings:
    """One stage of a coarse-to-fine search.

    ``epochs``/``subsample``/``classes`` override the train values for this stage (None: keep).
    ``top_k``/``margin``/``guided`` say how THIS stage's space is built from the previous stage:
    narrowed around its top_k trials widened by margin, then moved by their diagnoses if guided
    (ignored on the first stage). ``params``: tune only these, hold the rest at the best so far.
    ``retrain`` > 0: retrain the best ``retrain`` configurations so far with ``seeds`` seeds each.
    ``warm_start``: the sampler starts knowing the previous stage's trials, mapped into this space.
    ``important`` > 0 (and no ``params``): tune only the previous stage's that many most important
    parameters (stages.importance), holding the rest at the best so far.
    """

    name: str
    max_trials: int
    algo: str = DEFAULT_ALGO
    epochs: int | None = None
    subsample: float | None = None
    classes: str | None = None
    params: tuple[str, ...] = ()
    top_k: int = 5
    margin: float = 0.25
    guided: bool = True
    retrain: int = 0
    seeds: int = 1
    warm_start: bool = True
    important: int = 0
    sample_rows: int = 0   # > 0: subsample chosen to give about this many training rows (stages.sampling)

    def __post_init__(self) -> None:
        where = f"stage {self.name!r}"
        if not self.name:
            raise ConfigError("a stage name must not be empty.")
        _one_of(f"{where} algo", self.algo, ALGOS)
        for name, low in (("max_trials", 1), ("top_k", 1), ("margin", 0), ("retrain", 0), ("seeds", 1),
                          ("important", 0), ("sample_rows", 0)):
            _at_least(f"{where} {name}", getattr(self, name), low)
        if self.epochs is not None:
            _at_least(f"{where} epochs", self.epochs, 1)
        if self.subsample is not None and self.sample_rows:
            raise ConfigError(f"{where} sets subsample and sample_rows; set one of them.")
        if self.subsample is not None and not 0 < self.subsample <= 1:
            raise ConfigError(f"{where} subsample={self.subsample!r} is out of range; it must be in (0, 1].")
        check_names(list(self.params), where=f"{where} params")

    @property
    def train_overrides(self) -> dict[str, Any]:
        """The TrainConfig values this stage sets (epochs, subsample, classes)."""
        values = {"epochs": self.epochs, "subsample": self.subsample, "classes": self.classes}
        return {k: v for k, v in values.items() if v is not None}


def field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls))


def coerce_section(where: str, cls: type, values: Mapping[str, Any]) -> dict[str, Any]:
    """Values of a settings section as their field types (YAML/CLI strings allowed)."""
    types = {f.name: str(f.type) for f in fields(cls)}
    out = {}
    for key, value in values.items():
        if key not in types:
            raise ConfigError(f"unknown {where} setting {key!r}{hint(key, tuple(types))}; "
                              f"valid settings: {', '.join(types)}")
        out[key] = _coerce_value(f"{where}.{key}" if where == "search" else f"{where} {key}",
                                 types[key], value)
    return out


def _coerce_value(where: str, type_text: str, value: Any) -> Any:
    if value is None and "None" in type_text:
        return None
    base = type_text.split(" |")[0]
    try:
        if base.startswith("tuple"):
            items = value.split(",") if isinstance(value, str) else list(value)
            return tuple(str(v).strip() for v in items if str(v).strip())
        if base == "bool":
            if isinstance(value, bool):
                return value
            if str(value).strip().lower() not in ("true", "false"):
                raise ValueError(value)
            return str(value).strip().lower() == "true"
        if isinstance(value, (bool, list, tuple, dict)):
            raise ValueError(value)
        if base == "int":
            number = float(value)
            if not number.is_integer():
                raise ValueError(value)
            return int(number)
        return float(value) if base == "float" else str(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}={value!r} is not a valid {base}.") from None
