"""The tune file: one YAML file with ``experiment``, ``train``, ``space``, ``search`` and ``stages``.

Everything is validated before any run starts; every error is a one-line :class:`ConfigError`
that names the bad entry and what would have been valid.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mlflow_tune.config.settings import (
    ALGOS,
    EXECUTORS,
    METRICS,
    PRUNERS,
    SearchSettings,
    StageSettings,
    coerce_section,
    field_names,
    hint,
)
from mlflow_tune.config.space import Space, grid_points
from mlflow_tune.config.space_yaml import parse_space
from mlflow_tune.config.starter import default_tune_yaml
from mlflow_tune.training.config import ConfigError, TrainConfig, check_names, coerce, from_mapping

# The per-epoch metrics our own loop reports, a search over it can optimise (val_auc: two classes).
LOOP_METRICS = ("val_loss", "val_accuracy", "train_loss", "train_accuracy", "val_f1", "val_balanced_accuracy",
                "val_auc")

__all__ = [
    "ALGOS",
    "EXECUTORS",
    "METRICS",
    "PRUNERS",
    "SearchSettings",
    "StageSettings",
    "TuneConfig",
    "default_tune_yaml",
    "load_tune_file",
    "parse_tune_config",
]

TOP_KEYS = ("experiment", "train", "objective", "space", "search", "stages", "curves")
MAX_TUNE_FILE_BYTES = 1_000_000
CURVES = ("train_loss", "val_loss", "train_accuracy", "val_accuracy")
DEFAULT_EXPERIMENT = "mlflow-tune"


@dataclass(frozen=True)
class TuneConfig:
    """A validated tune file. ``source`` is the YAML text, logged as an artifact of the search."""

    experiment: str
    train: dict[str, Any]
    space: Space
    search: SearchSettings
    stages: tuple[StageSettings, ...] = ()
    source: str = ""
    objective: Any = None   # a user's training function (or "module:function"); None: our loop trains
    free: bool = False      # train/space name another program's parameters (a foreign project's)
    curves: dict[str, str] = dataclasses.field(default_factory=dict)   # curve -> the trials' metric name

    def __post_init__(self) -> None:
        if not self.experiment or len(self.experiment) > 250:
            raise ConfigError(f"experiment={self.experiment[:60]!r} must be a name of 1 to 250 characters.")
        if not self.space.params:
            raise ConfigError("the space is empty; add at least one entry, "
                              "e.g. space: {lr: {loguniform: [1e-4, 1]}}")
        for name in self.train:
            if name in self.space:
                raise ConfigError(f"{name!r} is in both train and space; keep it in one of them.")
        ours = self.objective is None and not self.free   # our loop: every value a TrainConfig field, checked now
        for curve in self.curves:
            if curve not in CURVES:
                raise ConfigError(f"curves: unknown curve {curve!r}; valid: {', '.join(CURVES)} "
                                  "(each naming the metric the trials log for it)")
        if ours:
            from_mapping({**self.train, **self.space.example()})   # cross-field rules (e.g. data_path)
            if not self.search.project and self.search.metric not in LOOP_METRICS:
                raise ConfigError(f"search.metric={self.search.metric!r} is not a metric the training loop "
                                  f"reports; choose one of: {', '.join(LOOP_METRICS)}.")
        names = [s.name for s in self.stages]
        for i, stage in enumerate(self.stages):
            if stage.name in names[:i]:
                raise ConfigError(f"stage name {stage.name!r} is used twice; stage names must be unique.")
            if stage.sample_rows and self.objective is not None:
                raise ConfigError(f"stage {stage.name!r} sample_rows needs the built-in trainer; "
                                  "a training function gets subsample instead.")
            if stage.retrain and i != len(self.stages) - 1:
                raise ConfigError(f"stage {stage.name!r} retrains, so it must be the last stage.")
            if stage.retrain and i == 0:
                raise ConfigError(f"stage {stage.name!r} retrains, but no earlier stage found "
                                  "anything to retrain.")
            try:
                space = self.space.restrict(stage.params) if stage.params else self.space
            except ConfigError as exc:
                raise ConfigError(f"stage {stage.name!r} params: {exc}") from None
            if ours:
                from_mapping({**self.train, **self.space.example(), **stage.train_overrides})
            if stage.algo == "grid" and not stage.retrain:
                grid_points(space)
        if self.search.algo == "grid" and not self.stages:
            grid_points(self.space)

    def with_overrides(self, **search_overrides: Any) -> TuneConfig:
        """The config with search settings replaced (CLI flags win over the file); None means unset.

        Setting ``project`` implies ``executor='project'``; setting ``metric`` re-derives ``mode``.
        """
        values = {k: v for k, v in search_overrides.items() if v is not None}
        if "project" in values and "executor" not in values:
            values["executor"] = "project"
        if "metric" in values and "mode" not in values:
            values["mode"] = ""
        search = dataclasses.replace(self.search, **coerce_section("search", SearchSettings, values))
        return dataclasses.replace(self, search=search)

    def trial_config(self, params: Mapping[str, Any]) -> TrainConfig:
        """The TrainConfig of one trial: the fixed train values with ``params`` on top."""
        return from_mapping({**self.train, **params})


def load_tune_file(path: str | Path) -> TuneConfig:
    """Read and validate a tune file (``yaml.safe_load``: no code runs)."""
    path = Path(path)
    if not path.is_file():
        what = "is a directory, not a file" if path.is_dir() else "does not exist"
        raise ConfigError(f"config file '{path}' {what}")
    if path.stat().st_size > MAX_TUNE_FILE_BYTES:
        raise ConfigError(f"config file '{path}' is {path.stat().st_size} bytes; a tune file may have at most "
                          f"{MAX_TUNE_FILE_BYTES}")
    text = path.read_text(encoding="utf-8")
    try:
        _no_aliases(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"config file '{path}' is not valid YAML{where}: {problem}") from None
    if not isinstance(data, Mapping):
        raise ConfigError(f"config file '{path}' must be a YAML mapping with keys: {', '.join(TOP_KEYS)}")
    return parse_tune_config(_relative_to(data, path.parent), source=text)


def _no_aliases(text: str) -> None:
    """A YAML alias (*name) can expand a few hundred bytes into gigabytes: a tune file needs none."""
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.AliasEvent):
            where = f" (line {event.start_mark.line + 1})" if event.start_mark is not None else ""
            raise ConfigError(f"YAML aliases (*{event.anchor}) are not allowed in a tune file{where}; "
                              "write the values out")


def _relative_to(data: Mapping[str, Any], folder: Path) -> Mapping[str, Any]:
    """A relative data_path means "next to the tune file", wherever the search is started from."""
    train = data.get("train")
    if isinstance(train, Mapping) and isinstance(train.get("data_path"), str):
        path = Path(train["data_path"])
        if train["data_path"] and not path.is_absolute():
            return {**data, "train": {**train, "data_path": str((folder / path).resolve())}}
    return data


def parse_tune_config(data: Mapping[str, Any], source: str = "", free: bool = False) -> TuneConfig:
    """Validate the parsed YAML of a tune file; `free`: its names are another program's parameters."""
    _check_keys("top-level key", data, TOP_KEYS)
    experiment = data.get("experiment", DEFAULT_EXPERIMENT)
    if not isinstance(experiment, str):
        raise ConfigError(f"experiment must be a name (a string), got {experiment!r}")
    objective = data.get("objective")
    if objective is not None and not (isinstance(objective, str) and objective):
        raise ConfigError(f"objective must be module:function (a string), got {objective!r}")
    if objective:
        from mlflow_tune.trials.function import resolve

        resolve(objective)   # an import error is the user's to fix now, not every trial's
    train = _mapping("train", data.get("train"))
    free = free or bool(objective)
    if not free:
        check_names([str(k) for k in train], where="train")
    fixed = {str(k): v if free else coerce(str(k), v) for k, v in train.items()}
    if data.get("space") is None:
        raise ConfigError("the config needs a 'space' section, e.g. space: {lr: {loguniform: [1e-4, 1]}}")
    space = parse_space(data["space"], free=free)
    curves = {str(k): str(v) for k, v in _mapping("curves", data.get("curves")).items()}
    search = _mapping("search", data.get("search"))
    _check_keys("search key", search, field_names(SearchSettings))
    search = dict(search)
    if "project" in search and "executor" not in search:
        search["executor"] = "project"
    settings = SearchSettings(**coerce_section("search", SearchSettings, search))
    return TuneConfig(experiment, fixed, space, settings, parse_stages(data.get("stages")), source, objective,
                      free and not objective, curves)


def parse_stages(raw: Any) -> tuple[StageSettings, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ConfigError(f"stages must be a list of mappings, got {raw!r}")
    stages = []
    for i, entry in enumerate(raw, start=1):
        values = dict(_mapping(f"stage {i}", entry))
        _check_keys("key", values, field_names(StageSettings), where=f" in stage {i}")
        values.setdefault("name", f"stage{i}")
        if "max_trials" not in values:
            if not values.get("retrain"):
                raise ConfigError(f"stage {values['name']!r} needs max_trials (or retrain: N).")
            values["max_trials"] = int(values["retrain"]) * int(values.get("seeds", 1))
        if values.get("classes") is not None:
            values["classes"] = coerce("classes", values["classes"])
        stages.append(StageSettings(**coerce_section(f"stage {values['name']!r}", StageSettings, values)))
    return tuple(stages)


def _mapping(where: str, value: Any) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where} must be a mapping of key: value, got {value!r}")
    return value


def _check_keys(what: str, data: Mapping[str, Any], valid: tuple[str, ...], where: str = "") -> None:
    for key in data:
        if key not in valid:
            raise ConfigError(f"unknown {what} {key!r}{where}{hint(str(key), valid)}; "
                              f"valid keys: {', '.join(valid)}")
