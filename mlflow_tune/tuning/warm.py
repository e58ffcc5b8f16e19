"""Warm start: an earlier stage's finished trials, mapped into a narrowed space (pure).

The fine stage of a coarse-to-fine search starts its sampler from what the coarse stage
learned instead of cold: each coarse trial whose values fall in the fine space (numeric
values a little outside are clipped onto the bound, choices must still be offered) is told
to the sampler with its loss before the first ask. Points far outside are dropped: clipped
onto a bound they would tell the sampler the bound is bad.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from mlflow_tune.training.config import ConfigError
from mlflow_tune.tuning.narrowing import scaled_bounds, to_scale
from mlflow_tune.tuning.space import Param, Space
from mlflow_tune.tuning.trial import TrialOutcome

CLIP = 0.1   # a value at most this fraction of the range's width (on its scale) outside is clipped


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
    low, high = scaled_bounds(param)
    if number <= 0 and param.log_scale:
        return None
    scaled, slack = to_scale(param, number), CLIP * (high - low)
    if scaled < low - slack or scaled > high + slack:
        return None
    return param.decode_value(number)
