"""A whole search as one MLflow parent run: set up or resume, run, summarise."""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass, field
from typing import Any

from mlflow_tune.executors.local import start_workers_ahead
from mlflow_tune.tracking.runs import TAG, RunLogger, client_for, ensure_experiment, finite
from mlflow_tune.tracking.writer import RunWrite, Writer, drain
from mlflow_tune.tracking.writer import shared as shared_writer
from mlflow_tune.tuning.driver import (
    Level,
    LevelResult,
    check_resumable,
    restore_trials,
    run_level,
    sigterm_as_interrupt,
)
from mlflow_tune.tuning.listener import SearchListener
from mlflow_tune.tuning.trial import TrialOutcome
from mlflow_tune.tuning.tunefile import TuneConfig

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

    @property
    def interrupted(self) -> bool:
        return self.stopped_by == "interrupted"

    def to_dict(self) -> dict[str, Any]:
        best = self.best
        return {"parent_run_id": self.parent_run_id, "experiment_id": self.experiment_id,
                "tracking_uri": self.tracking_uri, "stopped_by": self.stopped_by, "counts": self.counts,
                "best_run_id": best.run_id if best else None, "best_trial": best.tid if best else None,
                "best_params": best.params if best else {}, "best_objective": best.objective if best else None,
                "best_metrics": self.best_metrics}


def search(tune: TuneConfig, *, tracking_uri: str | None = None, resume: str | None = None,
           listener: SearchListener | None = None) -> SearchOutcome:
    """Run (or with `resume`, continue) the search described by `tune`."""
    listener = listener or SearchListener()
    start_workers_ahead(tune.search.executor, tune.search.parallel)
    # Trials training in this process: their writes (and the set-up's) go to the writer thread.
    writer = shared_writer().start() if tune.search.parallel <= 1 and not tune.search.project else None
    client = client_for(tracking_uri)
    if resume:
        run = check_resumable(client, resume)
        experiment_id = str(run.info.experiment_id)
        parent = RunLogger(client, resume)
        client.update_run(resume, status="RUNNING")
        parent.set_tags({TAG + "resumed": "true"})
    elif os.environ.get("MLFLOW_RUN_ID"):   # under `mlflow run . -e search`: that run is the search
        parent = RunLogger(client, os.environ["MLFLOW_RUN_ID"])
        experiment_id = str(client.get_run(parent.run_id).info.experiment_id)
        parent.set_tags({TAG + "role": "search"})
        log_setup(parent, tune, writer)
    else:
        experiment_id = ensure_experiment(client, tune.experiment)
        parent = RunLogger.start(client, experiment_id, name=f"search-{tune.search.algo}",
                                 tags={TAG + "role": "search"})
        log_setup(parent, tune, writer)
    with sigterm_as_interrupt():
        try:
            result = _run(tune, parent, experiment_id, client, listener, bool(resume))
            # The trials table needs nothing from the trials' runs: it is written while the
            # writer finishes the last of them; the rest of the summary reads them.
            parent.log_text(trials_csv(result.outcomes), "trials.csv")
            drain()
        except BaseException as exc:
            parent.set_tags({TAG + "error": f"{type(exc).__name__}: {exc}"[:500]})
            parent.end("KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED")
            raise
        finally:
            listener.search_finished()
        outcome = summarise(parent, result, experiment_id)
        parent.end("KILLED" if result.interrupted else "FINISHED")
    return outcome


def _run(tune: TuneConfig, parent: RunLogger, experiment_id: str, client: Any, listener: SearchListener,
         resumed: bool) -> LevelResult:
    if tune.stages:
        from mlflow_tune.tuning.stages import run_stages

        return run_stages(tune, parent, experiment_id, client.tracking_uri, listener, resumed=resumed)
    restored, last_tid = restore_trials(client, experiment_id, parent.run_id, tune.space.names,
                                        tune.search) if resumed else ([], -1)
    listener.search_started("search", tune.search.max_trials)
    level = Level(parent, experiment_id, client.tracking_uri, tune.space, dict(tune.train),
                  tune.search, tune.search.max_trials, restored=restored, last_tid=last_tid)
    return run_level(level, listener)


def log_setup(parent: RunLogger, tune: TuneConfig, writer: Writer | None = None) -> None:
    """The search's settings, space and fixed values as params; its tune file and space as files."""
    s = tune.search
    params: dict[str, Any] = {f"search.{k}": v for k, v in s.__dict__.items() if v not in ("", None)}
    params.update({f"space.{p.name}": json.dumps(p.to_spec()) for p in tune.space.params})
    params.update({f"train.{k}": v for k, v in tune.train.items()})
    texts = (("tune.yaml", tune.source or json.dumps({"train": tune.train, "space": tune.space.to_spec()})),
             ("space.json", json.dumps(tune.space.to_spec(), indent=2)))
    if writer is not None:   # written while the first trial trains
        writer.submit(RunWrite(parent.tracking_uri, parent.run_id, params=tuple((k, str(v)) for k, v in params.items()),
                               texts=texts))
        return
    parent.log_params(params)
    for path, text in texts:
        parent.log_text(text, path)


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


def summarise(parent: RunLogger, result: LevelResult, experiment_id: str) -> SearchOutcome:
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
        metrics.update(finite(best_metrics))
        tags[TAG + "best_run_id"] = best.run_id
        tags[TAG + "best_trial"] = str(best.tid)
        tags.update({f"{TAG}best.{k}": str(v) for k, v in best.params.items()})
        log_best_params(parent, {**{k: v for k, v in child.params.items()}, **best.params})
    parent.log_batch([(k, v, 0) for k, v in metrics.items()], tags=tags)   # one commit
    client = parent.client
    return SearchOutcome(parent.run_id, experiment_id, client.tracking_uri, tuple(trials), best,
                         best_metrics, result.stopped_by, counts)


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


__all__ = ["LevelResult", "SearchOutcome", "search"]
