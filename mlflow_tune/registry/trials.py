"""A search's trials as promotion sees them, and which one is eligible."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

from mlflow_tune.tracking.runs import TAG, trial_runs
from mlflow_tune.training.config import ConfigError

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Run

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
class _Trial:
    run_id: str
    trial: int
    loss: float | None
    outcome: str
    diagnosis: str
    params: dict[str, str]
    tags: dict[str, str]
    metrics: dict[str, float] = field(default_factory=dict)   # the run's latest logged values


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
    """The trials a search's winner may come from: a staged search's final retrain winner's runs
    (its `winner_run_ids` tag: the configuration with the best mean over seeds), else the last
    stage's trials (earlier stages saw fewer epochs or less data), else all its trials."""
    from mlflow.exceptions import MlflowException

    try:
        parent = client.get_run(parent_run_id)
    except MlflowException:
        raise ConfigError(f"run {parent_run_id!r} does not exist in {client.tracking_uri}.") from None
    role = parent.data.tags.get(TAG + "role", "")
    if role != "search":
        raise ConfigError(f"run {parent_run_id!r} is not a search (role {role or 'unset'!r}); "
                          "pass the parent run id that `mlflow-tune search` printed.")
    trials = [_record(r) for r in trial_runs(client, str(parent.info.experiment_id), parent_run_id)]
    winners = set(filter(None, parent.data.tags.get(TAG + "winner_run_ids", "").split(",")))
    if winners:
        return [t for t in trials if t.run_id in winners]
    stages = [int(s) for t in trials if (s := t.tags.get(TAG + "stage", "")).isdigit()]
    if stages:
        return [t for t in trials if t.tags.get(TAG + "stage") == str(max(stages))]
    return trials


def _record(run: Run) -> _Trial:
    tags = dict(run.data.tags)
    loss = run.data.metrics.get("loss")
    index = tags.get(TAG + "trial", "")
    return _Trial(run.info.run_id, int(index) if index.isdigit() else -1,
                  loss if loss is not None and math.isfinite(loss) else None,
                  tags.get(TAG + "outcome", "unknown"), tags.get(TAG + "diagnosis", ""),
                  dict(run.data.params), tags, dict(run.data.metrics))


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
