"""Coarse-to-fine searches: stages that narrow themselves, guided by diagnoses.

Layout in MLflow: search (parent) -> one run per stage (role=stage) -> trials. A stage
searches a space built from the previous stage's top-k trials (narrowed on each
parameter's own scale, then moved by what their diagnoses say), on its own data budget
(epochs, subsample, classes). A final `retrain` stage trains the best configurations on
the full data with several seeds, so the winner is not a lucky seed.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from mlflow_tune.config.settings import StageSettings
from mlflow_tune.config.space import Space
from mlflow_tune.config.tunefile import TuneConfig
from mlflow_tune.samplers.suggester import planned_trials
from mlflow_tune.stages.importance import importance
from mlflow_tune.stages.narrowing import adjust_for_diagnoses, describe, narrow
from mlflow_tune.stages.sampling import sample_fraction
from mlflow_tune.stages.warm import warm_points
from mlflow_tune.study.driver import Level, LevelResult, best_trial, restore_trials, run_level
from mlflow_tune.study.listener import SearchListener
from mlflow_tune.study.summary import retrain_table, summarise_stage
from mlflow_tune.tracking.runs import TAG, RunLogger, child_runs
from mlflow_tune.tracking.writer import drain
from mlflow_tune.trials.naming import stage_name
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


def _stage_runs(parent: RunLogger, experiment_id: str) -> dict[int, Any]:
    runs = child_runs(parent.client, experiment_id, parent.run_id)
    return {int(r.data.tags[TAG + "stage"]): r for r in runs if r.data.tags.get(TAG + "role") == "stage"}


def run_stages(tune: TuneConfig, parent: RunLogger, experiment_id: str, tracking_uri: str,
               listener: SearchListener, resumed: bool = False) -> LevelResult:
    existing = _stage_runs(parent, experiment_id) if resumed else {}
    everything: list[TrialOutcome] = []
    previous: list[TrialOutcome] = []
    previous_space, best_so_far = tune.space, dict[str, Any]()
    top_tid = -1   # trial numbers are unique across stages: each stage continues after the last
    for index, stage in enumerate(tune.stages):
        plan = plan_stage(tune, index, previous, best_so_far, previous_space)
        # A retrain measures spread over seeds: pruning would cut exactly the runs it needs.
        settings = dataclasses.replace(tune.search, algo="grid" if stage.retrain else stage.algo,
                                       pruning="none" if stage.retrain else tune.search.pruning)
        run, restored, last_tid = _open_stage(parent, experiment_id, index, stage, plan, existing, settings,
                                                 len(tune.stages))
        listener.search_started(stage.name, len(plan.points) if plan.points else
                                planned_trials(plan.space, settings.algo, stage_budget(stage)))
        for reason in plan.reasons:
            listener.message(f"[{stage.name}] {reason}")
        if run.status() == "FINISHED":
            result = LevelResult(restored, "done")
        else:
            level = Level(run, experiment_id, tracking_uri, plan.space, plan.base, settings,
                          stage_budget(stage), tags={TAG + "stage": str(index)}, restored=restored,
                          first_tid=top_tid + 1, points=list(plan.points) or None,
                          last_tid=last_tid, objective=tune.objective,
                          budget=stage.train_overrides if tune.objective is not None else {},
                          search_run_id=parent.run_id, curve_keys=dict(tune.curves), warm=list(plan.warm))
            result = run_level(level, listener)
            summarise_stage(run, stage, result)
        everything += result.outcomes
        top_tid = max([top_tid, last_tid, *(o.tid for o in result.outcomes)])
        if result.interrupted:
            run.end("KILLED")
            return LevelResult(everything, "interrupted", interrupted=True,
                               candidates=result.outcomes)
        drain()   # a stage is over when its trials' files are written (resume relies on it)
        run.end("FINISHED")
        previous, previous_space = result.outcomes, plan.space if not stage.retrain else previous_space
        if stage.retrain:   # the winner is the best configuration on average, not the luckiest seed
            table = retrain_table(result.outcomes)
            previous = [o for o in result.outcomes if table and o.run_id in table[0]["run_ids"]]
        best = best_trial(result.outcomes)
        if best is not None:
            best_so_far = {**best_so_far, **best.params}
    # Only the last stage's trials compete for "best": earlier ones saw less data or fewer classes.
    return LevelResult(everything, "stages_done", candidates=previous)


def _open_stage(parent: RunLogger, experiment_id: str, index: int, stage: StageSettings, plan: StagePlan,
                existing: dict[int, Any], settings: Any, count: int = 1) -> tuple[RunLogger, list[TrialOutcome], int]:
    """The stage's run: resumed (with its finished trials) or new (with its plan logged)."""
    names: Any = sorted({k for p in plan.points for k in p}) if plan.points else plan.space
    if index in existing:
        run = RunLogger(parent.client, existing[index].info.run_id)
        status = existing[index].info.status
        restored, last_tid = restore_trials(parent.client, experiment_id, run.run_id, names, settings)
        if status != "FINISHED":
            parent.client.update_run(run.run_id, status="RUNNING")
        return run, restored, last_tid
    run = RunLogger.start(parent.client, experiment_id, name=stage_name(
                              index, count, stage.algo, stage.train_overrides, stage.retrain, stage.seeds),
                          parent_run_id=parent.run_id,
                          tags={TAG + "role": "stage", TAG + "stage": str(index)})
    params: dict[str, Any] = {f"stage.{k}": v for k, v in dataclasses.asdict(stage).items()
                              if v not in (None, (), "")}
    params.update({f"space.{p.name}": json.dumps(p.to_spec()) for p in plan.space.params})
    run.log_params(params)
    run.log_text(json.dumps({"space": plan.space.to_spec(), "fixed": plan.base,
                             "points": list(plan.points), "adjustments": list(plan.reasons)}, indent=2),
                 "stage_plan.json")
    if plan.reasons:
        run.set_tags({TAG + "adjustments": "; ".join(plan.reasons)[:5000]})
    return run, [], -1
