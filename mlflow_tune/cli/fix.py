"""`mlflow-tune fix`: retrain a run with its first piece of advice applied, as a new linked run."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from mlflow_tune.cli.common import TrackingUri, user_errors


@user_errors
def fix(
    run_id: Annotated[str, typer.Argument(metavar="RUN_ID", help="A run trained by mlflow-tune (train or a trial).")],
    tracking_uri: TrackingUri = None,
    log_model: Annotated[bool, typer.Option(help="Log the new run's MLflow model.")] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print both diagnoses as JSON.")] = False,
) -> None:
    """Diagnose RUN_ID, apply its first advice that a config value carries out, retrain as a new run in the
    same experiment (tags mlflow_tune.fixed_from / mlflow_tune.fixed_by link the two), diagnose both."""
    from mlflow_tune.api import train as run_train
    from mlflow_tune.diagnostics.changes import first_change
    from mlflow_tune.diagnostics.runs import diagnose_run, select_runs
    from mlflow_tune.tracking.runs import TAG, RunLogger, client_for
    from mlflow_tune.training.config import FIELD_NAMES, ConfigError, from_mapping

    client = client_for(tracking_uri)
    old = select_runs(client, [run_id], None, None)[0]
    before = diagnose_run(client, old, write=False)
    d = before.diagnosis
    if d.label in ("healthy", "unknown"):
        typer.echo(f"run {run_id}: {d.label} {d.detail}: nothing to fix ({d.evidence})")
        return
    params = {k: v for k, v in old.data.params.items() if k in FIELD_NAMES}
    if "dataset" not in params:
        raise ConfigError(f"run {run_id!r} was not trained by mlflow-tune (no TrainConfig params); "
                          "fix retrains only runs of `mlflow-tune train` or a search's trials.")
    found = first_change(d.advice)
    if found is None:
        raise ConfigError(f"no advice for run {run_id!r} is a config change: {'; '.join(d.advice) or 'none'}.")
    text, change = found
    cfg = from_mapping({**params, **change})
    experiment = client.get_experiment(old.info.experiment_id).name
    outcome = run_train(cfg, tracking_uri=tracking_uri, experiment=experiment, log_model=log_model,
                        run_name=f"fix-{old.info.run_name or run_id[:8]}")
    RunLogger(client, outcome.run_id).set_tags({TAG + "fixed_from": run_id, TAG + "fix": text[:500]})
    RunLogger(client, run_id).set_tags({TAG + "fixed_by": outcome.run_id})
    after = diagnose_run(client, client.get_run(outcome.run_id), write=True)
    if json_output:
        typer.echo(json.dumps({"fix": text, "change": change, "before": before.to_dict(), "after": after.to_dict()}))
        return
    typer.echo(f"before  {run_id}: {d.label} {d.detail}: {d.evidence}")
    typer.echo(f"fix     {text}  ({', '.join(f'{k}={v}' for k, v in change.items())})")
    a = after.diagnosis
    typer.echo(f"after   {outcome.run_id}: {a.label} {a.detail}: {a.evidence}")
    for step in a.advice[:3]:
        typer.echo(f"        - {step}")
