"""Scoring a candidate and the alias holder on the same held-out rows, and whether the alias moves."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import TYPE_CHECKING

from mlflow_tune.registry.trials import _Trial
from mlflow_tune.tracking.callback import log_pytorch_model
from mlflow_tune.tracking.runs import TAG, RunLogger
from mlflow_tune.training.config import ConfigError, TrainConfig, from_mapping

if TYPE_CHECKING:
    import numpy as np
    from mlflow import MlflowClient

    from mlflow_tune.training.data import Split


def _config(trial: _Trial) -> TrainConfig:
    names = {f.name for f in fields(TrainConfig)}
    return from_mapping({k: v for k, v in trial.params.items() if k in names})


def _test_split(trial: _Trial) -> Split:
    from mlflow_tune.training.data import split

    data = split(_config(trial))
    if not len(data.test):
        raise ConfigError(f"trial run {trial.run_id} has no test split (test_fraction=0); "
                          "promotion needs held-out rows to evaluate on.")
    return data.test


def rebuild_model(client: MlflowClient, trial: _Trial) -> str:
    """Log the MLflow model of a trial that only kept its checkpoint; returns the model URI."""
    import tempfile

    import torch

    from mlflow_tune.training.data import split
    from mlflow_tune.training.models import build_model

    cfg = _config(trial)
    data = split(cfg)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = client.download_artifacts(trial.run_id, "checkpoints/best_checkpoint.pt", tmp)
        except Exception:
            raise ConfigError(f"trial run {trial.run_id} has neither a logged model nor a "
                              "checkpoint to rebuild one from.") from None
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    model = build_model(cfg, data)
    model.load_state_dict(checkpoint["state_dict"])
    run = RunLogger(client, trial.run_id)
    uri = log_pytorch_model(run, model.eval(), data.val.x[:5])
    run.set_tags({TAG + "model_uri": uri})
    return uri


def predict(model_uri: str, x: np.ndarray) -> np.ndarray:
    """Class probabilities of the MLflow model at `model_uri` for raw rows `x`."""
    import mlflow.pyfunc
    import numpy as np

    model = mlflow.pyfunc.load_model(model_uri)
    schema = model.metadata.get_input_schema()
    inputs = getattr(schema, "inputs", None) if schema is not None else None
    if inputs and getattr(inputs[0], "shape", None) is not None:
        expected = tuple(inputs[0].shape[1:])
        got = tuple(x.shape[1:])
        if len(expected) != len(got) or any(e not in (-1, g) for e, g in zip(expected, got, strict=True)):
            raise ValueError(f"it takes inputs of shape {expected}, the test rows have {tuple(x.shape[1:])}")
    return np.asarray(model.predict(x.astype(np.float32)))


def scores(probabilities: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Accuracy and log loss (mean cross-entropy) of predicted probabilities against labels."""
    import numpy as np

    top = int(y.max())
    if probabilities.ndim != 2 or probabilities.shape[0] != len(y) or probabilities.shape[1] <= top:
        raise ValueError(f"it outputs shape {probabilities.shape} for {len(y)} rows of labels 0..{top}")
    picked = np.clip(probabilities[np.arange(len(y)), y], 1e-12, 1.0)
    return {"test_accuracy": float(np.mean(probabilities.argmax(axis=1) == y)),
            "test_loss": float(-np.mean(np.log(picked)))}


def evaluate(model_uri: str, test: Split) -> dict[str, float]:
    return scores(predict(model_uri, test.x), test.y)


def _incumbent(client: MlflowClient, name: str, alias: str, version: str,
               test: Split) -> tuple[str | None, dict[str, float], str]:
    """The version `alias` points to now, its scores on `test` and a note ('' if comparable)."""
    from mlflow.exceptions import MlflowException

    try:
        current = str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None, {}, ""
    if current == version:
        return current, {}, ""
    try:
        return current, evaluate(f"models:/{name}@{alias}", test), ""
    except Exception as exc:
        return current, {}, f"version {current} is not comparable on these test rows: {exc}"


def decide(metrics: Mapping[str, float], incumbent: str | None, inc_metrics: Mapping[str, float],
           note: str, force: bool, version: str, key: str = "test_accuracy", higher: bool = True) -> tuple[bool, str]:
    """Whether the alias moves to `version`, and why (one clause): `key` compared, `higher` better."""
    if incumbent is None:
        return True, "no version held it before"
    if incumbent == version:
        return False, f"it already points to version {version}"
    if note:
        return force, f"{note}; {'moved by --force' if force else 'use --force to move it anyway'}"
    ours, theirs = metrics[key], inc_metrics[key]
    where = "on the same rows" if key.startswith("test_") else "as the trials logged it"
    compare = f"{key.replace('_', ' ')} {ours:.4f} vs version {incumbent}'s {theirs:.4f} {where}"
    if (ours > theirs) if higher else (ours < theirs):
        return True, compare
    return force, f"{compare}; {'moved by --force' if force else 'not better (use --force to move it)'}"
