"""The `mlflow-tune` command line: parse, call the API, print. Heavy imports stay inside commands."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Optional, TypeVar

import typer

from mlflow_tune.cli.quick_exit import quick_exit
from mlflow_tune.training.config import FIELD_HELP, FIELD_TYPES, ConfigError, TrainConfig

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Tune PyTorch models with MLflow: train, search, diagnose, promote, report.")

F = TypeVar("F", bound=Callable[..., Any])


@app.callback()
def _root() -> None:
    """Tune PyTorch models with MLflow: train, search, diagnose, promote, report."""

TrackingUri = Annotated[str | None, typer.Option(
    "--tracking-uri", envvar="MLFLOW_TRACKING_URI",
    help="MLflow tracking URI (default: sqlite:///mlflow.db in the working directory, made absolute).")]


MAX_ERROR_CHARS = 400   # one short line, whatever value a message quotes


def fail(message: str, code: int = 2) -> typer.Exit:
    line = " ".join(str(message).split())
    if len(line) > MAX_ERROR_CHARS:
        line = line[:MAX_ERROR_CHARS - 3] + "..."
    typer.echo(f"Error: {line}", err=True)
    return typer.Exit(code)


def user_errors(fn: F) -> F:
    """Turn the user's mistakes into a one-line message and exit code 2, never a traceback."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (ConfigError, FileNotFoundError) as exc:
            raise fail(str(exc)) from None
        except ValueError as exc:
            if "tracking URI" in str(exc):
                raise fail(str(exc)) from None
            raise
    return wrapper  # type: ignore[return-value]


def read_yaml(path: Path) -> dict[str, Any]:
    import yaml

    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist.")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        raise ConfigError(f"config file {str(path)!r} is not valid YAML{line}.") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {str(path)!r} must hold a mapping of TrainConfig fields.")
    return data


