"""A whole search as one MLflow parent run: set up or resume, run, summarise."""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from mlflow_tune import faults, interrupts
from mlflow_tune.config.settings import DEFAULT_ALGO, SearchSettings, coerce_section
from mlflow_tune.config.space_yaml import parse_space
from mlflow_tune.config.tunefile import TuneConfig, parse_stages
from mlflow_tune.executors.local import start_workers_ahead
from mlflow_tune.executors.spark import check_spark
from mlflow_tune.samplers.suggester import planned_trials
from mlflow_tune.study.driver import (
    FINAL,
    check_resumable,
    restore_trials,
    run_level,
)
from mlflow_tune.study.level import Level, LevelResult
from mlflow_tune.study.listener import SearchListener
from mlflow_tune.study.resume import resumed_settings
from mlflow_tune.study.siblings import judge_siblings
from mlflow_tune.study.summary import SearchOutcome, summarise, trials_csv
from mlflow_tune.tracking.runs import (
    TAG,
    RunLogger,
    check_access,
    client_for,
    ensure_experiment,
    resolve_tracking_uri,
)
from mlflow_tune.tracking.store import check_server, short_cause, storage_error
from mlflow_tune.tracking.writer import DRAIN_SECONDS, RunWrite, Writer, drain
from mlflow_tune.tracking.writer import shared as shared_writer
from mlflow_tune.training.config import ConfigError
from mlflow_tune.trials.naming import search_name

if TYPE_CHECKING:
    from mlflow_tune.trials.function import Trial


class StoreLost(RuntimeError):
    """The tracking store stopped answering, or refused a write (`refused`: a full disk, a read-only
    store), mid-search: the search stopped; once the store is fixed `--resume` completes it."""

    def __init__(self, parent_run_id: str, saved: int, reason: str, refused: str = "", uri: str = ""):
        if refused:
            where = f" at {uri[:120]}" if uri and "'" not in refused else ""   # else the cause names the path
            head = f"the tracking store{where} refused a write ({refused}); free space or make it writable"
        else:
            head = f"the tracking store stopped answering ({short_cause(reason)})"
        tail = f"the search stopped with {saved} trials saved in run {parent_run_id}" if parent_run_id else \
            "the search stopped before its first trial"
        super().__init__(f"{head}; {tail}")
        self.parent_run_id, self.saved = parent_run_id, saved


