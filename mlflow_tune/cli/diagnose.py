"""`mlflow-tune diagnose`: label runs from their curves."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from mlflow_tune.cli.common import TrackingUri, user_errors


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
    from mlflow_tune.diagnostics.runs import diagnose_run, label_counts, select_runs, with_siblings
    from mlflow_tune.tracking.runs import TAG, RunLogger, client_for

    client = client_for(tracking_uri)
    runs = select_runs(client, run_ids or [], experiment, parent)
    explicit = {"train_loss": train_loss, "val_loss": val_loss, "train_accuracy": train_accuracy,
                "val_accuracy": val_accuracy}
    results = [diagnose_run(client, run, explicit, write=tags) for run in runs]
    if parent and not (run_ids or experiment):   # a search's trials: judged against each other too
        results = with_siblings(client, parent, runs, results, write=tags)
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
