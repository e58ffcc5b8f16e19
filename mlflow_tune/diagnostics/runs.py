"""Diagnose MLflow runs, ours or other tools': read curves back, label, write tags.

Metric names are recognised across tools: ours (train_loss, val_loss, train_accuracy,
val_accuracy), Keras autolog (loss, val_loss, accuracy, val_accuracy), Lightning-style
(train_acc, val_acc, *_epoch) and Hugging Face's Trainer (loss, eval_loss, eval_accuracy);
explicit keys override the guess.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mlflow_tune.diagnostics.curves import Curves, Diagnosis
from mlflow_tune.diagnostics.tags import diagnosis_tags
from mlflow_tune.diagnostics.verdict import diagnose
from mlflow_tune.tracking.runs import TAG, RunLogger, trial_runs
from mlflow_tune.training.config import ConfigError

CANDIDATES: dict[str, tuple[str, ...]] = {
    "train_loss": ("train_loss", "loss", "train_loss_epoch"),
    "val_loss": ("val_loss", "val_loss_epoch", "validation_loss", "eval_loss"),
    "train_accuracy": ("train_accuracy", "accuracy", "train_acc", "acc", "train_acc_epoch"),
    "val_accuracy": ("val_accuracy", "val_acc", "val_acc_epoch", "validation_accuracy", "eval_accuracy",
                     "eval_acc"),
    "lr": ("lr", "learning_rate"),
    "grad_norm": ("grad_norm",),
    "val_balanced_accuracy": ("val_balanced_accuracy", "val_balanced_acc"),
}


@dataclass(frozen=True)
class RunDiagnosis:
    run_id: str
    run_name: str
    diagnosis: Diagnosis
    keys: dict[str, str]      # curve -> metric key used

    def to_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "run_name": self.run_name, **self.diagnosis.to_dict(),
                "metric_keys": self.keys}


def pick_keys(available: set[str], explicit: Mapping[str, str | None]) -> dict[str, str]:
    keys = {}
    for curve, options in CANDIDATES.items():
        chosen = explicit.get(curve)
        if chosen:
            if chosen not in available:
                raise ConfigError(f"metric {chosen!r} (for {curve}) is not in the run; it has: "
                                  f"{', '.join(sorted(available)) or 'no metrics'}.")
            keys[curve] = chosen
            continue
        found = next((k for k in options if k in available), None)
        if found:
            keys[curve] = found
    return keys


def curves_of_run(client: Any, run: Any, explicit: Mapping[str, str | None]) -> tuple[Curves, dict[str, str]]:
    keys = pick_keys(set(run.data.metrics), explicit)
    values: dict[str, list[float]] = {}
    for curve, key in keys.items():
        history = sorted(client.get_metric_history(run.info.run_id, key), key=lambda m: (m.step, m.timestamp))
        values[curve] = [m.value for m in history]
    return Curves(**values), keys


def _int(value: Any) -> int | None:
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return None


def diagnose_run(client: Any, run: Any, explicit: Mapping[str, str | None] | None = None,
                 write: bool = True) -> RunDiagnosis:
    curves, keys = curves_of_run(client, run, explicit or {})
    params = run.data.params
    n_classes = _int(run.data.tags.get(TAG + "n_classes"))
    # logged by our training runs (TrainResult.final_metrics); other tools' runs go without the rule
    majority = run.data.metrics.get("val_majority_rate")
    result = diagnose(curves, n_classes=n_classes, planned_epochs=_int(params.get("epochs")), params=params,
                      majority_rate=majority, n_val=_int(run.data.metrics.get("val_rows")))
    if write:
        logger = RunLogger(client, run.info.run_id)
        logger.set_tags(diagnosis_tags(result))
        logger.log_text(json.dumps({**result.to_dict(), "metric_keys": keys}, indent=2), "diagnosis.json")
    return RunDiagnosis(run.info.run_id, run.info.run_name or "", result, keys)


def select_runs(client: Any, run_ids: list[str], experiment: str | None, parent: str | None) -> list[Any]:
    from mlflow.exceptions import MlflowException

    runs = []
    for run_id in run_ids:
        try:
            runs.append(client.get_run(run_id))
        except MlflowException:
            raise ConfigError(f"run {run_id!r} does not exist in this tracking store.") from None
    if parent:
        try:
            parent_run = client.get_run(parent)
        except MlflowException:
            raise ConfigError(f"--parent {parent!r} does not exist in this tracking store.") from None
        runs.extend(trial_runs(client, parent_run.info.experiment_id, parent))
    if experiment:
        found = client.get_experiment_by_name(experiment)
        if found is None:
            names = [e.name for e in client.search_experiments()]
            raise ConfigError(f"experiment {experiment!r} does not exist; experiments: {', '.join(names)}.")
        runs.extend(r for r in client.search_runs([found.experiment_id], max_results=5000)
                    if r.data.tags.get(TAG + "role") not in ("search", "stage"))
    if not (run_ids or parent or experiment):
        raise ConfigError("name runs to diagnose: RUN_ID ..., --experiment NAME or --parent RUN_ID.")
    return runs


def with_siblings(client: Any, parent: str, runs: list[Any], results: list[RunDiagnosis],
                  write: bool = True) -> list[RunDiagnosis]:
    """`results` of a search's trials, each healthy completed one judged against its siblings too
    (diagnostics.siblings, as the search does when it ends); written as tags when `write`."""
    from mlflow_tune.diagnostics.siblings import Sibling, is_score, judge_all

    if any(r.data.tags.get(TAG + "stage") for r in runs):
        return results   # a staged search's trials train on other budgets stage by stage
    search = client.get_run(parent).data.params
    metric = search.get("search.metric", "val_loss")
    mode = search.get("search.mode", "")   # a search logs the mode it resolved (SearchSettings)
    key = metric if is_score(metric, mode) else "best_val_accuracy"
    trials = []
    for run, result in zip(runs, results, strict=True):
        value, tid = run.data.metrics.get(key), _int(run.data.tags.get(TAG + "trial"))
        if run.data.tags.get(TAG + "outcome") == "completed" and value is not None and tid is not None:
            trials.append((Sibling(tid, float(value), dict(run.data.params)), result.diagnosis.label))
    rows = [_int(r.data.metrics.get("val_rows")) for r in runs if r.data.metrics.get("val_rows")]
    found = judge_all(trials, key, rows[0] if rows else None)
    out = []
    for run, result in zip(runs, results, strict=True):
        tid = _int(run.data.tags.get(TAG + "trial"))
        if tid in found:
            result = RunDiagnosis(result.run_id, result.run_name, found[tid], result.keys)
            if write:
                RunLogger(client, run.info.run_id).set_tags({**diagnosis_tags(found[tid]),
                                                            TAG + "diagnosis.reference": "siblings"})
        out.append(result)
    return out


def label_counts(results: list[RunDiagnosis]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in results:
        counts[r.diagnosis.label] = counts.get(r.diagnosis.label, 0) + 1
    return counts
