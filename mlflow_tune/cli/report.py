"""`mlflow-tune report`: the self-contained HTML report of a search, or its summary as a terminal table."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from mlflow_tune.cli.common import TrackingUri, user_errors


@user_errors
def report(
    parent_run_id: Annotated[str, typer.Argument(help="The search (parent) run.")],
    out: Annotated[Path | None, typer.Option(help="Folder for report.html; default: reports/RUN_ID.",
                                             show_default=False)] = None,
    text: Annotated[bool, typer.Option("--text", help="Print the trials as a table here instead.")] = False,
    tracking_uri: TrackingUri = None,
) -> None:
    """Write report.html (figures embedded, opens from disk and in the MLflow UI) and log it on the search run."""
    from mlflow_tune.tracking.runs import client_for

    client = client_for(tracking_uri)
    if text:
        from mlflow_tune.reports.data import read_search

        print_table(read_search(client, parent_run_id))
        return
    typer.echo(f"report: {make_report(client, parent_run_id, out)}")


def make_report(client: Any, parent_run_id: str, out: Path | None = None) -> Path:
    from mlflow_tune.reports.html import write_report

    return write_report(client, parent_run_id, out or Path("reports") / parent_run_id)


def print_table(data: Any) -> None:
    """The trials, best first: the report's table for the terminal (rich; plain text when piped)."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"{data.name or 'search'} {data.run_id}: {data.trial_count()}", title_justify="left")
    for column in ("trial", "stage", "outcome", data.metric, "diagnosis", *data.names, "advice"):
        table.add_column(column, overflow="fold")
    sign = 1 if data.mode == "min" else -1
    for r in sorted(data.rows, key=lambda r: (r.objective is None, sign * (r.objective or 0.0), r.trial)):
        best = r.run_id == data.best_run_id
        cells = [str(r.trial), str(r.stage + 1), r.outcome, "" if r.objective is None else f"{r.objective:.4g}",
                 r.diagnosis, *(r.params.get(n, "") for n in data.names), r.advice]
        table.add_row(*(escape(c) for c in cells), style="bold" if best else None)
    Console(width=200 if not Console().is_terminal else None).print(table)
