"""Coarse to fine: what one stage searches, planned from the stage before (no MLflow here).

A stage searches a space built from the previous stage's top-k trials (narrowed on each
parameter's own scale, then moved by what their diagnoses say), on its own data budget
(epochs, subsample, classes). A final `retrain` stage trains the best configurations on
the full data with several seeds, so the winner is not a lucky seed.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from mlflow_tune.config.settings import StageSettings
from mlflow_tune.config.space import Space
from mlflow_tune.config.tunefile import TuneConfig
from mlflow_tune.stages.importance import importance
from mlflow_tune.stages.narrowing import adjust_for_diagnoses, describe, narrow
from mlflow_tune.stages.sampling import sample_fraction
from mlflow_tune.stages.warm import warm_points
from mlflow_tune.trials.records import TrialOutcome


@dataclasses.dataclass(frozen=True)
class StagePlan:
    space: Space
    base: dict[str, Any]
    reasons: tuple[str, ...] = ()
    points: tuple[dict[str, Any], ...] = ()    # retrain stages: exact configurations to run
    warm: tuple[tuple[int, dict[str, Any], float], ...] = ()   # earlier trials the sampler starts from


def stage_budget(stage: StageSettings) -> int:
    return stage.retrain * stage.seeds if stage.retrain else stage.max_trials


def top_trials(outcomes: list[TrialOutcome], k: int) -> list[TrialOutcome]:
    scored = [o for o in outcomes if o.loss is not None and o.status in ("completed", "pruned")]
    return sorted(scored, key=lambda o: (o.loss, o.tid))[:k]


def plan_stage(tune: TuneConfig, index: int, previous: list[TrialOutcome], best_so_far: dict[str, Any],
               previous_space: Space) -> StagePlan:
    """The space, fixed values and (for retrain) exact points of stage `index`."""
    stage = tune.stages[index]
    base = {**tune.train, **stage.train_overrides}
    sampled: list[str] = []
    if stage.sample_rows and not stage.retrain:
        base["subsample"], train_rows = sample_fraction(base, stage.sample_rows)
        sampled.append(f"sample_rows {stage.sample_rows} of {train_rows} training rows: "
                       f"subsample {base['subsample']:g}")
    if stage.retrain:
        # A stage that tuned only `params` held the rest at the best so far: retrain with those too.
        held = {k: v for k, v in best_so_far.items() if k in tune.space}
        configs = [{**held, **o.params} for o in top_trials(previous, stage.retrain)]
        points = tuple({**cfg, "seed": seed} for cfg in configs for seed in range(stage.seeds))
        names = sorted({k for p in points for k in p})
        return StagePlan(previous_space, base, (f"retrain top {len(configs)} x {stage.seeds} seeds",),
                         points) if names else StagePlan(previous_space, base)
    space, reasons = tune.space, sampled
    if index > 0 and previous:
        top = top_trials(previous, stage.top_k)
        narrowed = narrow(previous_space, [o.params for o in top], stage.margin, original=tune.space)
        reasons += [f"{p.name} {describe(previous_space.get(p.name))} -> {describe(p)}"
                    for p in narrowed.params if p != previous_space.get(p.name)]
        space = narrowed
        if stage.guided:
            space, moved = adjust_for_diagnoses(space, [o.diagnosis for o in top], tune.space)
            reasons += moved
    searched = stage.params
    if index > 0 and stage.important and not searched and previous:
        ranked = importance(previous_space, previous)
        searched = tuple(list(ranked)[: stage.important]) if len(ranked) > stage.important else ()
        if searched:
            reasons.append("importance: " + ", ".join(f"{k} {v:g}" for k, v in ranked.items())
                           + f"; searching {', '.join(searched)}")
    if searched:
        held = {k: v for k, v in best_so_far.items() if k not in searched}
        base.update(held)
        space = space.restrict(searched)
        if held:
            reasons.append("held at best so far: " + ", ".join(f"{k}={v}" for k, v in held.items()))
    warm: list[tuple[int, dict[str, Any], float]] = []
    if index > 0 and stage.warm_start and previous:
        warm = warm_points(space, previous)
        reasons.append(f"warm start: {len(warm)} of {len(previous)} earlier trials mapped into this space")
    return StagePlan(space, base, tuple(reasons), warm=tuple(warm))
