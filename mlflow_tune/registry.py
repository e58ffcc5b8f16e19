"""Promotion: the best healthy trial of a search into the MLflow Model Registry, safely.

With the CLI's ``promote`` command this is the only code that talks to the Model Registry.
Flow: find the search's trials (children and, for staged searches, grandchildren) -> choose the
best eligible one by its ``loss`` -> evaluate its model on the held-out test split -> register it
(once per trial) -> move the alias only if it beats the version the alias points to now, on the
same rows. Aliases only: registry stages are deprecated.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any, NamedTuple

from mlflow_tune.tracking.callback import log_pytorch_model
from mlflow_tune.tracking.runs import TAG, RunLogger, client_for, trial_runs
from mlflow_tune.training.config import ConfigError, TrainConfig, from_mapping

if TYPE_CHECKING:
    import numpy as np
    from mlflow import MlflowClient
    from mlflow.entities import Run
    from mlflow.entities.model_registry import ModelVersion

    from mlflow_tune.training.data import Split

LABELS = ("healthy", "underfit", "overfit", "nonconvergent")
ALLOWABLE = ("underfit", "overfit", "nonconvergent", "undiagnosed", "pruned")
_ALIAS = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
_RESERVED = re.compile(r"^(latest|[vV]\d+)$")
TRIAL_RUN_TAG = TAG + "trial_run_id"
SEARCH_RUN_TAG = TAG + "search_run_id"


class PassedOver(NamedTuple):
    run_id: str
    trial: int
    reason: str           # e.g. "overfit", "pruned", "failed", "no objective"


@dataclass(frozen=True)
class PromotionResult:
    model_name: str
    alias: str
    search_run_id: str
    run_id: str                       # the chosen trial's run
    trial: int
    model_uri: str                    # the trial's LoggedModel URI (models:/m-...)
    version: str | None
    created: bool                     # False when the trial was already registered (idempotent)
    alias_moved: bool
    metrics: dict[str, float]         # candidate on its test split
    incumbent_version: str | None = None
    incumbent_metrics: dict[str, float] = field(default_factory=dict)
    passed_over: tuple[PassedOver, ...] = ()
    reason: str = ""                  # why the alias moved or not, one clause
    message: str = ""                 # one line: what was chosen, registered, and the alias decision

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["passed_over"] = [p._asdict() for p in self.passed_over]
        return out


@dataclass(frozen=True)
class _Trial:
    run_id: str
    trial: int
    loss: float | None
    outcome: str
    diagnosis: str
    params: dict[str, str]
    tags: dict[str, str]


def promote(parent_run_id: str, model_name: str, *, alias: str = "champion", allow: Sequence[str] = (),
            force: bool = False, tracking_uri: str | None = None) -> PromotionResult:
    """Register the best eligible trial of search `parent_run_id` as a version of `model_name`.

    Eligible: outcome ``completed`` and diagnosis ``healthy``, or a label in `allow`. `alias` moves
    to the new version only if it beats the current holder on the candidate's test split, or `force`.
    """
    check_alias(alias)
    check_allow(allow)
    if not model_name.strip():
        raise ConfigError("--model-name must be a non-empty registered model name.")
    client = client_for(tracking_uri)
    trials = find_trials(client, parent_run_id)
    chosen, passed = choose(trials, allow)
    data = _test_split(chosen)
    model_uri = chosen.tags.get(TAG + "model_uri") or rebuild_model(client, chosen)
    metrics = evaluate(model_uri, data)
    RunLogger(client, chosen.run_id).log_metrics({f"promotion_{k}": v for k, v in metrics.items()})
    version, created = register(client, model_name, parent_run_id, chosen, model_uri, metrics)
    incumbent, inc_metrics, note = _incumbent(client, model_name, alias, version, data)
    move, why = decide(metrics, incumbent, inc_metrics, note, force, version)
    if move:
        client.set_registered_model_alias(model_name, alias, version)
    message = (f"trial {chosen.trial} (run {chosen.run_id}) -> {model_name} version {version}"
               f"{'' if created else ' (already registered)'}; alias {alias!r} "
               f"{'moved' if move else 'not moved'}: {why}")
    return PromotionResult(model_name, alias, parent_run_id, chosen.run_id, chosen.trial, model_uri, version,
                           created, move, metrics, incumbent, inc_metrics, tuple(passed), why, message)


def check_alias(alias: str) -> None:
    if _RESERVED.match(alias):
        raise ConfigError(f"alias {alias!r} is reserved by the Model Registry (latest, v<number>); "
                          "choose another, e.g. champion.")
    if not _ALIAS.match(alias):
        raise ConfigError(f"alias {alias!r} is not valid; use 1-255 letters, digits, '_' or '-'.")


def check_allow(allow: Iterable[str]) -> None:
    for label in allow:
        if label not in ALLOWABLE:
            raise ConfigError(f"--allow {label!r} is not valid; choose from: {', '.join(ALLOWABLE)}.")


def find_trials(client: MlflowClient, parent_run_id: str) -> list[_Trial]:
    """Trials under a search: its children, and the children of its stage runs."""
    from mlflow.exceptions import MlflowException

    try:
        parent = client.get_run(parent_run_id)
    except MlflowException:
        raise ConfigError(f"run {parent_run_id!r} does not exist in {client.tracking_uri}.") from None
    role = parent.data.tags.get(TAG + "role", "")
    if role != "search":
        raise ConfigError(f"run {parent_run_id!r} is not a search (role {role or 'unset'!r}); "
                          "pass the parent run id that `mlflow-tune search` printed.")
    return [_record(r) for r in trial_runs(client, str(parent.info.experiment_id), parent_run_id)]


def _record(run: Run) -> _Trial:
    tags = dict(run.data.tags)
    loss = run.data.metrics.get("loss")
    index = tags.get(TAG + "trial", "")
    return _Trial(run.info.run_id, int(index) if index.isdigit() else -1,
                  loss if loss is not None and math.isfinite(loss) else None,
                  tags.get(TAG + "outcome", "unknown"), tags.get(TAG + "diagnosis", ""),
                  dict(run.data.params), tags)


def reason_passed_over(trial: _Trial, allow: Iterable[str]) -> str:
    """Why `trial` is not eligible, or '' if it is."""
    allowed = set(allow)
    if trial.outcome == "pruned" or trial.tags.get(TAG + "pruned") == "true":
        return "" if "pruned" in allowed and trial.loss is not None else "pruned"
    if trial.outcome not in ("completed",):
        return "" if trial.outcome in allowed and trial.loss is not None else trial.outcome
    if trial.loss is None:
        return "no objective"
    label = trial.diagnosis if trial.diagnosis in LABELS else "undiagnosed"   # e.g. too few epochs
    return "" if label == "healthy" or label in allowed else label


def choose(trials: Sequence[_Trial], allow: Iterable[str] = ()) -> tuple[_Trial, list[PassedOver]]:
    """The eligible trial with the lowest loss (ties: lowest index) and the ones passed over."""
    allow = tuple(allow)
    passed = [PassedOver(t.run_id, t.trial, why) for t in trials if (why := reason_passed_over(t, allow))]
    skipped = {p.run_id for p in passed}
    eligible = [t for t in trials if t.run_id not in skipped]
    if not eligible:
        if not trials:
            raise ConfigError("the search has no trial runs; nothing to promote.")
        why = ", ".join(f"trial {p.trial} {p.reason}" for p in sorted(passed, key=lambda p: p.trial))
        raise ConfigError(f"no eligible trial (needs outcome completed and diagnosis healthy; "
                          f"--allow {'|'.join(ALLOWABLE)} to admit more): {why}.")
    best = min(eligible, key=lambda t: (t.loss if t.loss is not None else math.inf, t.trial))
    return best, sorted(passed, key=lambda p: p.trial)


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
    description = (f"Trial {trial.trial} of search run {search_run_id} (trial run {trial.run_id}); "
                   f"diagnosis {trial.diagnosis or 'undiagnosed'}; held-out test accuracy "
                   f"{metrics['test_accuracy']:.4f}, test log loss {metrics['test_loss']:.4f}. "
                   "Input: raw float32 feature rows; output: class probabilities.")
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
           note: str, force: bool, version: str) -> tuple[bool, str]:
    """Whether the alias moves to `version`, and why (one clause)."""
    if incumbent is None:
        return True, "no version held it before"
    if incumbent == version:
        return False, f"it already points to version {version}"
    ours = metrics["test_accuracy"]
    if note:
        return force, f"{note}; {'moved by --force' if force else 'use --force to move it anyway'}"
    theirs = inc_metrics["test_accuracy"]
    compare = f"test accuracy {ours:.4f} vs version {incumbent}'s {theirs:.4f} on the same rows"
    if ours > theirs:
        return True, compare
    return force, f"{compare}; {'moved by --force' if force else 'not better (use --force to move it)'}"


__all__ = ["ALLOWABLE", "PassedOver", "PromotionResult", "choose", "promote"]
