"""Which parameters mattered in a stage: random-forest importance over its finished trials (pure).

A forest fitted from the parameters (on their own scale: log for log-scale ones, a choice by its
index) to the trials' losses; its impurity importances, normalised to sum to 1, rank the
parameters. The stage after can then search the few that matter and hold the rest
(PRACTICE.md: tune the parameters with the largest effect first, with the others fixed).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from mlflow_tune.config.space import Space
from mlflow_tune.stages.narrowing import to_scale
from mlflow_tune.training.config import ConfigError
from mlflow_tune.trials.records import TrialOutcome

MIN_TRIALS = 5   # fewer finished trials than this rank nothing: a forest on 3 points is noise


def importance(space: Space, outcomes: Sequence[TrialOutcome], seed: int = 0) -> dict[str, float]:
    """{parameter: importance}, most important first; empty with too few usable trials."""
    from sklearn.ensemble import RandomForestRegressor

    rows, losses = [], []
    for o in outcomes:
        if o.status not in ("completed", "pruned") or o.loss is None or not math.isfinite(o.loss):
            continue
        try:
            rows.append([float(p.index_of(o.params[p.name])) if p.kind == "choice"
                         else to_scale(p, float(o.params[p.name])) for p in space.params])
        except (KeyError, ConfigError, ValueError, TypeError):
            continue
        losses.append(o.loss)
    if len(rows) < MIN_TRIALS or len(space) < 2 or len(set(losses)) < 2:
        return {}
    forest = RandomForestRegressor(n_estimators=200, min_samples_leaf=2, random_state=seed).fit(rows, losses)
    ranked = sorted(zip(space.names, forest.feature_importances_, strict=True), key=lambda i: -i[1])
    return {name: round(float(value), 3) for name, value in ranked}
