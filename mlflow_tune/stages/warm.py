"""Warm start: an earlier stage's finished trials, mapped into a narrowed space (pure).

The fine stage of a coarse-to-fine search starts its sampler from what the coarse stage
learned instead of cold: each coarse trial is told to the sampler with its loss before the
first ask, its numeric values clipped into the fine ranges and its choices kept only if the
fine space still offers them. Clipping, not dropping: the fine space is narrowed around the
coarse top few on every parameter at once, so only those few lie inside it on all of them
(measured: 1 of 10 on a six-parameter space), too few for TPE to start modelling; clipped, the
rest tell it that the edges of the new ranges are worse than their middle.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from mlflow_tune.config.space import Param, Space
from mlflow_tune.training.config import ConfigError
from mlflow_tune.trials.records import TrialOutcome


def warm_points(space: Space, outcomes: Iterable[TrialOutcome]) -> list[tuple[int, dict[str, Any], float]]:
    """(trial number, params in `space`, loss) of the finished trials that map into `space`, best first."""
    points = []
    for o in outcomes:
        if o.status not in ("completed", "pruned") or o.loss is None or not math.isfinite(o.loss):
            continue
        mapped = {}
        for param in space.params:
            value = _map(param, o.params.get(param.name))
            if value is None:
                break
            mapped[param.name] = value
        else:
            points.append((o.tid, mapped, o.loss))
    return sorted(points, key=lambda p: (p[2], p[0]))


def _map(param: Param, value: Any) -> Any:
    if value is None:
        return None
    try:
        if param.kind == "choice":
            return param.choices[param.index_of(value)]
        number = float(value)
    except (ConfigError, ValueError, TypeError):
        return None
    if not math.isfinite(number) or (number <= 0 and param.log_scale):
        return None
    return param.decode_value(number)   # clipped into the range, on its steps
