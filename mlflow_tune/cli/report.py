"""`mlflow-tune report`: the HTML report of a search."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mlflow_tune.cli.common import TrackingUri, user_errors


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
