"""What every command shares: the tracking URI option and one-line errors for the user's mistakes."""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, TextIO, TypeVar

import typer

from mlflow_tune import interrupts
from mlflow_tune.training.config import ConfigError

F = TypeVar("F", bound=Callable[..., Any])

TrackingUri = Annotated[str | None, typer.Option(
    "--tracking-uri", envvar="MLFLOW_TRACKING_URI",
    help="MLflow tracking URI (default: sqlite:///mlflow.db in the working directory, made absolute).")]


def choices(values: tuple[str, ...]) -> str:
    """The metavar that shows an option's valid values in --help. Not a click.Choice: a bad value is
    checked where the tune file's is, and told in one line (click's error is a multi-line box)."""
    return "[" + "|".join(values) + "]"


MAX_ERROR_CHARS = 400   # one short line, whatever value a message quotes


def fail(message: str, code: int = 2, then: str = "") -> typer.Exit:
    """One line `Error: message` (cut to fit), ending with `then` whole (e.g. the resume command)."""
    line, then = " ".join(str(message).split()), " ".join(then.split())
    room = MAX_ERROR_CHARS - len(then)
    if len(line) > room:
        line = line[:max(room - 3, 40)] + "..."
    line += then
    typer.echo(f"Error: {line}", err=True)
    return typer.Exit(code)


def user_errors(fn: F) -> F:
    """Turn the user's mistakes into a one-line message and exit code 2, never a traceback."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (ConfigError, FileNotFoundError) as exc:   # exit 2, or a store that cannot be used: 1
            raise fail(str(exc), code=getattr(exc, "exit_code", 2)) from None
        except ValueError as exc:
            if "tracking URI" in str(exc):
                raise fail(str(exc)) from None
            raise
    return wrapper  # type: ignore[return-value]


@contextlib.contextmanager
def json_stdout(enabled: bool) -> Iterator[TextIO]:
    """With --json, stdout carries our JSON only: whatever else writes to it while the command runs
    (MLflow's "View run ..." lines against a server, a library's print) goes to stderr, at the file
    descriptor, so subprocesses are covered too. Yields the stream to print the JSON on."""
    if not enabled:
        yield sys.stdout
        return
    original = sys.stdout
    try:
        at_fd_1 = original.fileno() == 1
    except (AttributeError, OSError, ValueError):   # a captured stream (tests, notebooks)
        at_fd_1 = False
    if not at_fd_1:
        with contextlib.redirect_stdout(sys.stderr):
            yield original
        return
    original.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        with os.fdopen(os.dup(saved), "w") as real, contextlib.redirect_stdout(sys.stderr):
            yield real
            real.flush()
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def interrupted_line(what: str, resume: str = "") -> str:
    name = interrupts.signal_name() or "interrupt"
    return f"interrupted ({name}): {what}" + (f"; resume with: {resume}" if resume else "")


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


def ui_hint(tracking_uri: str, experiment_id: str = "", run_id: str = "") -> str:
    """How to open the runs: a server's own pages, or for a local store the `mlflow ui` command and
    the pages it will serve (the experiment's runs table and the run)."""
    from mlflow_tune.tracking.runs import VIEW_KEY, ui_base_url

    lines = []
    base = ui_base_url(tracking_uri)
    if not tracking_uri.startswith(("http://", "https://")):
        lines.append(f"  open it with: mlflow ui --backend-store-uri {tracking_uri}")
    # MLflow 3 opens an experiment on its GenAI pages in a fresh browser; this opens its training runs
    view = "?workflowType=machine_learning"
    if experiment_id:   # with the runs table's view (tracking/runs.py: the objective and diagnosis columns)
        lines.append(f"  runs: {base}/#/experiments/{experiment_id}/runs{view}&viewStateShareKey={VIEW_KEY}")
        if run_id:
            lines.append(f"  this run: {base}/#/experiments/{experiment_id}/runs/{run_id}{view}")
    return "\n".join(lines)
