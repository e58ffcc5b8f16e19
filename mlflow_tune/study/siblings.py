"""When a search ends: its completed trials judged against each other (diagnostics.siblings).

A trial's own diagnosis is made as it ends, from its curves alone.  Once the search is over, its
siblings are a reference that belongs to the task, so a trial that looked healthy but ended far
below the best of them is relabelled underfit/below_siblings on its run (tags, as the UI filters
them) and in the outcomes the summary counts.  Staged searches are left alone: their stages train
on other budgets, and a coarse trial is not a sibling of a fine one.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from mlflow_tune.config.tunefile import TuneConfig
from mlflow_tune.diagnostics.siblings import Sibling, is_score, judge_all
from mlflow_tune.diagnostics.tags import diagnosis_tags
from mlflow_tune.study.level import LevelResult
from mlflow_tune.study.listener import SearchListener
from mlflow_tune.tracking.runs import TAG, RunLogger, trial_runs
from mlflow_tune.trials.records import TrialOutcome


def judge_siblings(result: LevelResult, tune: TuneConfig, client: Any, listener: SearchListener,
                   experiment_id: str, parent_run_id: str) -> LevelResult:
    """`result` with its healthy trials that ended far below their best sibling relabelled.

    Judged on the search's metric when it is a score (val_accuracy, val_f1, ...), else on the
    trials' best_val_accuracy (our loop logs it whatever the search optimises)."""
    if tune.stages:
        return result
    done = [o for o in result.outcomes if o.status == "completed"]
    if len(done) < 2 or not any(o.diagnosis == "healthy" for o in done):
        return result
    score = is_score(tune.search.metric, tune.search.mode)
    runs = {} if score else {r.info.run_id: r for r in trial_runs(client, experiment_id, parent_run_id)}
    metric = tune.search.metric if score else "best_val_accuracy"
    values = {o.tid: o.objective if score else runs[o.run_id].data.metrics.get(metric) if o.run_id in runs
              else None for o in done}
    done = [o for o in done if values[o.tid] is not None]
    best = max(done, key=lambda o: values[o.tid] or 0.0, default=None)
    found = judge_all([(Sibling(o.tid, float(values[o.tid] or 0.0), o.params), o.diagnosis) for o in done],
                      metric, _val_rows(client, best))
    changed: dict[int, TrialOutcome] = {}
    for o in (o for o in done if o.tid in found):
        RunLogger(client, o.run_id).set_tags({**diagnosis_tags(found[o.tid]), TAG + "diagnosis.reference": "siblings"})
        changed[o.tid] = dataclasses.replace(o, diagnosis=found[o.tid].label)
    if not changed:
        return result
    ids = ", ".join(str(t) for t in sorted(changed))
    listener.message(f"trial{'s' * (len(changed) > 1)} {ids}: healthy curves, but far below the best "
                     "sibling: underfit/below_siblings")
    outcomes = [changed.get(o.tid, o) for o in result.outcomes]
    candidates = None if result.candidates is None else [changed.get(o.tid, o) for o in result.candidates]
    return dataclasses.replace(result, outcomes=outcomes, candidates=candidates)


def _val_rows(client: Any, best: TrialOutcome | None) -> int | None:
    """The validation rows the accuracies are measured on (our loop logs `val_rows`)."""
    if best is None:
        return None
    rows = client.get_run(best.run_id).data.metrics.get("val_rows")
    return int(rows) if rows else None
