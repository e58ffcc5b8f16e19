"""Promotion of a search over a user's own training function.

mlflow-tune does not know that function's data, so nothing is re-evaluated: the candidate is the
best eligible trial that logged a model (`trial.log_model`), its metrics are exactly the ones its
run logged (the objective and any `test_*` the function reported), and the alias moves when its
objective beats the holder's from a search on the same metric.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from mlflow_tune.registry.trials import SEARCH_RUN_TAG, TRIAL_RUN_TAG, PassedOver, _Trial, choose, reason_passed_over
from mlflow_tune.tracking.runs import TAG
from mlflow_tune.training.config import ConfigError

if TYPE_CHECKING:
    from mlflow import MlflowClient


def choose_logged(client: MlflowClient, trials: list[_Trial],
                  allow: Iterable[str]) -> tuple[_Trial, list[PassedOver], dict[str, float]]:
    with_model = [t for t in trials if TAG + "model_uri" in t.tags]
    if not with_model:
        raise ConfigError("no trial of this search logged a model: call trial.log_model(model, input_example=...) "
                          "in the training function (the top-k trials' models are kept).")
    chosen, passed = choose(with_model, allow)
    passed += [PassedOver(t.run_id, t.trial, reason_passed_over(t, allow) or "no logged model")
               for t in trials if t not in with_model]
    logged = client.get_run(chosen.run_id).data.metrics
    metrics = {k: v for k, v in sorted(logged.items()) if k == "objective" or k.startswith("test_")}
    return chosen, sorted(passed, key=lambda p: p.trial), metrics


def incumbent_logged(client: MlflowClient, name: str, alias: str, version: str,
                     search_params: Mapping[str, str]) -> tuple[str | None, dict[str, float], str]:
    """The alias holder, its logged objective and a note ('' if comparable: same metric)."""
    from mlflow.exceptions import MlflowException

    try:
        holder = client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None, {}, ""
    current = str(holder.version)
    if current == version:
        return current, {}, ""
    tags = holder.tags or {}
    run_id, search_id = tags.get(TRIAL_RUN_TAG) or holder.run_id or "", tags.get(SEARCH_RUN_TAG, "")
    objective = client.get_run(run_id).data.metrics.get("objective") if run_id else None
    their_metric = client.get_run(search_id).data.params.get("search.metric") if search_id else None
    if objective is None or their_metric != search_params.get("search.metric"):
        return current, {}, (f"version {current} was not chosen on {search_params.get('search.metric')!r}, "
                             "so the objectives are not comparable")
    return current, {"objective": objective}, ""