def search(tune: TuneConfig, *, tracking_uri: str | None = None, resume: str | None = None,
           listener: SearchListener | None = None, parent_run_id: str | None = None) -> SearchOutcome:
    """Run (or with `resume`, continue) the search described by `tune`.

    `parent_run_id`: an existing run to be the search (the `tune` project backend's); under
    `mlflow run . -e search` that is MLFLOW_RUN_ID.

    SIGINT/SIGTERM stop it cleanly (see `interrupts`): trials still running end KILLED, the
    finished ones are summarised, the parent ends KILLED and `outcome.interrupted` is true."""
    listener = listener or SearchListener()
    uri = resolve_tracking_uri(tracking_uri)
    check_server(uri)   # a server that does not answer: one line, before anything starts
    resumed: Any = None
    changed: list[str] = []
    if resume:   # a bad id is refused before any worker starts; the search keeps its own settings
        resumed = check_resumable(client_for(tracking_uri), resume)
        tune, changed = resumed_settings(resumed, tune)
    preflight(tune)
    if tune.search.executor == "spark":   # refused before any worker or session starts
        check_spark(tune.search.spark_master, uri)
    start_workers_ahead(tune.search.executor, tune.search.parallel)
    # Trials training in this process: their writes (and the set-up's) go to the writer thread.
    writer = shared_writer().start() if tune.search.parallel <= 1 and not tune.search.project else None
    client = client_for(tracking_uri)
    with _before_the_parent(uri):
        check_access(client)
    # From here a signal sets a flag: the parent is made, then ended with a summary, whatever comes.
    with interrupts.saving():
        with _before_the_parent(uri):
            parent, experiment_id = _open_parent(client, tune, resumed, parent_run_id, writer)
        # Said first, so that even after a kill -9 the terminal holds the id `--resume` needs.
        listener.message(f"search run {parent.run_id} {'resumed' if resume else 'started'}; "
                         "--resume it if it stops")   # one id: the line fits 80 columns
        if changed:
            listener.message("resumed with the search's own settings: " + "; ".join(changed))
        result: LevelResult | None = None
        try:
            faults.point("setup-logged")
            result = _run(tune, parent, experiment_id, client, listener, bool(resume))
            if not result.interrupted and not interrupts.store_failed():
                result = judge_siblings(result, tune, client, listener, experiment_id, parent.run_id)
            if interrupts.store_failed():   # no summary to write: stop now
                raise RuntimeError(interrupts.signal_name())
            faults.point("before-summary")
            # The trials table needs nothing from the trials' runs: it is written while the
            # writer finishes the last of them; the rest of the summary reads them.
            parent.log_text(trials_csv(result.outcomes), "trials.csv")
            drain(DRAIN_SECONDS)
            listener.search_finished()
            outcome = summarise(parent, result, experiment_id, tune.search.metric, tune.search.mode)
        except BaseException as exc:
            listener.search_finished()
            lost = interrupts.store_lost()
            refused = storage_error(exc)
            if not refused and interrupts.store_refused():   # the driver stopped the search for it
                refused = short_cause(interrupts.signal_name()[len(interrupts.STORE_REFUSED):])
            if not lost:
                with contextlib.suppress(Exception):   # the store itself may be what failed
                    parent.set_tags({TAG + "error": f"{type(exc).__name__}: {exc}"[:500]})
                    parent.end("KILLED" if isinstance(exc, KeyboardInterrupt) or refused else "FAILED")
            if lost or refused or _unreachable(exc):
                saved = sum(o.status in FINAL for o in result.outcomes) if result is not None else 0
                reason = interrupts.signal_name().split(": ", 1)[-1] if interrupts.store_failed() else str(exc)
                raise StoreLost(parent.run_id, saved, reason, refused, uri) from None
            raise
        fatal = next((o.error for o in result.outcomes if o.fatal), "")
        parent.end("KILLED" if result.interrupted else "FAILED" if fatal else "FINISHED")
    if fatal:   # e.g. the metric is never reported: the user's mistake, told in one line
        raise ConfigError(fatal)
    return outcome


@contextlib.contextmanager
def _before_the_parent(uri: str) -> Iterator[None]:
    """The store failing before the search has a run: one line (StoreLost), nothing to resume."""
    try:
        yield
    except Exception as exc:
        if (refused := storage_error(exc)) or _unreachable(exc):
            raise StoreLost("", 0, str(exc), refused, uri) from None
        raise


def _unreachable(exc: BaseException) -> bool:
    text = f"{type(exc).__name__}: {exc}"
    return any(s in text for s in ("Max retries exceeded", "ConnectionError", "Connection refused",
                                   "API request to", "NewConnectionError"))


def _open_parent(client: Any, tune: TuneConfig, resumed: Any, parent_run_id: str | None,
                 writer: Writer | None) -> tuple[RunLogger, str]:
    if resumed is not None:   # the parent run, checked resumable
        parent = RunLogger(client, resumed.info.run_id)
        client.update_run(parent.run_id, status="RUNNING")
        parent.set_tags({TAG + "resumed": "true"})
        return parent, str(resumed.info.experiment_id)
    if parent_run_id or os.environ.get("MLFLOW_RUN_ID"):
        parent = RunLogger(client, parent_run_id or os.environ["MLFLOW_RUN_ID"])
        experiment_id = str(client.get_run(parent.run_id).info.experiment_id)
        parent.set_tags({TAG + "role": "search"})
    else:
        experiment_id = ensure_experiment(client, tune.experiment)
        parent = RunLogger.start(client, experiment_id, name=search_name(
                                     tune.search.algo, tune.train, tune.objective,
                                     tune.stages[0].algo if tune.stages else "", time.strftime("%m-%d %H:%M")),
                                 tags={TAG + "role": "search"})
    try:
        log_setup(parent, tune, writer)
    except BaseException:
        with contextlib.suppress(Exception):
            parent.end("FAILED")
        raise
    return parent, experiment_id


