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


# The table's columns, most useful first; a narrow terminal drops the last ones rather than
# squeezing every column to a few characters. The advice is long: it comes last, folded.
KEEP = ("trial", "outcome")
MIN_ADVICE = 24


def table_columns(data: Any, rows: list[Any], width: int) -> list[tuple[str, list[str]]]:
    """(header, cells) of the columns that fit `width` at their natural width, in priority order."""
    from mlflow_tune.trials.naming import FIRST

    staged = any(r.stage for r in rows)
    names = sorted(data.names, key=lambda n: (FIRST.index(n) if n in FIRST else len(FIRST), n))
    candidates = [("trial", [str(r.trial) for r in rows]),
                  ("outcome", [r.outcome for r in rows]),
                  (data.metric, ["" if r.objective is None else f"{r.objective:.4g}" for r in rows]),
                  ("diagnosis", [r.diagnosis for r in rows]),
                  *([("stage", [str(r.stage + 1) for r in rows])] if staged else []),
                  *((n, [r.params.get(n, "") for r in rows]) for n in names)]
    chosen, used = [], 1
    for header, cells in candidates:
        need = max(len(header), *(len(c) for c in cells), 1) + 3   # rich: a border and a space each side
        if used + need > width and header not in KEEP:
            break
        chosen.append((header, cells))
        used += need
    if width - used >= MIN_ADVICE:
        chosen.append(("advice", [r.advice for r in rows]))
    return chosen


def print_table(data: Any) -> None:
    """The trials, best first: the report's table for the terminal (rich; plain text when piped,
    `COLUMNS` wide if set). Columns that do not fit are left out, and the title says which."""
    import os

    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console(width=None if Console().is_terminal or os.environ.get("COLUMNS") else 200)
    sign = 1 if data.mode == "min" else -1
    rows = sorted(data.rows, key=lambda r: (r.objective is None, sign * (r.objective or 0.0), r.trial))
    columns = table_columns(data, rows, console.width)
    left = [n for n in ("diagnosis", *data.names, "advice") if n not in {h for h, _ in columns}]
    title = f"{data.name or 'search'} {data.run_id}: {data.trial_count()}"
    if left:
        title += f" (not shown at this width: {', '.join(left)}; all in report.html)"
    table = Table(title=title, title_justify="left")
    for header, _ in columns:
        table.add_column(header, overflow="fold", no_wrap=header != "advice")
    for i, r in enumerate(rows):
        table.add_row(*(escape(cells[i]) for _, cells in columns),
                      style="bold" if r.run_id == data.best_run_id else None)
    console.print(table)