def parse_assignments(pairs: list[str]) -> dict[str, str]:
    """`key=value` words (how the MLproject entry point passes every parameter)."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ConfigError(f"argument {pair!r} is not KEY=VALUE; use e.g. lr=0.01 or --lr 0.01.")
        out[key.strip()] = value
    return out


def train_config_from(config_file: Path | None, pairs: list[str], options: dict[str, Any]) -> TrainConfig:
    """A YAML file (plain fields or a tune file's `train:` section), then KEY=VALUE words, then --options."""
    from mlflow_tune.training.config import from_mapping

    values: dict[str, Any] = {}
    if config_file is not None:
        data = read_yaml(config_file)
        values = dict(data.get("train") or {}) if "train" in data or "space" in data else data
    values.update(parse_assignments(pairs))
    values.update({k: v for k, v in options.items() if v is not None})
    return from_mapping(values)


def _train_signature(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Give `train` one --option per TrainConfig field, so the CLI never drifts from the config."""
    params = list(inspect.signature(fn, eval_str=True).parameters.values())[:-1]   # drop **options
    for field in dataclasses.fields(TrainConfig):
        kind, dash = FIELD_TYPES[field.name], field.name.replace("_", "-")
        decls = [f"--{dash}/--no-{dash}"] if kind is bool else \
            [f"--{dash}", *([f"--{field.name}"] if dash != field.name else [])]
        option = typer.Option(None, *decls, help=f"{FIELD_HELP.get(field.name, '')} [default: {field.default}]",
                              rich_help_panel="Training (TrainConfig)")
        params.append(inspect.Parameter(field.name, inspect.Parameter.KEYWORD_ONLY, default=option,
                                        annotation=Optional[kind]))  # noqa: UP045 (a runtime type)
    fn.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    return fn


@app.command(context_settings={"help_option_names": ["-h", "--help"]})
@_train_signature
@user_errors
def train(
    assignments: Annotated[list[str] | None, typer.Argument(
        metavar="[KEY=VALUE]...", help="TrainConfig values as key=value (same names as the options).")] = None,
    config: Annotated[Path | None, typer.Option(help="YAML file of TrainConfig fields (or a tune file).")] = None,
    tracking_uri: TrackingUri = None,
    experiment: Annotated[str, typer.Option(help="MLflow experiment name.")] = "mlflow-tune",
    log_model: Annotated[bool, typer.Option(help="Log the MLflow PyTorch model at the end.")] = True,
    json_output: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    **options: Any,
) -> None:
    """Train one PyTorch model and log params, per-epoch metrics, curves, checkpoint and model to MLflow."""
    cfg = train_config_from(config, assignments or [], options)
    from mlflow_tune.api import train as run_train

    outcome = run_train(cfg, tracking_uri=tracking_uri, experiment=experiment, log_model=log_model)
    res = outcome.wait().result
    summary = {"run_id": outcome.run_id, "status": res.status, "best_epoch": res.best_epoch,
               "best_val_loss": res.best_val_loss, "best_val_accuracy": res.best_val_accuracy,
               "test_accuracy": res.test_accuracy, "model_uri": outcome.model_uri,
               "diagnosis": res.diagnosis.label if res.diagnosis else None,
               "advice": list(res.diagnosis.advice) if res.diagnosis else []}
    if json_output:
        typer.echo(json.dumps(summary, default=str))
        return
    typer.echo(f"run {outcome.run_id}: {res.status} after {len(res.history)} epochs"
               + (f" ({res.stop_reason})" if res.stop_reason else ""))
    if res.best_epoch >= 0:
        typer.echo(f"  best val accuracy {res.best_val_accuracy:.4f}, val loss {res.best_val_loss:.4f}"
                   f" at epoch {res.best_epoch}; test accuracy {res.test_accuracy:.4f}")
    if res.sanity is not None:
        typer.echo(f"  sanity check: {res.sanity.summary()}")
    if res.diagnosis is not None:
        typer.echo(f"  diagnosis: {res.diagnosis.label} ({res.diagnosis.detail}): {res.diagnosis.evidence}")
        for step in res.diagnosis.advice:
            typer.echo(f"    - {step}")
    typer.echo(ui_hint(outcome.tracking_uri))
    if res.status == "nonfinite":
        raise typer.Exit(1)


@app.command(context_settings={"help_option_names": ["-h", "--help"]})
@user_errors
def search(
    config: Annotated[Path, typer.Option(help="Tune file (YAML): experiment, train, space, search, stages.")],
    algo: Annotated[str | None, typer.Option(help="tpe | random | anneal | grid (overrides the file).")] = None,
    max_trials: Annotated[int | None, typer.Option(help="Trials to run (counting resumed ones).")] = None,
    parallel: Annotated[int | None, typer.Option(help="Trials at once, each in a worker process.")] = None,
    pruning: Annotated[str | None, typer.Option(help="none | median | asha.")] = None,
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
    typer.echo(ui_hint(outcome.tracking_uri))


@app.command(context_settings={"help_option_names": ["-h", "--help"]})
@user_errors
def diagnose(
    run_ids: Annotated[list[str] | None, typer.Argument(metavar="[RUN_ID]...", help="Runs to diagnose.")] = None,
    experiment: Annotated[str | None, typer.Option(help="Diagnose every run of this experiment.")] = None,
    parent: Annotated[str | None, typer.Option(help="Diagnose every trial of this search run.")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print a JSON list for machines.")] = False,
    tags: Annotated[bool, typer.Option(help="Write mlflow_tune.diagnosis tags and diagnosis.json.")] = True,
    train_loss: Annotated[str | None, typer.Option(help="Metric key of the training loss.")] = None,
    val_loss: Annotated[str | None, typer.Option(help="Metric key of the validation loss.")] = None,
    train_accuracy: Annotated[str | None, typer.Option(help="Metric key of the training accuracy.")] = None,
    val_accuracy: Annotated[str | None, typer.Option(help="Metric key of the validation accuracy.")] = None,
    tracking_uri: TrackingUri = None,
) -> None:
    """Label runs healthy, underfit, overfit or nonconvergent from their curves, with evidence and advice."""
    from mlflow_tune.diagnostics.runs import diagnose_run, label_counts, select_runs
    from mlflow_tune.tracking.runs import TAG, RunLogger, client_for

    client = client_for(tracking_uri)
    runs = select_runs(client, run_ids or [], experiment, parent)
    explicit = {"train_loss": train_loss, "val_loss": val_loss, "train_accuracy": train_accuracy,
                "val_accuracy": val_accuracy}
    results = [diagnose_run(client, run, explicit, write=tags) for run in runs]
    if parent and tags:
        counts = label_counts(results)
        RunLogger(client, parent).log_metrics({f"n_diagnosis_{k}": float(v) for k, v in counts.items()})
        RunLogger(client, parent).set_tags({TAG + "diagnosis_counts": json.dumps(counts)})
    if json_output:
        typer.echo(json.dumps([r.to_dict() for r in results]))
        return
    for r in results:
        d = r.diagnosis
        typer.echo(f"{r.run_id[:12]}  {r.run_name[:18]:18}  {d.label:13} {d.detail:16} {d.evidence}")
        for step in d.advice:
            typer.echo(f"{'':48}- {step}")


@app.command(context_settings={"help_option_names": ["-h", "--help"]})
@user_errors
def report(
    parent_run_id: Annotated[str, typer.Argument(help="The search (parent) run.")],
    out: Annotated[Path | None, typer.Option(help="Folder for the page [default: reports/RUN_ID].")] = None,
    tracking_uri: TrackingUri = None,
) -> None:
    """Write the HTML search report and its plots (also logged to the search run under report/)."""
    from mlflow_tune.reports.html import write_report
    from mlflow_tune.tracking.runs import client_for

    page = write_report(client_for(tracking_uri), parent_run_id, out or Path("reports") / parent_run_id)
    typer.echo(f"wrote {page}")


space_app = typer.Typer(no_args_is_help=True, help="Search spaces: write a starting tune file from experience.")
app.add_typer(space_app, name="space")


@space_app.command("init")
@user_errors
def space_init(
    dataset: Annotated[str, typer.Option(help="Data set the space is for.")] = "digits",
    model: Annotated[str, typer.Option(help="mlp | cnn | rnn.")] = "mlp",
    staged: Annotated[bool, typer.Option(help="Add a coarse-to-fine plan of stages.")] = False,
    out: Annotated[Path | None, typer.Option(help="Write to this file instead of stdout.")] = None,
) -> None:
    """Write a starting tune file: log-scale learning rate and L2, linear dropout, defaults from experience."""
    from mlflow_tune.tuning.tunefile import default_tune_yaml

    text = default_tune_yaml(dataset, model, staged)
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text)
        typer.echo(f"wrote {out}")


@app.command(context_settings={"help_option_names": ["-h", "--help"]})
@user_errors
def promote(
    parent_run_id: Annotated[str, typer.Argument(
        metavar="PARENT_RUN_ID", help="Run id of the search (its parent run).")],
    model_name: Annotated[str, typer.Option("--model-name", help="Registered model to add a version to.")],
    alias: Annotated[str, typer.Option(help="Alias to point at the new version if better.")] = "champion",
    allow: Annotated[list[str] | None, typer.Option(
        metavar="LABEL",
        help="Also admit trials labelled underfit|overfit|nonconvergent|undiagnosed|pruned (repeatable).",
    )] = None,
    force: Annotated[bool, typer.Option(help="Move the alias even if its holder scores better.")] = False,
    tracking_uri: TrackingUri = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Register the search's best healthy trial and point the alias at it if it beats the current holder."""
    from mlflow_tune.registry import promote as run_promote

    res = run_promote(parent_run_id, model_name, alias=alias, allow=tuple(allow or ()), force=force,
                      tracking_uri=tracking_uri)
    if json_output:
        import json

        typer.echo(json.dumps(res.to_dict(), default=str))
        return
    scores = ", ".join(f"{k.replace('_', ' ')} {v:.4f}" for k, v in res.metrics.items())
    typer.echo(f"chose trial {res.trial} (run {res.run_id}): {scores}")
    for p in res.passed_over:
        typer.echo(f"  passed over trial {p.trial} (run {p.run_id}): {p.reason}")
    state = "registered as" if res.created else "already registered as"
    typer.echo(f"{state} {res.model_name} version {res.version}")
    if res.incumbent_metrics:
        held = ", ".join(f"{k.replace('_', ' ')} {v:.4f}" for k, v in res.incumbent_metrics.items())
        typer.echo(f"  {res.alias!r} held version {res.incumbent_version}: {held}")
    moved = "moved to" if res.alias_moved else "not moved to"
    typer.echo(f"alias {res.alias!r} {moved} version {res.version}: {res.reason}")
    typer.echo(f'  load it with: mlflow.pyfunc.load_model("models:/{res.model_name}@{res.alias}")'
               if res.alias_moved or res.incumbent_version == res.version else
               f'  load it with: mlflow.pyfunc.load_model("models:/{res.model_name}/{res.version}")')


def ui_hint(tracking_uri: str) -> str:
    return f"  open it with: mlflow ui --backend-store-uri {tracking_uri}"


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        quick_exit(130)
    except SystemExit as exc:
        quick_exit(exc.code)
    quick_exit(0)


if __name__ == "__main__":
    main()
