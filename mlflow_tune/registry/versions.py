"""Registering a trial's model as a version, once per trial."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING

from mlflow_tune.registry.trials import SEARCH_RUN_TAG, TRIAL_RUN_TAG, _Trial
from mlflow_tune.tracking.runs import TAG
from mlflow_tune.training.config import ConfigError

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion


def register(client: MlflowClient, name: str, search_run_id: str, trial: _Trial, model_uri: str,
             metrics: Mapping[str, float]) -> tuple[str, bool]:
    """The version of `name` holding `trial`'s model: an existing one, else a new one."""
    existing = find_version(client, name, trial.run_id, model_uri)
    if existing is not None:
        return str(existing.version), False
    from mlflow.exceptions import MlflowException

    try:
        client.create_registered_model(name)
    except MlflowException as exc:
        if "ALREADY_EXISTS" not in str(exc.error_code):
            raise ConfigError(f"cannot create registered model {name!r}: {exc.message}") from None
    tags = {SEARCH_RUN_TAG: search_run_id, TRIAL_RUN_TAG: trial.run_id, TAG + "trial": str(trial.trial),
            TAG + "diagnosis": trial.diagnosis or "undiagnosed", TAG + "params": json.dumps(trial.params),
            **{f"{TAG}{k}": f"{v:.6g}" for k, v in metrics.items()}}
    scored = ", ".join(f"{k.replace('_', ' ')} {v:.4f}" for k, v in metrics.items())
    ours = "test_accuracy" in metrics and "objective" not in metrics   # our loop's model, scored by us
    description = (f"Trial {trial.trial} of search run {search_run_id} (trial run {trial.run_id}); "
                   f"diagnosis {trial.diagnosis or 'undiagnosed'}; {scored}."
                   + (" Input: raw float32 feature rows; output: class probabilities." if ours else ""))
    model_id = model_uri.removeprefix("models:/") if model_uri.startswith("models:/m-") else None
    version = client.create_model_version(name, source=model_uri, run_id=trial.run_id, tags=tags,
                                          description=description, model_id=model_id)
    return str(version.version), True


def find_version(client: MlflowClient, name: str, run_id: str, model_uri: str) -> ModelVersion | None:
    from mlflow.exceptions import MlflowException

    try:
        versions = client.search_model_versions(f"name = '{name}'")
    except MlflowException:
        return None
    for v in versions:
        if (v.tags or {}).get(TRIAL_RUN_TAG) == run_id or v.source == model_uri:
            return v
    return None
