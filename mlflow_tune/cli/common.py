"""What every command shares: the tracking URI option and one-line errors for the user's mistakes."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from mlflow_tune.training.config import ConfigError

F = TypeVar("F", bound=Callable[..., Any])

TrackingUri = Annotated[str | None, typer.Option(
    "--tracking-uri", envvar="MLFLOW_TRACKING_URI",
    help="MLflow tracking URI (default: sqlite:///mlflow.db in the working directory, made absolute).")]


MAX_ERROR_CHARS = 400   # one short line, whatever value a message quotes


def fail(message: str, code: int = 2) -> typer.Exit:
    line = " ".join(str(message).split())
    if len(line) > MAX_ERROR_CHARS:
        line = line[:MAX_ERROR_CHARS - 3] + "..."
    typer.echo(f"Error: {line}", err=True)
    return typer.Exit(code)


def user_errors(fn: F) -> F:
    """Turn the user's mistakes into a one-line message and exit code 2, never a traceback."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (ConfigError, FileNotFoundError) as exc:
            raise fail(str(exc)) from None
        except ValueError as exc:
            if "tracking URI" in str(exc):
                raise fail(str(exc)) from None
            raise
    return wrapper  # type: ignore[return-value]


def read_yaml(path: Path) -> dict[str, Any]:
    import yaml

    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist.")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        raise ConfigError(f"config file {str(path)!r} is not valid YAML{line}.") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {str(path)!r} must hold a mapping of TrainConfig fields.")
    return data


def parse_assignments(pairs: list[str]) -> dict[str, str]:
    """`key=value` words (how the MLproject entry point passes every parameter)."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ConfigError(f"argument {pair!r} is not KEY=VALUE; use e.g. lr=0.01 or --lr 0.01.")
        out[key.strip()] = value
    return out


def ui_hint(tracking_uri: str) -> str:
    if tracking_uri.startswith(("http://", "https://")):   # a tracking server serves its own UI
        return f"  open it at: {tracking_uri}"
    return f"  open it with: mlflow ui --backend-store-uri {tracking_uri}"
