"""`mlflow-tune diagnose` on runs it did not create: Keras and Lightning metric names, NaN, no metrics,
explicit keys, --json, tags and diagnosis.json (or --no-tags), --parent, --experiment, bad ids."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric
from typer.testing import CliRunner

from mlflow_tune.cli.app import app

TAG = "mlflow_tune."
runner = CliRunner()

# overfitting: train keeps improving, val loss has its minimum at epoch 4 then climbs
OVERFIT = {"train_loss": [2.2, 1.2, 0.7, 0.4, 0.25, 0.15, 0.09, 0.05, 0.03, 0.02],
           "val_loss": [2.2, 1.3, 0.9, 0.75, 0.72, 0.78, 0.88, 1.0, 1.15, 1.3],
           "train_accuracy": [0.3, 0.6, 0.8, 0.88, 0.93, 0.96, 0.98, 0.99, 1.0, 1.0],
           "val_accuracy": [0.3, 0.55, 0.7, 0.74, 0.75, 0.74, 0.73, 0.72, 0.72, 0.71]}
HEALTHY = {"train_loss": [2.2, 1.0, 0.5, 0.3, 0.2, 0.15, 0.12, 0.1, 0.09, 0.085],
           "val_loss": [2.1, 1.0, 0.55, 0.35, 0.25, 0.2, 0.17, 0.16, 0.155, 0.152],
           "train_accuracy": [0.3, 0.7, 0.86, 0.92, 0.95, 0.96, 0.97, 0.975, 0.978, 0.98],
           "val_accuracy": [0.3, 0.68, 0.84, 0.9, 0.93, 0.945, 0.95, 0.955, 0.957, 0.958]}
KERAS = {"train_loss": "loss", "val_loss": "val_loss", "train_accuracy": "accuracy",
         "val_accuracy": "val_accuracy"}
LIGHTNING = {"train_loss": "train_loss", "val_loss": "val_loss", "train_accuracy": "train_acc",
             "val_accuracy": "val_acc"}


def log_run(client: MlflowClient, experiment_id: str, curves: dict[str, list[float]], names: dict[str, str],
            run_name: str = "", tags: dict[str, str] | None = None) -> str:
    """A run as another tool would log it: one value per step under that tool's metric names."""
    run = client.create_run(experiment_id, run_name=run_name or None, tags=tags or {})
    metrics = [Metric(names[curve], value, 1_700_000_000_000 + step, step)
               for curve, values in curves.items() for step, value in enumerate(values)]
    if metrics:
        client.log_batch(run.info.run_id, metrics=metrics)
    client.set_terminated(run.info.run_id)
    return run.info.run_id


@pytest.fixture
def store(tracking_uri: str) -> tuple[MlflowClient, str]:
    client = MlflowClient(tracking_uri)
    return client, client.create_experiment("foreign")


def diagnose(uri: str, *args: str) -> Any:
    return runner.invoke(app, ["diagnose", *args, "--tracking-uri", uri])


def as_json(result: Any) -> list[dict[str, Any]]:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_keras_and_lightning_names_are_recognised(tracking_uri: str, store: tuple[MlflowClient, str]) -> None:
    client, exp = store
    keras = log_run(client, exp, OVERFIT, KERAS, "keras-fit")
    lightning = log_run(client, exp, HEALTHY, LIGHTNING, "lightning")
    rows = {r["run_id"]: r for r in as_json(diagnose(tracking_uri, keras, lightning, "--json"))}
    assert rows[keras]["label"] == "overfit" and rows[keras]["metric_keys"] == KERAS
    assert rows[lightning]["label"] == "healthy"
    assert rows[lightning]["metric_keys"]["train_accuracy"] == "train_acc"
    assert rows[lightning]["metric_keys"]["val_accuracy"] == "val_acc"
    for row in rows.values():
        assert {"run_id", "label", "detail", "evidence", "advice"} <= set(row)
    assert rows[keras]["detail"] and "epoch" in rows[keras]["evidence"]
    assert any("dropout" in step for step in rows[keras]["advice"])
    assert rows[lightning]["advice"] == []


def test_tags_and_artifact_are_written_unless_no_tags(tracking_uri: str, store: tuple[MlflowClient, str],
                                                      tmp_path: Path) -> None:
    client, exp = store
    written, untouched = log_run(client, exp, OVERFIT, KERAS), log_run(client, exp, OVERFIT, KERAS)
    assert diagnose(tracking_uri, written).exit_code == 0
    tags = client.get_run(written).data.tags
    assert tags[TAG + "diagnosis"] == "overfit" and tags[TAG + "diagnosis.detail"]
    assert "dropout" in tags[TAG + "advice"]
    saved = json.loads(Path(client.download_artifacts(written, "diagnosis.json", str(tmp_path))).read_text())
    assert saved["label"] == "overfit" and saved["metric_keys"]["train_loss"] == "loss"

    result = diagnose(tracking_uri, untouched, "--no-tags")
    assert result.exit_code == 0 and "overfit" in result.stdout          # the readable table
    assert not any(k.startswith(TAG) for k in client.get_run(untouched).data.tags)
    assert client.list_artifacts(untouched) == []


def test_nan_loss_is_nonconvergent(tracking_uri: str, store: tuple[MlflowClient, str]) -> None:
    client, exp = store
    curves = {"train_loss": [2.3, 1.8, 1.5, math.nan, math.nan],
              "val_loss": [2.3, 1.9, 1.6, math.nan, math.nan]}
    run = log_run(client, exp, curves, KERAS)
    [row] = as_json(diagnose(tracking_uri, run, "--json"))
    assert (row["label"], row["detail"]) == ("nonconvergent", "nan")
    assert any("learning rate" in step for step in row["advice"])


