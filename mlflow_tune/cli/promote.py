"""`mlflow-tune promote`: the best healthy trial to the Model Registry under an alias."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated

import typer

from mlflow_tune.cli.common import TrackingUri, user_errors

if TYPE_CHECKING:
    from mlflow_tune.registry.trials import PassedOver


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
    typer.echo(f"chose trial {res.trial} (run {res.run_id}): {scores}"
               + (" (as its run logged them)" if res.compared else ""))
    if res.note:
        typer.echo(f"  note: {res.note}")
    for line in passed_over_lines(res.passed_over):
        typer.echo(line)
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


SHOWN = 8   # trial numbers listed per reason; --json has them all


def passed_over_lines(passed: Sequence[PassedOver]) -> list[str]:
    """One line per reason (a search of 30 trials passes over most of them for being pruned)."""
    by_reason: dict[str, list[PassedOver]] = {}
    for p in passed:
        by_reason.setdefault(p.reason, []).append(p)
    lines = []
    for reason, trials in by_reason.items():
        if len(trials) == 1:
            lines.append(f"  passed over trial {trials[0].trial} (run {trials[0].run_id}): {reason}")
            continue
        numbers = ", ".join(str(p.trial) for p in sorted(trials, key=lambda p: p.trial)[:SHOWN])
        more = f" and {len(trials) - SHOWN} more" if len(trials) > SHOWN else ""
        lines.append(f"  passed over {len(trials)} trials ({reason}): {numbers}{more}")
    return lines
