"""How the driver ends the runs of trials it stops: what the runs table then says about them."""

from __future__ import annotations

from mlflow import MlflowClient

from mlflow_tune.study.driver import _mark_interrupted
from mlflow_tune.tracking.runs import TAG, RunLogger, ensure_experiment
from mlflow_tune.trials.records import TrialSpec


def test_a_run_stopped_before_it_logged_anything_gets_its_name_and_params(tracking_uri: str) -> None:
    """Issue 30: the interrupted trial was `trial-6` with 0 params (a run made ahead for it)."""
    client = MlflowClient(tracking_uri)
    experiment = ensure_experiment(client, "marks")
    parent = RunLogger.start(client, experiment, name="search", tags={TAG + "role": "search"})
    ahead = RunLogger.start(client, experiment, name="trial-6", tags={TAG + "trial": "6"})
    spec = TrialSpec(6, ahead.run_id, tracking_uri, {"lr": 0.01, "hidden_units": 64},
                     {"lr": 0.01, "hidden_units": 64})
    _mark_interrupted(parent, ahead.run_id, spec)
    run = client.get_run(ahead.run_id)
    assert (run.info.status, run.data.tags[TAG + "outcome"]) == ("KILLED", "interrupted")
    assert run.data.params == {"lr": "0.01", "hidden_units": "64"}
    assert run.info.run_name == spec.run_name and run.info.run_name.startswith("trial-06 lr=")

    # a run that logged its own params keeps them as they are, and one already ended is left alone
    logged = RunLogger.start(client, experiment, name=spec.run_name, tags={TAG + "trial": "7"})
    logged.log_params({"lr": "1.00e-02"})
    _mark_interrupted(parent, logged.run_id, spec)
    assert client.get_run(logged.run_id).data.params == {"lr": "1.00e-02"}
    _mark_interrupted(parent, ahead.run_id, spec)
    assert client.get_run(ahead.run_id).info.status == "KILLED"
