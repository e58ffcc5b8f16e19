"""`mlflow-tune space init`: a starting tune file from experience."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mlflow_tune.cli.common import user_errors

space_app = typer.Typer(no_args_is_help=True, help="Search spaces: write a starting tune file from experience.")
@space_app.command("init")
@user_errors
def space_init(
    dataset: Annotated[str, typer.Option(help="Data set the space is for.")] = "digits",
    model: Annotated[str, typer.Option(help="mlp | cnn | rnn.")] = "mlp",
    staged: Annotated[bool, typer.Option(help="Add a coarse-to-fine plan of stages.")] = False,
    out: Annotated[Path | None, typer.Option(help="Write to this file instead of stdout.")] = None,
) -> None:
    """Write a starting tune file: log-scale learning rate and L2, linear dropout, defaults from experience."""
    from mlflow_tune.config.tunefile import default_tune_yaml

    text = default_tune_yaml(dataset, model, staged)
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text)
        typer.echo(f"wrote {out}")