def test_a_run_without_metrics_is_unknown_with_the_reason(tracking_uri: str,
                                                          store: tuple[MlflowClient, str]) -> None:
    client, exp = store
    bare = log_run(client, exp, {}, {})
    other = client.create_run(exp).info.run_id
    client.log_metric(other, "rmse", 0.3)                               # metrics, but none we know
    rows = as_json(diagnose(tracking_uri, bare, other, "--json"))
    for row in rows:
        assert row["label"] == "unknown" and row["detail"] == "missing_metrics"
        assert "train_loss" in row["evidence"]                          # says what it looked for
    assert client.get_run(bare).data.tags[TAG + "diagnosis"] == "unknown"


def test_explicit_keys_override_the_guess(tracking_uri: str, store: tuple[MlflowClient, str]) -> None:
    client, exp = store
    names = {"train_loss": "fit/loss", "val_loss": "eval/loss", "train_accuracy": "fit/acc",
             "val_accuracy": "eval/acc"}
    run = log_run(client, exp, OVERFIT, names)
    [guessed] = as_json(diagnose(tracking_uri, run, "--json", "--no-tags"))
    assert guessed["label"] == "unknown"
    [row] = as_json(diagnose(tracking_uri, run, "--json", "--train-loss", "fit/loss",
                             "--val-loss", "eval/loss", "--train-accuracy", "fit/acc",
                             "--val-accuracy", "eval/acc"))
    assert row["label"] == "overfit" and row["metric_keys"]["val_loss"] == "eval/loss"
    # an explicit key wins over a recognised name
    keras = log_run(client, exp, {**OVERFIT, "val_loss": HEALTHY["val_loss"]}, KERAS)
    client.log_batch(keras, metrics=[Metric("holdout_loss", v, 1_700_000_000_000 + i, i)
                                     for i, v in enumerate(OVERFIT["val_loss"])])
    [row] = as_json(diagnose(tracking_uri, keras, "--json", "--val-loss", "holdout_loss"))
    assert row["metric_keys"]["val_loss"] == "holdout_loss"


def test_a_missing_explicit_key_exits_2_listing_the_run_metrics(tracking_uri: str,
                                                                store: tuple[MlflowClient, str]) -> None:
    client, exp = store
    run = log_run(client, exp, HEALTHY, LIGHTNING)
    result = diagnose(tracking_uri, run, "--train-loss", "epoch_loss")
    assert result.exit_code == 2
    message = result.output.strip()
    assert "epoch_loss" in message and "train_acc, train_loss, val_acc, val_loss" in message
    assert "Traceback" not in result.output and len(message.splitlines()) <= 3   # one line (in a box at most)
    assert TAG + "diagnosis" not in client.get_run(run).data.tags


def test_parent_diagnoses_its_trials_through_stages_and_counts_on_the_parent(
        tracking_uri: str, store: tuple[MlflowClient, str]) -> None:
    client, exp = store
    parent = client.create_run(exp, tags={TAG + "role": "search"}).info.run_id
    stage = client.create_run(exp, tags={TAG + "role": "stage", "mlflow.parentRunId": parent}).info.run_id
    under = {"mlflow.parentRunId": stage, TAG + "role": "trial"}
    trials = [log_run(client, exp, OVERFIT, KERAS, tags=under),
              log_run(client, exp, HEALTHY, LIGHTNING, tags=under),
              log_run(client, exp, HEALTHY, KERAS,
                      tags={"mlflow.parentRunId": parent, TAG + "role": "trial"})]
    log_run(client, exp, OVERFIT, KERAS, "unrelated")
    rows = as_json(diagnose(tracking_uri, "--parent", parent, "--json"))
    assert sorted(r["run_id"] for r in rows) == sorted(trials)
    data = client.get_run(parent).data
    assert json.loads(data.tags[TAG + "diagnosis_counts"]) == {"overfit": 1, "healthy": 2}
    assert data.metrics["n_diagnosis_healthy"] == 2 and data.metrics["n_diagnosis_overfit"] == 1
    assert TAG + "diagnosis" not in client.get_run(stage).data.tags      # stages are not trials


def test_experiment_diagnoses_every_plain_run(tracking_uri: str, store: tuple[MlflowClient, str]) -> None:
    client, exp = store
    runs = [log_run(client, exp, OVERFIT, KERAS), log_run(client, exp, HEALTHY, LIGHTNING)]
    client.create_run(exp, tags={TAG + "role": "search"})
    other = client.create_experiment("other")
    log_run(client, other, HEALTHY, KERAS)
    rows = as_json(diagnose(tracking_uri, "--experiment", "foreign", "--json", "--no-tags"))
    assert sorted(r["run_id"] for r in rows) == sorted(runs)
    result = diagnose(tracking_uri, "--experiment", "nope")
    assert result.exit_code == 2 and "'nope' does not exist" in result.output


def test_bad_ids_and_no_selection_exit_2(tracking_uri: str, store: tuple[MlflowClient, str]) -> None:
    for args in (["0123456789abcdef0123456789abcdef"], ["--parent", "feedbeef"], []):
        result = diagnose(tracking_uri, *args)
        assert result.exit_code == 2, (args, result.output)
        assert "Traceback" not in result.output
