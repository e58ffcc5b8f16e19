"""The experiment of `mlflow run PROJECT` when none is named: the one the project itself declares.

MLflow creates a project's run before the project's code starts, in `--experiment-name`,
`MLFLOW_EXPERIMENT_NAME`/`_ID`, or else Default; an entry point cannot move it. MLflow asks its
default experiment providers only in that last case. This one answers only inside the `mlflow run`
command, and only for a local project whose MLproject opts in with a section of its own:

    mlflow_tune:
      experiment: digits-cnn

(MLflow reads the keys it knows from MLproject and ignores this one.) Every other project, and
every run started anywhere else, is left as MLflow would leave it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlflow.tracking.default_experiment.abstract_context import DefaultExperimentProvider


def declared_experiment() -> str | None:
    """The experiment the project being run by `mlflow run` declares, or None."""
    import click
    import yaml

    ctx = click.get_current_context(silent=True)
    if ctx is None or ctx.info_name != "run" or not str(ctx.command.callback.__module__).startswith("mlflow"):
        return None
    uri = str(ctx.params.get("uri") or "")
    spec = Path(uri) / "MLproject"
    if not uri or not spec.is_file():   # a git URI: fetched later; MLflow's own rules apply
        return None
    try:
        data: Any = yaml.safe_load(spec.read_text())
    except (OSError, yaml.YAMLError):
        return None
    section = data.get("mlflow_tune") if isinstance(data, dict) else None
    name = section.get("experiment") if isinstance(section, dict) else None
    return str(name) if name else None


def named_by_user() -> bool:
    """Whether the experiment of this `mlflow run` was named (option or environment variable)."""
    import os

    import click

    if os.environ.get("MLFLOW_EXPERIMENT_NAME") or os.environ.get("MLFLOW_EXPERIMENT_ID"):
        return True
    ctx = click.get_current_context(silent=True)
    return bool(ctx is not None and (ctx.params.get("experiment_name") or ctx.params.get("experiment_id")))


class ProjectExperiment(DefaultExperimentProvider):  # type: ignore[misc]
    def in_context(self) -> bool:
        return declared_experiment() is not None

    def get_experiment_id(self) -> str:
        from mlflow_tune.tracking.runs import client_for, ensure_experiment

        name = declared_experiment()
        assert name is not None
        return ensure_experiment(client_for(), name)