def _run(tune: TuneConfig, parent: RunLogger, experiment_id: str, client: Any, listener: SearchListener,
         resumed: bool) -> LevelResult:
    if tune.stages:
        from mlflow_tune.study.staged import run_stages

        return run_stages(tune, parent, experiment_id, client.tracking_uri, listener, resumed=resumed)
    restored, last_tid = restore_trials(client, experiment_id, parent.run_id, tune.space.names,
                                        tune.search) if resumed else ([], -1)
    listener.search_started("search", planned_trials(tune.space, tune.search.algo, tune.search.max_trials),
                            restored)
    level = Level(parent, experiment_id, client.tracking_uri, tune.space, dict(tune.train),
                  tune.search, tune.search.max_trials, restored=restored, last_tid=last_tid,
                  objective=tune.objective, search_run_id=parent.run_id, curve_keys=dict(tune.curves))
    return run_level(level, listener)


def log_setup(parent: RunLogger, tune: TuneConfig, writer: Writer | None = None) -> None:
    """The search's settings, space and fixed values as params; its tune file and space as files."""
    s = tune.search
    params: dict[str, Any] = {f"search.{k}": v for k, v in s.__dict__.items() if v not in ("", None)}
    params.update({f"space.{p.name}": json.dumps(p.to_spec()) for p in tune.space.params})
    params.update({f"train.{k}": v for k, v in tune.train.items()})
    if tune.objective is not None:
        params["objective"] = objective_name(tune.objective)
    texts = (("tune.yaml", tune.source or json.dumps({"train": tune.train, "space": tune.space.to_spec()},
                                                     default=str)),
             ("space.json", json.dumps(tune.space.to_spec(), indent=2)))
    if writer is not None:   # written while the first trial trains
        writer.submit(RunWrite(parent.tracking_uri, parent.run_id, params=tuple((k, str(v)) for k, v in params.items()),
                               texts=texts))
        return
    parent.log_params(params)
    for path, text in texts:
        parent.log_text(text, path)


def preflight(tune: TuneConfig) -> None:
    """A user's data file is read and a user's model builder imported, once, before any run exists:
    a mistake there is one line and exit 2, not every trial FAILED. The builder is not called (it
    may be large, or do what only a worker should); built-in data and models are not loaded here."""
    if tune.objective is not None or tune.free or tune.search.project:
        return
    from mlflow_tune.training.config import MODELS

    cfg = tune.trial_config(tune.space.example())
    if cfg.model not in MODELS:
        from mlflow_tune.training.models import resolve_builder

        resolve_builder(cfg.model)
    if cfg.data_path:
        from mlflow_tune.training.data import split

        split(cfg)


def objective_name(objective: Any) -> str:
    if isinstance(objective, str):
        return objective
    return f"{getattr(objective, '__module__', '?')}:{getattr(objective, '__qualname__', repr(objective))}"


def optimize(fn: Callable[[Trial], Any], space: Mapping[str, Any], *, metric: str, mode: str = "",
             algo: str = DEFAULT_ALGO, max_trials: int = 20, parallel: int = 1, pruning: str = "median",
             experiment: str = "mlflow-tune", fixed: Mapping[str, Any] | None = None,
             stages: Sequence[Mapping[str, Any]] = (), tracking_uri: str | None = None, resume: str | None = None,
             listener: SearchListener | None = None, **search_settings: Any) -> SearchOutcome:
    """Tune the user's own training function: `fn(trial)` reads `trial.params` (and `trial.budget`),
    trains, and calls `trial.report(step, {...})` as it goes; see `Trial`.

    `space` is the tune file's space (e.g. ``{"lr": {"loguniform": [1e-4, 1]}}``) over the function's
    own parameter names; `fixed` values reach it in `trial.params` too. With `parallel` > 1 the
    function runs in worker processes: define it in a module, or in a script under
    ``if __name__ == "__main__":``. Other search settings (seed, top_k_models, pruning_warmup, ...)
    by keyword, as in the tune file's ``search:`` section.
    """
    settings = {"metric": metric, "mode": mode, "algo": algo, "max_trials": max_trials, "parallel": parallel,
                "pruning": pruning, **search_settings}
    tune = TuneConfig(experiment, dict(fixed or {}), parse_space(space, free=True),
                      SearchSettings(**coerce_section("search", SearchSettings, settings)),
                      parse_stages(list(stages) or None), objective=fn)
    return search(tune, tracking_uri=tracking_uri, resume=resume, listener=listener)


__all__ = ["LevelResult", "SearchOutcome", "optimize", "search"]
