"""A finished search read back from MLflow: everything the report draws, nothing drawn yet.

Reads the parent run, its trials (and stages), each trial's curve of the searched metric (and
train_loss), and a retrain stage's table: one query per run and curve, ~2 s for 50 trials at most.
"""

from __future__ import annotations

import json
import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlflow_tune.tracking.runs import TAG, child_runs, trial_runs
from mlflow_tune.training.config import ConfigError

TRIAL_METRICS = ("best_val_loss", "best_val_accuracy", "test_loss", "test_accuracy", "best_epoch")


@dataclass(frozen=True)
class TrialRow:
    run_id: str
    trial: int
    stage: int                      # index of the trial's stage; 0 for an unstaged search
    outcome: str
    objective: float | None
    diagnosis: str
    advice: str
    params: dict[str, str]
    metrics: dict[str, float] = field(default_factory=dict)
    name: str = ""


@dataclass(frozen=True)
class StageInfo:
    index: int
    name: str                       # the stage run's name, e.g. "stage 1/2 random 30% data 6 epochs"
    space: dict[str, str]           # parameter -> its spec, as the stage searched it
    retrain: list[dict[str, Any]]   # a retrain stage's configurations: params, seeds, mean, std


@dataclass(frozen=True)
class SearchData:
    run_id: str
    experiment_id: str
    name: str
    metric: str
    mode: str
    names: list[str]                # searched parameters
    log_names: set[str]             # those searched on a log scale
    rows: list[TrialRow]            # by trial number
    stages: list[StageInfo]
    curves: dict[str, dict[str, list[tuple[int, float]]]]   # run id -> metric -> (step, value)
    best_run_id: str
    stopped_by: str
    note: str

    def trial_count(self) -> str:
        """The trials as the search's summary counts them: a run interrupted mid-trial (and
        replaced by a new trial on `--resume`) is not one of them, so it is named apart."""
        stopped = sum(r.outcome == "interrupted" for r in self.rows)
        return f"{len(self.rows) - stopped} trials" + (f" (+{stopped} interrupted)" if stopped else "")


def _spaces(params: dict[str, str]) -> dict[str, str]:
    return {k[len("space."):]: v for k, v in params.items() if k.startswith("space.")}


def _is_log(spec: str) -> bool:
    return any(k in spec for k in ("loguniform", "logint", "qloguniform"))


def _row(run: Any, names: list[str]) -> TrialRow:
    tags, metrics = run.data.tags, run.data.metrics
    objective = metrics.get("objective")
    return TrialRow(run.info.run_id, int(tags.get(TAG + "trial", -1)), int(tags.get(TAG + "stage", 0)),
                    tags.get(TAG + "outcome", run.info.status.lower()),
                    objective if objective is not None and math.isfinite(objective) else None,
                    tags.get(TAG + "diagnosis", ""), tags.get(TAG + "advice", ""),
                    {k: run.data.params[k] for k in names if k in run.data.params},
                    {k: metrics[k] for k in TRIAL_METRICS if k in metrics}, run.info.run_name or "")


def _retrain(client: Any, run: Any) -> list[dict[str, Any]]:
    if not int(run.data.params.get("stage.retrain", "0") or 0):
        return []
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = client.download_artifacts(run.info.run_id, "retrain.json", tmp)
        except Exception:   # a stage interrupted before its table was written
            return []
        return list(json.loads(Path(path).read_text()))


def read_search(client: Any, parent_run_id: str) -> SearchData:
    from mlflow.exceptions import MlflowException

    try:
        parent = client.get_run(parent_run_id)
    except MlflowException:
        raise ConfigError(f"run {parent_run_id!r} does not exist in this tracking store.") from None
    if parent.data.tags.get(TAG + "role") != "search":
        raise ConfigError(f"run {parent_run_id!r} is not a search run (tag {TAG}role=search).")
    experiment_id = str(parent.info.experiment_id)
    space = _spaces(parent.data.params)
    names = sorted(space)
    stage_runs = [r for r in child_runs(client, experiment_id, parent_run_id)
                  if r.data.tags.get(TAG + "role") == "stage"]
    stages = sorted((StageInfo(int(r.data.tags.get(TAG + "stage", 0)), r.info.run_name or "",
                               _spaces(r.data.params), _retrain(client, r)) for r in stage_runs),
                    key=lambda s: s.index)
    for stage in stages:   # a stage may search a parameter the parent's space did not list
        names += sorted(set(stage.space) - set(names))
    runs = trial_runs(client, experiment_id, parent_run_id)
    rows = sorted((_row(r, names) for r in runs if r.data.tags.get(TAG + "role") == "trial"),
                  key=lambda r: r.trial)
    metric = parent.data.params.get("search.metric", "val_loss")
    curves = {}
    for run in runs:
        wanted = [k for k in dict.fromkeys((metric, "train_loss")) if k in run.data.metrics]
        curves[run.info.run_id] = {k: [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, k)]
                                   for k in wanted}
    log_names = {k for k, spec in space.items() if _is_log(spec)}
    log_names |= {k for s in stages for k, spec in s.space.items() if _is_log(spec)}
    return SearchData(parent_run_id, experiment_id, parent.info.run_name or "", metric,
                      parent.data.params.get("search.mode", "min"), names, log_names, rows, stages, curves,
                      parent.data.tags.get(TAG + "best_run_id", ""), parent.data.tags.get(TAG + "stopped_by", ""),
                      parent.data.tags.get("mlflow.note.content", ""))
