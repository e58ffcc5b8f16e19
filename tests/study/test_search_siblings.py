"""A search's healthy trials judged against their siblings when it ends, on real runs in a real store."""

from __future__ import annotations

from typing import Any

from mlflow import MlflowClient

from mlflow_tune.config.tunefile import parse_tune_config
from mlflow_tune.diagnostics.curves import Diagnosis
from mlflow_tune.diagnostics.runs import RunDiagnosis, with_siblings
from mlflow_tune.study.level import LevelResult
from mlflow_tune.study.listener import SearchListener
from mlflow_tune.study.siblings import judge_siblings
from mlflow_tune.study.summary import counts_of
from mlflow_tune.tracking.runs import TAG, RunLogger, client_for, ensure_experiment
from mlflow_tune.trials.records import TrialOutcome


class Said(SearchListener):
    def __init__(self) -> None:
        self.lines: list[str] = []

    def message(self, text: str) -> None:
        self.lines.append(text)


def _search(client: Any, accuracies: list[float], epochs: list[int] | None = None,
            losses: list[float] | None = None) -> tuple[str, str, list[TrialOutcome]]:
    """A search run and its trials' runs (as our loop logs them); objectives are the accuracies, or the
    losses when given (a val_loss search)."""
    experiment_id = ensure_experiment(client, "siblings")
    parent = RunLogger.start(client, experiment_id, name="search", tags={TAG + "role": "search"})
    out = []
    for tid, acc in enumerate(accuracies):
        run = RunLogger.start(client, experiment_id, name=f"trial-{tid}", parent_run_id=parent.run_id,
                              tags={TAG + "diagnosis": "healthy", TAG + "role": "trial", TAG + "trial": str(tid),
                                    TAG + "outcome": "completed"})
        client.log_metric(run.run_id, "val_rows", 540)
        client.log_metric(run.run_id, "best_val_accuracy", acc)
        params: dict[str, Any] = {"lr": 0.01 if tid == 3 else 0.001, **({"epochs": epochs[tid]} if epochs else {})}
        value = losses[tid] if losses else acc
        out.append(TrialOutcome(tid, run.run_id, "completed", objective=value, loss=value if losses else -value,
                                diagnosis="healthy", epochs=20, params=params))
    return experiment_id, parent.run_id, out


def _tune(**search: Any) -> Any:
    return parse_tune_config({"train": {"dataset": "digits"}, "space": {"lr": {"loguniform": [1e-4, 1e-1]}},
                              "search": {"metric": "val_accuracy", "max_trials": 4, **search}})


def test_a_healthy_trial_far_below_its_siblings_is_relabelled_on_its_run(tracking_uri: str) -> None:
    client = client_for(tracking_uri)
    experiment_id, parent, outcomes = _search(client, [0.95, 0.94, 0.96, 0.71])
    said = Said()
    result = judge_siblings(LevelResult(outcomes, "max_trials"), _tune(), client, said, experiment_id, parent)
    assert [o.diagnosis for o in result.outcomes] == ["healthy", "healthy", "healthy", "underfit"]
    assert counts_of(result.outcomes)["diagnosis_underfit"] == 1
    tags = MlflowClient(tracking_uri).get_run(outcomes[3].run_id).data.tags
    assert tags[TAG + "diagnosis"] == "underfit" and tags[TAG + "diagnosis.detail"] == "below_siblings"
    assert tags[TAG + "diagnosis.reference"] == "siblings"
    assert "val_accuracy 0.71 ends 0.25 below the best of 3 sibling trials (trial 2: 0.96" in \
        tags[TAG + "diagnosis.evidence"]
    assert "learning rate 0.01 -> 0.001" in tags[TAG + "advice"]
    assert said.lines == ["trial 3: healthy curves, but far below the best sibling: underfit/below_siblings"]
    assert result.best() == outcomes[2]   # the best is never relabelled: it is the reference


def test_a_val_loss_search_judges_its_trials_on_their_best_val_accuracy(tracking_uri: str) -> None:
    client = client_for(tracking_uri)
    experiment_id, parent, outcomes = _search(client, [0.95, 0.94, 0.96, 0.71], losses=[0.2, 0.22, 0.18, 0.9])
    result = judge_siblings(LevelResult(outcomes, "max_trials"), _tune(metric="val_loss"), client, Said(),
                            experiment_id, parent)
    assert [o.diagnosis for o in result.outcomes] == ["healthy", "healthy", "healthy", "underfit"]
    evidence = MlflowClient(tracking_uri).get_run(outcomes[3].run_id).data.tags[TAG + "diagnosis.evidence"]
    assert evidence.startswith("best_val_accuracy 0.71 ends 0.25 below")


def test_siblings_at_another_budget_or_inside_the_noise_decide_nothing(tracking_uri: str) -> None:
    client = client_for(tracking_uri)
    # trial 3 trained 5 epochs, its siblings 40: they are not at its budget
    experiment_id, parent, outcomes = _search(client, [0.95, 0.94, 0.96, 0.71], epochs=[40, 40, 40, 5])
    result = judge_siblings(LevelResult(outcomes, "max_trials"), _tune(), client, Said(), experiment_id, parent)
    assert [o.diagnosis for o in result.outcomes] == ["healthy"] * 4
    # 0.03 below the best on 540 rows: inside 4 standard errors of the difference
    experiment_id, parent, close = _search(client, [0.95, 0.94, 0.96, 0.93])
    assert judge_siblings(LevelResult(close, "max_trials"), _tune(), client, Said(), experiment_id,
                          parent).outcomes == close


def test_diagnose_parent_judges_a_searchs_trials_against_each_other_as_the_search_did(tracking_uri: str) -> None:
    client = client_for(tracking_uri)
    _, parent, outcomes = _search(client, [0.95, 0.94, 0.96, 0.71])
    client.log_param(parent, "search.metric", "val_loss")
    client.log_param(parent, "search.mode", "min")
    runs = [client.get_run(o.run_id) for o in outcomes]
    healthy = Diagnosis("healthy", "converged", 0.9, "loss ends at 0.1")
    results = [RunDiagnosis(r.info.run_id, r.info.run_name, healthy, {}) for r in runs]
    judged = with_siblings(client, parent, runs, results)
    assert [(r.diagnosis.label, r.diagnosis.detail) for r in judged] == [("healthy", "converged")] * 3 + [
        ("underfit", "below_siblings")]
    assert client.get_run(outcomes[3].run_id).data.tags[TAG + "diagnosis.reference"] == "siblings"
