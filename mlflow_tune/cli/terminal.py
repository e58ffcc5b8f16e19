"""What the command line shows besides its commands' own output: `--version`, and MLflow's log lines kept
out of ours."""

from __future__ import annotations

import logging
import os
from typing import Annotated

import typer


def quiet_mlflow_logs() -> None:
    """MLflow's INFO lines ("Creating initial MLflow database tables...", each child `mlflow run`'s
    progress) are not ours to print: warnings and errors still show. MLflow reads the variable when it
    configures its loggers, in this process and in every child (workers, project runs), which inherit
    it; a user's own MLFLOW_LOGGING_LEVEL wins. So do MLflow's "Downloading artifacts" bars, which
    `report` and `promote` would otherwise draw for each file they read back."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    level = os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    for name in ("mlflow", "alembic"):   # already configured if MLflow was imported first
        logging.getLogger(name).setLevel(level.upper())
    # MLflow logs every failed SQL statement with its traceback before raising it; the exception
    # reaches us and the command names its cause in one line (a full disk was 2,000 lines of these).
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)


def _print_version(value: bool) -> None:
    if value:
        from mlflow_tune import __version__

        typer.echo(f"mlflow-tune {__version__}")
        raise typer.Exit()


VersionOption = Annotated[bool, typer.Option("--version", help="Print the version and exit.", is_eager=True,
                                             callback=_print_version)]
