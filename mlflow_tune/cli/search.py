"""`mlflow-tune search`: a hyperparameter search as a parent run with one child run per trial."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from mlflow_tune.cli.common import TrackingUri, ui_hint, user_errors


@user_errors
def search(
    config: Annotated[Path, typer.Option(help="Tune file (YAML): experiment, train, space, search, stages.")],
    algo: Annotated[str | None, typer.Option(help="tpe | random | anneal | grid (overrides the file).")] = None,
    max_trials: Annotated[int | None, typer.Option(help="Trials to run (counting resumed ones).")] = None,
    parallel: Annotated[int | None, typer.Option(help="Trials at once, each in a worker process.")] = None,
    pruning: Annotated[str | None, typer.Option(help="none | median | asha | curve.")] = None,
    timeout: Annotated[float | None, typer.Option(help="Stop starting trials after this many seconds.")] = None,
    no_progress: Annotated[int | None, typer.Option(help="Stop after N trials without improvement.")] = None,
    target: Annotated[float | None, typer.Option(help="Stop once the objective reaches this value.")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of the search algorithm.")] = None,
    project: Annotated[str | None, typer.Option(help="Run each trial as this MLflow Project (URI).")] = None,
    entry_point: Annotated[str | None, typer.Option(help="Entry point of --project.")] = None,
    env_manager: Annotated[str | None, typer.Option(help="local | virtualenv | uv | conda, for --project.")] = None,
    resume: Annotated[str | None, typer.Option(help="Continue the search with this parent run id.")] = None,
    tracking_uri: TrackingUri = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress display on stderr.")] = False,
) -> None:
    """Run a hyperparameter search: one MLflow parent run, one child run per trial."""
    from mlflow_tune.tuning.tunefile import load_tune_file

    tune = load_tune_file(config).with_overrides(
        algo=algo, max_trials=max_trials, parallel=parallel, pruning=pruning, timeout=timeout,
        no_progress=no_progress, target=target, seed=seed, project=project, entry_point=entry_point,
        env_manager=env_manager)
    from mlflow_tune.cli.progress import default_listener
    from mlflow_tune.tuning.study import search as run_search

    outcome = run_search(tune, tracking_uri=tracking_uri, resume=resume, listener=default_listener(not quiet))
    if json_output:
        typer.echo(json.dumps(outcome.to_dict(), default=str))
    else:
        print_search(outcome)
    if outcome.interrupted:
        raise typer.Exit(130)


def print_search(outcome: Any) -> None:
    counts = ", ".join(f"{v} {k}" for k, v in outcome.counts.items() if k != "trials")
    typer.echo(f"search run {outcome.parent_run_id}: {outcome.counts.get('trials', 0)} trials ({counts}); "
               f"stopped by {outcome.stopped_by}")
    best = outcome.best
    if best is None:
        typer.echo("  no trial produced a result")
    else:
        metrics = ", ".join(f"{k} {v:.4g}" for k, v in outcome.best_metrics.items())
        typer.echo(f"  best trial {best.tid}: run {best.run_id} ({metrics})")
        typer.echo("  params: " + ", ".join(f"{k}={v}" for k, v in best.params.items()))
    if outcome.winner:   # a final retrain: the configuration won on its mean over seeds
        w = outcome.winner
        typer.echo(f"  retrain winner (best mean over {w['seeds']} seeds): objective {w['mean']:.4g} "
                   f"+- {w['std']:.2g}; runs {', '.join(w['run_ids'])}")
    typer.echo(ui_hint(outcome.tracking_uri))
