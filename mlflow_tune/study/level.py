"""One flat search (a level) and what it ended with: the records the driver, stages and summary share."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mlflow_tune.config.settings import SearchSettings
from mlflow_tune.config.space import Space
from mlflow_tune.tracking.runs import RunLogger
from mlflow_tune.trials.records import TrialOutcome


@dataclass
class Level:
    """One flat search: a space and settings, whose trials are children of `parent`."""

    parent: RunLogger
    experiment_id: str
    tracking_uri: str
    space: Space
    base: dict[str, Any]                 # fixed TrainConfig values (train + stage overrides)
    settings: SearchSettings
    max_trials: int
    tags: dict[str, str] = field(default_factory=dict)
    restored: list[TrialOutcome] = field(default_factory=list)
    first_tid: int = 0
    points: list[dict[str, Any]] | None = None   # exact configurations instead of a suggester
    last_tid: int = -1                            # highest trial number used so far (interrupted too)
    objective: Any = None                         # a user's training function instead of our loop
    budget: dict[str, Any] = field(default_factory=dict)   # a stage's overrides, for such a function
    search_run_id: str = ""                       # the whole search's run (the parent of a stage's)
    curve_keys: dict[str, str] = field(default_factory=dict)   # metric names of the diagnosed curves
    warm: list[tuple[int, dict[str, Any], float]] = field(default_factory=list)   # (tid, params, loss) known before


@dataclass
class LevelResult:
    outcomes: list[TrialOutcome]
    stopped_by: str
    interrupted: bool = False
    candidates: list[TrialOutcome] | None = None   # trials the best may come from (default: all)

    def best(self) -> TrialOutcome | None:
        return best_trial(self.outcomes if self.candidates is None else self.candidates)


def best_trial(outcomes: list[TrialOutcome]) -> TrialOutcome | None:
    """Lowest loss among completed trials; pruned or nonconvergent ones only if nothing completed."""
    for allowed in (("completed",), ("completed", "pruned", "nonconvergent")):
        scored = [o for o in outcomes if o.status in allowed and o.loss is not None]
        if scored:
            return min(scored, key=lambda o: (o.loss, o.tid))
    return None
