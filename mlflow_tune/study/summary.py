"""What a search and its stages leave on their runs when they end: counts, best trial, trials table.

The one place a search's summary is made: `study.search()` writes the trials table and calls
`summarise`, `stages.run_stages()` calls `summarise_stage` on each stage run.
"""

from __future__ import annotations

import csv
import io
import json
import statistics
from dataclasses import dataclass, field
from typing import Any

from mlflow_tune.config.settings import StageSettings
from mlflow_tune.study.level import LevelResult, best_trial
from mlflow_tune.study.note import search_note
from mlflow_tune.tracking.runs import TAG, RunLogger, finite
from mlflow_tune.trials.records import TrialOutcome

SUMMARY_METRICS = ("objective", "best_val_loss", "best_val_accuracy", "best_epoch", "test_loss", "test_accuracy")


@dataclass(frozen=True)
class SearchOutcome:
    parent_run_id: str
    experiment_id: str
    tracking_uri: str
    trials: tuple[TrialOutcome, ...]
    best: TrialOutcome | None
    best_metrics: dict[str, float] = field(default_factory=dict)
    stopped_by: str = ""
    counts: dict[str, int] = field(default_factory=dict)
    # a staged search's final retrain: the configuration with the best mean over its seeds (ties:
    # the smaller spread), {"params", "seeds", "mean", "std", "run_ids"}; empty otherwise
    winner: dict[str, Any] = field(default_factory=dict)

    @property
    def interrupted(self) -> bool:
        return self.stopped_by == "interrupted"

    def to_dict(self) -> dict[str, Any]:
        best = self.best
        return {"parent_run_id": self.parent_run_id, "experiment_id": self.experiment_id,
                "tracking_uri": self.tracking_uri, "stopped_by": self.stopped_by, "counts": self.counts,
                "best_run_id": best.run_id if best else None, "best_trial": best.tid if best else None,
                "best_params": best.params if best else {}, "best_objective": best.objective if best else None,
                "best_metrics": self.best_metrics, "winner": self.winner}


def counts_of(trials: list[TrialOutcome]) -> dict[str, int]:
    counts = {"trials": len(trials)}
    for o in trials:
        counts[o.status] = counts.get(o.status, 0) + 1
        if o.diagnosis:
            counts[f"diagnosis_{o.diagnosis}"] = counts.get(f"diagnosis_{o.diagnosis}", 0) + 1
    return counts


def trials_csv(trials: list[TrialOutcome]) -> str:
    names = sorted({k for o in trials for k in o.params})
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["trial", "run_id", "status", "objective", "diagnosis", "epochs", "error", *names])
    for o in sorted(trials, key=lambda t: t.tid):
        writer.writerow([o.tid, o.run_id, o.status, "" if o.objective is None else o.objective,
                         o.diagnosis, o.epochs, o.error, *(o.params.get(n, "") for n in names)])
    return out.getvalue()


def summarise(parent: RunLogger, result: LevelResult, experiment_id: str, metric: str = "objective",
              mode: str = "min") -> SearchOutcome:
    """Write the parent's summary (its trials table is already in): counts, best trial's params,
    metrics and run id."""
    trials = result.outcomes
    best = result.best()
    counts = counts_of(trials)
    metrics = {f"n_{k}": float(v) for k, v in counts.items()}
    tags = {TAG + "stopped_by": result.stopped_by}
    best_metrics: dict[str, float] = {}
    if best is not None:
        child = parent.client.get_run(best.run_id).data
        best_metrics = {k: child.metrics[k] for k in SUMMARY_METRICS if k in child.metrics}
        if set(best_metrics) <= {"objective"}:   # a user's function or project: its own metrics, as last reported
            best_metrics.update({k: v for k, v in sorted(child.metrics.items()) if k not in ("objective", "loss")})
        metrics.update(finite(best_metrics))
        tags[TAG + "best_run_id"] = best.run_id
        tags[TAG + "best_trial"] = str(best.tid)
        tags.update({f"{TAG}best.{k}": str(v) for k, v in best.params.items()})
        log_best_params(parent, {**{k: v for k, v in child.params.items()}, **best.params})
    winner = retrain_winner(result.candidates)
    if winner:
        # the runs `promote` picks from, and the figures the choice rests on: the mean, not one seed
        tags[TAG + "winner_run_ids"] = ",".join(winner["run_ids"])
        metrics.update(finite({"winner_mean": winner["mean"], "winner_std": winner["std"],
                               "winner_seeds": float(winner["seeds"])}))
    tags["mlflow.note.content"] = search_note(metric, mode, counts, result.stopped_by, best, best_metrics)
    parent.log_batch([(k, v, 0) for k, v in metrics.items()], tags=tags)   # one commit
    client = parent.client
    return SearchOutcome(parent.run_id, experiment_id, client.tracking_uri, tuple(trials), best,
                         best_metrics, result.stopped_by, counts, winner)


def retrain_winner(candidates: list[TrialOutcome] | None) -> dict[str, Any]:
    """The one configuration the candidates hold when they are its seeds (a final retrain), else {}."""
    rows = retrain_table(candidates or [])
    if len(rows) != 1 or rows[0]["seeds"] < 2:
        return {}
    return {k: rows[0][k] for k in ("params", "seeds", "mean", "std", "run_ids")}


def log_best_params(parent: RunLogger, params: dict[str, Any]) -> None:
    """The best trial's params on the parent, so parent and trials compare in the MLflow UI.

    MLflow params are write-once: when a resumed search finds a new best, the old values stay
    and the `mlflow_tune.best.*` tags carry the new ones.
    """
    from mlflow.exceptions import MlflowException

    try:
        parent.log_params(params)
    except MlflowException:
        parent.set_tags({TAG + "best_params_in_tags": "true"})


def summarise_stage(run: RunLogger, stage: StageSettings, result: LevelResult) -> None:
    best = best_trial(result.outcomes)
    metrics = {"n_trials": float(len(result.outcomes))}
    if best is not None and best.objective is not None:
        metrics["best_objective"] = best.objective
        run.set_tags({TAG + "best_run_id": best.run_id})
    if stage.retrain:
        rows = retrain_table(result.outcomes)
        run.log_text(json.dumps(rows, indent=2), "retrain.json")
        for rank, row in enumerate(rows):
            metrics[f"retrain_{rank}_mean"] = row["mean"]
            metrics[f"retrain_{rank}_std"] = row["std"]
    run.log_metrics(finite(metrics))


def retrain_table(outcomes: list[TrialOutcome]) -> list[dict[str, Any]]:
    """Mean and spread of the objective per configuration over its seeds: best mean first, ties by
    the smaller spread (the steadier configuration), then by the first run."""
    groups: dict[str, list[TrialOutcome]] = {}
    for o in outcomes:
        # str(): trials restored from MLflow on resume carry their params as strings
        key = json.dumps({k: str(v) for k, v in sorted(o.params.items()) if k != "seed"})
        groups.setdefault(key, []).append(o)
    rows = []
    for runs in groups.values():
        values = [o.objective for o in runs if o.objective is not None]
        losses = [o.loss for o in runs if o.loss is not None]
        if not values:
            continue
        params = {k: v for k, v in runs[0].params.items() if k != "seed"}
        rows.append({"params": params, "seeds": len(values), "mean": statistics.fmean(values),
                     "std": statistics.pstdev(values), "mean_loss": statistics.fmean(losses),
                     "run_ids": [o.run_id for o in runs]})
    return sorted(rows, key=lambda r: (r["mean_loss"], r["std"]))
