"""`mlflow-tune fix`: retrain a run with its advice applied, as new linked runs, until it is healthy."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Annotated, Any

import typer

from mlflow_tune.cli.common import TrackingUri, user_errors

NOTE = "mlflow.note.content"   # the run's description in MLflow's UI


@user_errors
def fix(
    run_id: Annotated[str, typer.Argument(metavar="RUN_ID", help="A run trained by mlflow-tune (train or a trial).")],
    tracking_uri: TrackingUri = None,
    until_healthy: Annotated[bool, typer.Option(
        "--until-healthy", help="Go on: re-diagnose each new run and apply its advice, a bigger step of a "
        "change that did not cure, until it is healthy or --rounds are spent.")] = False,
    rounds: Annotated[int, typer.Option(min=1, max=20, help="With --until-healthy: at most this many retrains.")] = 3,
    log_model: Annotated[bool, typer.Option(help="Log the new runs' MLflow models.")] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print the diagnoses as JSON.")] = False,
) -> None:
    """Diagnose RUN_ID, apply its first advice that a config value carries out, retrain as a new run in the
    same experiment (tags mlflow_tune.fixed_from / mlflow_tune.fixed_by link the two), diagnose both.
    With --until-healthy every round is such a run, and RUN_ID's tag mlflow_tune.fix_chain and its
    description list the chain."""
    from mlflow_tune.diagnostics.repair import Round, at_floor, next_change
    from mlflow_tune.diagnostics.runs import diagnose_run, select_runs
    from mlflow_tune.tracking.runs import client_for
    from mlflow_tune.training.config import FIELD_NAMES, ConfigError

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
    history = [Round(params, d.label, d.detail, d.advice, score=old.data.metrics.get("best_val_accuracy"))]
    n_val = old.data.metrics.get("val_rows")
    if next_change(history) is None:
        raise ConfigError(f"no advice for run {run_id!r} is a config change: {'; '.join(d.advice) or 'none'}.")
    if not json_output:
        typer.echo(f"before  {run_id}: {d.label} {d.detail}: {d.evidence}")
    chain: list[dict[str, Any]] = []
    floor = ""
    experiment = client.get_experiment(old.info.experiment_id).name
    for number in range(1, (rounds if until_healthy else 1) + 1):
        found = next_change(history)
        if found is None:
            break
        step = _retrain(client, old, history[-1].params, found, experiment, tracking_uri, log_model,
                        chain[-1]["run_id"] if chain else run_id, number if until_healthy else 0)
        a = step["after"].diagnosis
        history.append(Round(step["params"], a.label, a.detail, a.advice, found[1], step["score"]))
        chain.append({"run_id": step["after"].run_id, "fix": found[0], "change": found[1], **a.to_dict()})
        if not json_output:
            lead = f"round {number}" if until_healthy else "fix    "
            typer.echo(f"{lead} {found[0]}  ({', '.join(f'{k}={v}' for k, v in found[1].items())})")
            typer.echo(f"{'after':7s} {step['after'].run_id}: {a.label} {a.detail}: {a.evidence}")
        if a.label == "healthy" or (floor := at_floor(history, int(n_val) if n_val else None)):
            break
    if until_healthy:
        _record_chain(client, run_id, old, chain, floor)
    last = history[-1]
    if json_output:
        if until_healthy:
            typer.echo(json.dumps({"before": before.to_dict(), "rounds": chain, "healthy": last.label == "healthy",
                                   "floor": floor}))
        else:
            typer.echo(json.dumps({"fix": chain[0]["fix"], "change": chain[0]["change"], "before": before.to_dict(),
                                   "after": step["after"].to_dict()}))
        return
    if last.label == "healthy":
        if until_healthy:
            typer.echo(f"healthy after {len(chain)} round{'s' * (len(chain) > 1)}: {_chain_text(run_id, chain)}")
        return
    if floor:
        typer.echo(f"stopped after {len(chain)} round{'s' * (len(chain) > 1)} ({_chain_text(run_id, chain)}): {floor}")
        return
    left = next_change(history)
    why = (f"next: {left[0]}" if left else "no advice left that a config value carries out: "
           + "; ".join(last.advice[:2]))
    if until_healthy:
        typer.echo(f"still {last.label} {last.detail} after {len(chain)} round{'s' * (len(chain) > 1)} "
                   f"({_chain_text(run_id, chain)}); {why}")
    else:
        for advice in last.advice[:3]:
            typer.echo(f"        - {advice}")


def _retrain(client: Any, old: Any, params: Mapping[str, Any], found: tuple[str, dict[str, Any]], experiment: str,
             tracking_uri: str | None, log_model: bool, parent: str, number: int) -> dict[str, Any]:
    from mlflow_tune.api import train as run_train
    from mlflow_tune.diagnostics.runs import diagnose_run
    from mlflow_tune.tracking.runs import TAG, RunLogger
    from mlflow_tune.training.config import from_mapping

    text, change = found
    merged = {**params, **change}
    name = f"fix-{old.info.run_name or old.info.run_id[:8]}" + (f"-{number}" if number else "")
    outcome = run_train(from_mapping(merged), tracking_uri=tracking_uri, experiment=experiment,
                        log_model=log_model, run_name=name)
    tags = {TAG + "fixed_from": parent, TAG + "fix": text[:500]}
    if number:
        tags.update({TAG + "fix_round": str(number), TAG + "fix_origin": old.info.run_id})
    RunLogger(client, outcome.run_id).set_tags(tags)
    RunLogger(client, parent).set_tags({TAG + "fixed_by": outcome.run_id})
    after = diagnose_run(client, client.get_run(outcome.run_id), write=True)
    return {"params": merged, "after": after,
            "score": client.get_run(outcome.run_id).data.metrics.get("best_val_accuracy")}


def _chain_text(run_id: str, chain: list[dict[str, Any]]) -> str:
    return " -> ".join([run_id[:8], *(f"{c['run_id'][:8]} ({c['label']})" for c in chain)])


def _record_chain(client: Any, run_id: str, old: Any, chain: list[dict[str, Any]], floor: str) -> None:
    """On the run being fixed: the chain as a tag and as a paragraph of its description."""
    from mlflow_tune.tracking.runs import TAG, RunLogger

    if not chain:
        return
    lines = [f"{i}. `{c['run_id']}`: {c['fix']} -> **{c['label']}** {c['detail']}" for i, c in enumerate(chain, 1)]
    verdict = "healthy" if chain[-1]["label"] == "healthy" else "at the data's floor" if floor else \
        f"still {chain[-1]['label']}"
    text = f"### Fix chain ({verdict} after {len(chain)} rounds)\n\n" + "\n".join(lines)
    text += f"\n\n{floor}" if floor else ""
    note = old.data.tags.get(NOTE, "")
    RunLogger(client, run_id).set_tags({
        TAG + "fix_chain": " ".join(c["run_id"] for c in chain)[:5000],
        TAG + "fix_result": verdict,
        NOTE: f"{note}\n\n{text}" if note else text,
    })
