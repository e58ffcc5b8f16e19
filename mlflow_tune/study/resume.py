"""A resumed search keeps its own settings: they are the parent run's params, which MLflow never changes.

The tune file (or the options) given to `--resume` may say otherwise: what the search is (its
budget, algorithm, metric, pruning, seed, stopping rules) comes from the parent, where its trials
run (parallel, backend) from this invocation, and either way a difference is said.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from mlflow_tune.config.settings import SearchSettings, coerce_section, field_names
from mlflow_tune.config.tunefile import TuneConfig
from mlflow_tune.tracking.runs import TAG

# How the trials run, not what the search is: may change between a search and its resume.
HOW = ("parallel", "executor", "project", "entry_point", "env_manager", "spark_master")


def logged_settings(params: dict[str, str]) -> dict[str, Any]:
    """The search settings the parent run logged (`search.*` params), as their types."""
    names = set(field_names(SearchSettings))
    found = {k.removeprefix("search."): v for k, v in params.items() if k.startswith("search.")}
    return coerce_section("search", SearchSettings, {k: v for k, v in found.items() if k in names})


def resumed_settings(run: Any, tune: TuneConfig) -> tuple[TuneConfig, list[str]]:
    """`tune` with the search settings of the parent `run`, and a line for each one that differs."""
    logged = logged_settings(dict(run.data.params))
    if not logged or run.data.tags.get(TAG + "role") != "search":
        return tune, []   # nothing logged yet (killed during set-up): the tune file is all there is
    mine = dataclasses.asdict(tune.search)
    # Logged values left out ("" and None) are the defaults the search started with.
    theirs = {f.name: logged.get(f.name, f.default) for f in dataclasses.fields(SearchSettings)}
    theirs["mode"] = logged.get("mode", mine["mode"])
    kept = {k: v for k, v in theirs.items() if k not in HOW}
    search = dataclasses.replace(tune.search, **kept)
    notes = [f"{k}={v} (not {mine[k]})" for k, v in kept.items() if mine[k] != v]
    notes += [f"{k}={mine[k]} this time (the search started with {theirs[k]})" for k in HOW
              if k in logged and mine[k] != theirs[k]]
    return dataclasses.replace(tune, search=search), notes
