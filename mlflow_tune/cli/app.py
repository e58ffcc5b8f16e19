"""The `mlflow-tune` command line: parse, call the API, print. Heavy imports stay inside commands.

Each command lives in its own module; this one only assembles them, so adding a command touches one line here.
"""

from __future__ import annotations

import os

import typer

from mlflow_tune import interrupts
from mlflow_tune.cli.common import fail
from mlflow_tune.cli.diagnose import diagnose
from mlflow_tune.cli.fix import fix
from mlflow_tune.cli.promote import promote
from mlflow_tune.cli.quick_exit import quick_exit
from mlflow_tune.cli.report import report
from mlflow_tune.cli.search import search
from mlflow_tune.cli.space import space_app
from mlflow_tune.cli.terminal import VersionOption, quiet_mlflow_logs
from mlflow_tune.cli.train import train


def _exit_now(name: str) -> None:
    """A signal where nothing can be saved cleanly (start-up), or a second one: leave at once."""
    signal, _, when = name.partition(" ")
    line = {"again": f"interrupted ({signal}): exiting now; finished trials are saved, --resume completes the search",
            "after saving": f"interrupted ({signal}) while exiting: everything was saved"}.get(
                when, f"interrupted ({signal}): nothing was saved")
    os.write(2, (line + "\n").encode())


__all__ = ["app", "fail", "main"]

HELP = {"help_option_names": ["-h", "--help"]}
app = typer.Typer(no_args_is_help=True, add_completion=True, pretty_exceptions_enable=False, context_settings=HELP,
                  help="Tune PyTorch models with MLflow: train, search, diagnose, promote, report.")


@app.callback()
def _root(version: VersionOption = False) -> None:
    """Tune PyTorch models with MLflow: train, search, diagnose, promote, report."""
    quiet_mlflow_logs()


for command in (train, search, diagnose, report, promote, fix):
    app.command(context_settings=HELP)(command)
app.add_typer(space_app, name="space")


def main() -> None:
    # First: a signal during start-up is one line and exit 130; once runs exist, a flag (interrupts.py).
    interrupts.install(_exit_now)
    try:
        app()
    except KeyboardInterrupt:   # a library's own, or the Python API's second Ctrl-C
        typer.echo("interrupted", err=True)
        quick_exit(interrupts.EXIT_CODE)
    except SystemExit as exc:
        quick_exit(exc.code)
    quick_exit(0)


if __name__ == "__main__":
    main()
