"""`mlflow-tune search`: a hyperparameter search as a parent run with one child run per trial."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Annotated, Any

import typer

from mlflow_tune import interrupts
from mlflow_tune.cli.common import (
    TrackingUri,
    fail,
    interrupted_line,
    json_stdout,
    ui_hint,
    user_errors,
)
from mlflow_tune.config.settings import ALGOS, ENV_MANAGERS, PRUNERS


@user_errors
def search(
    config: Annotated[Path, typer.Option(help="Tune file (YAML): experiment, train, space, search, stages.")],
    algo: Annotated[str | None, typer.Option(help=f"Search algorithm: {'|'.join(ALGOS)}.", metavar="<name>")] = None,
    max_trials: Annotated[int | None, typer.Option(help="Trials in all, resumed ones counted.")] = None,
    parallel: Annotated[int | None, typer.Option(help="Trials at once.")] = None,
    pruning: Annotated[str | None, typer.Option(help=f"Pruner: {'|'.join(PRUNERS)}.", metavar="<name>")] = None,
    timeout: Annotated[float | None, typer.Option(help="Start no trial after this many seconds.")] = None,
    no_progress: Annotated[int | None, typer.Option(
        "--patience", help="Stop after N trials in a row without a new best.")] = None,
    no_progress_alias: Annotated[int | None, typer.Option("--no-progress", hidden=True)] = None,   # its old name
    target: Annotated[float | None, typer.Option(help="Stop once the objective reaches this value.")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of the search algorithm.")] = None,
    project: Annotated[str | None, typer.Option(help="Run each trial as this MLflow Project (URI).")] = None,
    entry_point: Annotated[str | None, typer.Option(help="Entry point of --project.")] = None,
    env_manager: Annotated[str | None, typer.Option(
        help=f"Environment of --project's runs: {'|'.join(ENV_MANAGERS)}.", metavar="<name>")] = None,
    resume: Annotated[str | None, typer.Option(help="Continue the search with this parent run id.")] = None,
    backend: Annotated[str | None, typer.Option(help="Where trials run: process|spark|thread.",
                                                metavar="<name>")] = None,
    spark_master: Annotated[str | None, typer.Option(help="Spark master URL (default local[--parallel]).")] = None,
    tracking_uri: TrackingUri = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress display on stderr.")] = False,
    no_report: Annotated[bool, typer.Option("--no-report", help="Skip report.html at the end.")] = False,
) -> None:
    """Run a hyperparameter search: one MLflow parent run, one child run per trial.

    Options override the tune file's `search:` section; left out, the file's values hold."""
    from mlflow_tune.config.tunefile import load_tune_file

    tune = load_tune_file(config).with_overrides(
        algo=algo, max_trials=max_trials, parallel=parallel, pruning=pruning, timeout=timeout,
        no_progress=no_progress if no_progress is not None else no_progress_alias, target=target, seed=seed,
        project=project, entry_point=entry_point,
        env_manager=env_manager, executor=backend, spark_master=spark_master)
    from mlflow_tune.cli.progress import default_listener
    from mlflow_tune.study.study import StoreLost
    from mlflow_tune.study.study import search as run_search

    # A resumed search keeps its own settings (its params); where its trials ran is this invocation's.
    how = {"--parallel": parallel, "--backend": backend, "--spark-master": spark_master}
    again = (f"mlflow-tune search --config {shlex.quote(str(config))}"
             + "".join(f" {k} {shlex.quote(str(v))}" for k, v in how.items() if v is not None) + " --resume ")
    with json_stdout(json_output) as out:
        try:
            outcome = run_search(tune, tracking_uri=tracking_uri, resume=resume,
                                 listener=default_listener(not quiet))
        except StoreLost as exc:
            resume_line = f"; resume with: {again}{exc.parent_run_id}" if exc.parent_run_id else ""
            raise fail(str(exc), code=1, then=resume_line) from None
        # A signal after the last trial (while the summary was written) finds the search complete
        # and FINISHED: what it still stops is the report, which `mlflow-tune report` can write later.
        late = interrupts.requested() and not outcome.interrupted
        skip = no_report or late or outcome.interrupted or not outcome.trials
        page = None if skip else search_report(outcome, say=not quiet)
        if json_output:
            out.write(json.dumps({**outcome.to_dict(), "report": str(page) if page else None}, default=str) + "\n")
        else:
            print_search(outcome, page)
    if late:
        typer.echo(f"{interrupts.signal_name()} after the last trial: the search is complete (run "
                   f"{outcome.parent_run_id} FINISHED); report skipped, write it with: mlflow-tune report "
                   f"{outcome.parent_run_id}", err=True)
    if outcome.interrupted:
        saved = sum(outcome.counts.get(k, 0) for k in ("completed", "pruned", "nonconvergent", "failed"))
        typer.echo(interrupted_line(f"{saved} trials saved in run {outcome.parent_run_id}",
                                    again + outcome.parent_run_id), err=True)
        raise typer.Exit(130)


def search_report(outcome: Any, say: bool = True) -> Path | None:
    """The search's report.html, written and logged on its run; a failure is told, not fatal: the
    search itself is done and recorded. `say`: tell stderr it is being written (it takes seconds)."""
    from mlflow_tune.cli.report import make_report
    from mlflow_tune.tracking.runs import client_for

    if say:
        typer.echo("writing the report (report.html: figures and every trial)...", err=True)
    try:
        return make_report(client_for(outcome.tracking_uri), outcome.parent_run_id)
    except Exception as exc:
        typer.echo(f"report not written: {type(exc).__name__}: {exc}"[:400], err=True)
        return None


def print_search(outcome: Any, page: Path | None = None, err: bool = False) -> None:
    """The search's summary: on stdout for the CLI, on stderr (`err`) beside a caller's own output."""
    from mlflow_tune.study.note import ordered_counts

    def echo(text: str) -> None:
        typer.echo(text, err=err)

    counts = ", ".join(f"{v} {k}" for k, v in ordered_counts(outcome.counts))
    echo(f"search run {outcome.parent_run_id}: {outcome.counts.get('trials', 0)} trials ({counts}); "
         f"stopped by {outcome.stopped_by}")
    best = outcome.best
    if best is None:
        echo("  no trial produced a result")
    else:
        metrics = ", ".join(f"{k} {v:.4g}" for k, v in outcome.best_metrics.items())
        echo(f"  best trial {best.tid}: run {best.run_id} ({metrics})")
        echo("  params: " + ", ".join(f"{k}={v}" for k, v in best.params.items()))
    if outcome.winner:   # a final retrain: the configuration won on its mean over seeds
        w = outcome.winner
        echo(f"  retrain winner (best mean over {w['seeds']} seeds): objective {w['mean']:.4g} "
             f"+- {w['std']:.2g}; runs {', '.join(w['run_ids'])}")
    if page is not None:
        echo(f"  report: {page} (also in the run's artifacts)")
    echo(ui_hint(outcome.tracking_uri, outcome.experiment_id, outcome.parent_run_id))
