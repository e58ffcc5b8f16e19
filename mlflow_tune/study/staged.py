"""A staged search in MLflow: one run per stage (role=stage) under the search, trials under it.

Each stage's space, data budget and warm start are planned by ``stages.plan`` from the stage
before; this module opens (or resumes) the stage's run, runs its level through the driver and
summarises it. A final `retrain` stage trains the best configurations on the full data with
several seeds, so the winner is not a lucky seed.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from mlflow_tune.config.settings import StageSettings
from mlflow_tune.config.tunefile import TuneConfig
from mlflow_tune.samplers.suggester import planned_trials
from mlflow_tune.stages.plan import StagePlan, plan_stage, stage_budget
from mlflow_tune.study.driver import restore_trials, run_level
from mlflow_tune.study.level import Level, LevelResult, best_trial
from mlflow_tune.study.listener import SearchListener
from mlflow_tune.study.summary import retrain_table, summarise_stage
from mlflow_tune.tracking.runs import TAG, RunLogger, child_runs
from mlflow_tune.tracking.writer import drain
from mlflow_tune.trials.naming import stage_name
from mlflow_tune.trials.records import TrialOutcome


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
                                planned_trials(plan.space, settings.algo, stage_budget(stage)), restored)
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
