"""Promotion end to end: choose, evaluate, register, move the alias."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from mlflow_tune.registry.evaluation import _incumbent, _test_split, decide, evaluate, rebuild_model
from mlflow_tune.registry.logged import choose_logged, incumbent_logged
from mlflow_tune.registry.trials import PassedOver, check_alias, check_allow, choose, find_trials
from mlflow_tune.registry.versions import register
from mlflow_tune.tracking.models import global_store
from mlflow_tune.tracking.runs import TAG, RunLogger, client_for
from mlflow_tune.training.config import ConfigError


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
    metrics: dict[str, float]         # the candidate's test metrics exactly as its run logged them
    incumbent_version: str | None = None
    incumbent_metrics: dict[str, float] = field(default_factory=dict)
    passed_over: tuple[PassedOver, ...] = ()
    reason: str = ""                  # why the alias moved or not, one clause
    message: str = ""                 # one line: what was chosen, registered, and the alias decision
    # the candidate re-scored through its served model on its test rows, the numbers compared with
    # the holder's on the same rows (a run may predate test metrics, or the holder another split)
    compared: dict[str, float] = field(default_factory=dict)
    note: str = ""                    # why `compared` differs from `metrics`, when it does

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["passed_over"] = [p._asdict() for p in self.passed_over]
        return out


def check_model_name(model_name: str) -> None:
    """MLflow's own rule for a registered model's name (no '/', no ':', a unique path), applied first."""
    from mlflow.exceptions import MlflowException
    from mlflow.utils.validation import _validate_model_name  # private; tests/test_registry.py checks it

    if not model_name.strip():
        raise ConfigError("--model-name must be a non-empty registered model name.")
    try:
        _validate_model_name(model_name)
    except MlflowException as exc:
        raise ConfigError(f"--model-name {model_name!r} is not valid: {exc.message}") from None


def promote(parent_run_id: str, model_name: str, *, alias: str = "champion", allow: Sequence[str] = (),
            force: bool = False, tracking_uri: str | None = None) -> PromotionResult:
    """Register the best eligible trial of search `parent_run_id` as a version of `model_name`.

    Eligible: outcome ``completed`` and diagnosis ``healthy``, or a label in `allow`. `alias` moves
    to the new version only if it beats the current holder on the candidate's test split, or `force`.
    """
    check_alias(alias)
    check_allow(allow)
    check_model_name(model_name)   # before the store is opened and the trials are read (seconds)
    client = client_for(tracking_uri)
    # The models are loaded by `models:/` URI, which MLflow resolves through its global store.
    with global_store(str(client.tracking_uri)):
        return _promote(client, parent_run_id, model_name, alias, allow, force)


def _promote(client: Any, parent_run_id: str, model_name: str, alias: str, allow: Sequence[str],
             force: bool) -> PromotionResult:
    trials = find_trials(client, parent_run_id)
    search_params = client.get_run(parent_run_id).data.params
    compared: dict[str, float] = {}
    recompute_note = ""
    if "objective" in search_params:   # a user's function: its own model and metrics, our data unknown
        chosen, passed, metrics = choose_logged(client, trials, allow)
        model_uri = chosen.tags[TAG + "model_uri"]
        version, created = register(client, model_name, parent_run_id, chosen, model_uri, metrics)
        incumbent, inc_metrics, note = incumbent_logged(client, model_name, alias, version, search_params)
        move, why = decide(metrics, incumbent, inc_metrics, note, force, version,
                           key="objective", higher=search_params.get("search.mode") == "max")
    else:
        chosen, passed = choose(trials, allow)
        data = _test_split(chosen)
        model_uri = chosen.tags.get(TAG + "model_uri") or rebuild_model(client, chosen)
        compared = evaluate(model_uri, data)
        RunLogger(client, chosen.run_id).log_metrics({f"promotion_{k}": v for k, v in compared.items()})
        metrics, recompute_note = logged_test_metrics(chosen.metrics, compared)
        version, created = register(client, model_name, parent_run_id, chosen, model_uri, metrics)
        incumbent, inc_metrics, note = _incumbent(client, model_name, alias, version, data)
        # judged on the test counterpart of what the search tuned: a loss for a loss, else accuracy
        by_loss = search_params.get("search.mode", "min") == "min"
        move, why = decide(compared, incumbent, inc_metrics, note, force, version,
                           key="test_loss" if by_loss else "test_accuracy", higher=not by_loss)
    if move:
        client.set_registered_model_alias(model_name, alias, version)
    message = (f"trial {chosen.trial} (run {chosen.run_id}) -> {model_name} version {version}"
               f"{'' if created else ' (already registered)'}; alias {alias!r} "
               f"{'moved' if move else 'not moved'}: {why}")
    return PromotionResult(model_name, alias, parent_run_id, chosen.run_id, chosen.trial, model_uri, version,
                           created, move, metrics, incumbent, inc_metrics, tuple(passed), why, message,
                           compared, recompute_note)


# the served model's float32 probabilities against the loop's logits: equal to ~1e-6, not bit for bit
AGREE = 1e-4


def logged_test_metrics(logged: dict[str, float], recomputed: dict[str, float]) -> tuple[dict[str, float], str]:
    """What promote reports for our loop's trial: its run's own test metrics, every one of them
    (test_loss, test_accuracy, test_f1, ...), so the numbers equal the run page's.  A run without them
    (test_fraction=0 cannot reach here; an older run might) reports the recomputed ones and says so;
    a recomputation that disagrees is named, since the alias decision rests on it."""
    own = {k: v for k, v in sorted(logged.items()) if k.startswith("test_")}
    if not own:
        return dict(recomputed), "the run logged no test metrics: recomputed on its test rows"
    off = [k for k, v in recomputed.items() if k in own and abs(own[k] - v) > AGREE * max(1.0, abs(v))]
    note = ("" if not off else "recomputed through the served model, " + ", ".join(
        f"{k} {recomputed[k]:.4f} differs from the run's {own[k]:.4f}" for k in off))
    return own, note
