"""`mlflow-tune train`: one PyTorch model, one MLflow run."""

from __future__ import annotations

import dataclasses
import inspect
import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from mlflow_tune.cli.common import (
    TrackingUri,
    interrupted_line,
    json_stdout,
    parse_assignments,
    read_yaml,
    ui_hint,
    user_errors,
)
from mlflow_tune.training.config import FIELD_HELP, FIELD_TYPES, TrainConfig


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
        # show_default, not "[default: ...]" in the help text: rich markup took that for a tag and dropped it
        option = typer.Option(None, *decls, help=FIELD_HELP.get(field.name, ""), show_default=str(field.default),
                              rich_help_panel="Training (TrainConfig)")
        params.append(inspect.Parameter(field.name, inspect.Parameter.KEYWORD_ONLY, default=option,
                                        annotation=Optional[kind]))  # noqa: UP045 (a runtime type)
    fn.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    return fn


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
    from mlflow_tune.interrupts import STOP_REASON

    with json_stdout(json_output) as out:
        outcome = run_train(cfg, tracking_uri=tracking_uri, experiment=experiment, log_model=log_model)
        res = outcome.wait().result
        summary = {"run_id": outcome.run_id, "status": res.status, "best_epoch": res.best_epoch,
                   "best_val_loss": res.best_val_loss, "best_val_accuracy": res.best_val_accuracy,
                   "test_accuracy": res.test_accuracy, "model_uri": outcome.model_uri,
                   "diagnosis": res.diagnosis.label if res.diagnosis else None,
                   "advice": list(res.diagnosis.advice) if res.diagnosis else []}
        if json_output:
            out.write(json.dumps(summary, default=str) + "\n")
    if res.stop_reason == STOP_REASON:
        typer.echo(interrupted_line(f"run {outcome.run_id} saved (KILLED) after {len(res.history)} epochs; "
                                    "train again to finish"), err=True)
        raise typer.Exit(130)
    if json_output:
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
