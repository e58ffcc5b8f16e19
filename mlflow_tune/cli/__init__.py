"""The command line: the Typer app, the progress display and the demo.

Only this package prints; everything below reports through return values and listeners.
"""

from mlflow_tune.cli.app import app, main

__all__ = ["app", "main"]
