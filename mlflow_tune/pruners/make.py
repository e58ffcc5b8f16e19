"""The pruners by name: what `search.pruning` may be, and the pruner each name builds.
"""

from __future__ import annotations

from mlflow_tune.pruners.asha import AshaPruner, HyperbandPruner
from mlflow_tune.pruners.curve import CurvePruner
from mlflow_tune.pruners.median import MedianPruner, NoPruner

PRUNERS = ("none", "median", "asha", "hyperband", "curve")

Pruner = NoPruner | MedianPruner | AshaPruner | HyperbandPruner | CurvePruner


def make_pruner(name: str, *, warmup: int = 2, min_trials: int = 3, reduction: int = 3,
                horizon: int | None = None, sign: float = 1.0) -> Pruner:
    """`sign`: -1 when the search maximises its metric, so that reasons show its values as logged."""
    if name == "curve":
        return CurvePruner(max(3, warmup + 1), horizon, sign=sign)
    if name == "median":
        return MedianPruner(warmup, min_trials, sign)
    if name == "asha":
        return AshaPruner(max(1, warmup), reduction, sign)
    if name == "hyperband":
        return HyperbandPruner(max(1, warmup), horizon, reduction, sign)
    if name == "none":
        return NoPruner()
    raise ValueError(f"pruning={name!r} is not valid; choose one of: {', '.join(PRUNERS)}.")
