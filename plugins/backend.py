"""The MLflow project backend ``tune``: a search over any project's entry point.

    mlflow run PROJECT -e ENTRY --backend tune --backend-config tune.json

The backend config is the tune file's content as JSON (``space``, ``search``, ``train`` as fixed
``-P`` parameters of every trial, ``curves``, ``stages``) or ``{"tune_file": "tune.yaml"}``.
The run the backend starts for `mlflow run` is the search's parent; every trial is a child run,
the same entry point run with the trial's values as ``-P`` parameters. It runs the search to its
end before returning (signals reach it in the main thread), so `mlflow run` returns with the
search's status. Every mistake in the config is one line, before any run exists.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlflow.exceptions import ExecutionException
from mlflow.projects.backend.abstract_backend import AbstractBackend
from mlflow.projects.submitted_run import SubmittedRun
from mlflow.projects.utils import (
    MLFLOW_LOCAL_BACKEND_RUN_ID_CONFIG,
    PROJECT_BUILD_IMAGE,
    PROJECT_DOCKER_ARGS,
    PROJECT_DOCKER_AUTH,
    PROJECT_ENV_MANAGER,
    PROJECT_STORAGE_DIR,
    PROJECT_SYNCHRONOUS,
)

# Keys MLflow itself puts into every backend config (mlflow/projects/__init__.py, projects/utils.py);
# tests/plugins/test_backend.py fails if MLflow adds one this list does not know.
_MLFLOW_KEYS = {PROJECT_ENV_MANAGER, PROJECT_SYNCHRONOUS, PROJECT_DOCKER_ARGS, PROJECT_STORAGE_DIR,
                PROJECT_BUILD_IMAGE, PROJECT_DOCKER_AUTH, MLFLOW_LOCAL_BACKEND_RUN_ID_CONFIG}
_DEFAULT_EXPERIMENT = "0"


class DoneRun(SubmittedRun):  # type: ignore[misc]
    """A search that has already ended: `mlflow run` only reads its status."""

    def __init__(self, run_id: str, ok: bool):
        self._run_id, self.ok = run_id, ok

    @property
    def run_id(self) -> str:
        return self._run_id

    def wait(self) -> bool:
        return self.ok

    def get_status(self) -> str:
        return "FINISHED" if self.ok else "FAILED"

    def cancel(self) -> None:
        return None


def read_config(backend_config: Mapping[str, Any], env_manager: str) -> Any:
    """The tune config from `--backend-config`: its own JSON, or the YAML tune file it points to."""
    from mlflow_tune.config.tunefile import parse_tune_config
    from mlflow_tune.training.config import ConfigError

    data = {k: v for k, v in backend_config.items() if k not in _MLFLOW_KEYS}
    if "tune_file" in data:
        path = Path(str(data.pop("tune_file")))
        if data:
            raise ConfigError(f"--backend-config: give either tune_file or the tune file's content, not both "
                              f"(also got: {', '.join(data)})")
        if not path.is_file():
            raise ConfigError(f"--backend-config: tune_file '{path}' does not exist")
        import yaml

        data = yaml.safe_load(path.read_text()) or {}
    search = dict(data.get("search") or {})
    search.setdefault("env_manager", env_manager or "local")
    return parse_tune_config({**data, "search": search}, source=json.dumps(data, default=str), free=True)


class TuneBackend(AbstractBackend):  # type: ignore[misc]
    def run(self, project_uri: str, entry_point: str, params: Mapping[str, Any], version: str | None,
            backend_config: Mapping[str, Any], tracking_uri: str, experiment_id: str) -> DoneRun:
        import dataclasses

        from mlflow.projects.utils import fetch_and_validate_project, get_or_create_run, load_project
        from mlflow_tune_plugins.experiment import declared_experiment, named_by_user

        from mlflow_tune.cli.progress import default_listener
        from mlflow_tune.cli.search import print_search
        from mlflow_tune.study.study import search
        from mlflow_tune.tracking.runs import TAG, RunLogger, client_for, ensure_experiment
        from mlflow_tune.training.config import ConfigError

        try:
            tune = read_config(backend_config, str(backend_config.get(PROJECT_ENV_MANAGER) or "local"))
            work_dir = fetch_and_validate_project(project_uri, version, entry_point, params)  # type: ignore[no-untyped-call]
            project = load_project(work_dir)  # type: ignore[no-untyped-call]
            project.get_entry_point(entry_point)   # an unknown entry point: MLflow's own one-line error
        except ConfigError as exc:   # `mlflow run` prints an ExecutionException as one line
            raise ExecutionException(f"--backend tune: {exc}") from None
        fixed = {**tune.train, **dict(params)}   # -P values given to `mlflow run` are fixed too
        tune = dataclasses.replace(tune, train=fixed, search=dataclasses.replace(
            tune.search, executor="project", project=str(work_dir), entry_point=entry_point))
        client = client_for(tracking_uri)
        # Unless the user named one, the search goes to its tune config's experiment: not into
        # Default by accident, nor into the project's own default (plugins/experiment.py).
        defaulted = str(experiment_id) == _DEFAULT_EXPERIMENT or declared_experiment() is not None
        if defaulted and not named_by_user():
            experiment_id = ensure_experiment(client, tune.experiment)
        active = get_or_create_run(None, project_uri, experiment_id, work_dir, version, entry_point,  # type: ignore[no-untyped-call]
                                   params)
        parent = RunLogger(client, active.info.run_id, experiment_id=str(experiment_id))
        name = f"search {tune.search.algo} {Path(work_dir).name}:{entry_point} {time.strftime('%m-%d %H:%M')}"
        parent.set_tags({TAG + "role": "search", "mlflow.runName": name})
        # `mlflow run` shows what `mlflow-tune search` shows: progress on stderr, then the summary
        outcome = search(tune, tracking_uri=tracking_uri, parent_run_id=parent.run_id, listener=default_listener())
        page = _report(client, parent.run_id) if outcome.trials and not outcome.interrupted else None
        print_search(outcome, page, err=True)
        return DoneRun(parent.run_id, not outcome.interrupted)


def _report(client: Any, run_id: str) -> Path | None:
    """report.html on the search run, as `mlflow-tune search` leaves it; a failure is logged, not
    fatal: the search itself is done and recorded."""
    from mlflow_tune.reports.html import write_report

    try:
        return write_report(client, run_id, Path("reports") / run_id)
    except Exception as exc:
        logging.getLogger(__name__).warning("report.html not written: %s: %s", type(exc).__name__, exc)
        return None
