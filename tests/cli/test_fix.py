"""`mlflow-tune fix`: the first advice applied as a new linked run, both diagnoses printed; and the
mapping from advice texts to config changes."""

from __future__ import annotations

import json

import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from mlflow_tune.api import train
from mlflow_tune.cli.app import app
from mlflow_tune.diagnostics.changes import advice_change, first_change
from mlflow_tune.tracking.runs import TAG
from mlflow_tune.training.config import TrainConfig


@pytest.mark.parametrize(("text", "change"), [
    ("raise the learning rate 0.000578 -> 0.00578 (x10): the loss barely moves", {"lr": 0.00578}),
    ("lower the learning rate 0.5 -> 0.05 (x0.1)", {"lr": 0.05}),
    ("lower the learning rate 30 -> 0.1 (the usual for sgd)", {"lr": 0.1}),
    ("lower dropout 0.9 -> 0.7: it can keep the fit at chance", {"dropout": 0.7}),
    ("raise weight decay (L2) 0.0001 -> 0.001", {"weight_decay": 0.001}),
    ("train longer: epochs 4 -> 8", {"epochs": 8}),
    ("more units: hidden_units 16 -> 64", {"hidden_units": 64}),
    ("more layers: layers 1 -> 2", {"layers": 2}),
    ("lower momentum 0.99 -> 0.9", {"momentum": 0.9}),
    ("raise batch size 4 -> 32", {"batch_size": 32}),
    ("clip gradients tighter: grad_clip 50 -> 10", {"grad_clip": 10.0}),
    ("add dropout 0.5", {"dropout": 0.5}),
    ("clip gradients at global norm 5", {"grad_clip": 5.0}),
    ("switch to an adaptive optimizer: adam (lr 0.001) or rmsprop", {"optimizer": "adam", "lr": 0.001}),
    ("early stopping on validation loss (best validation loss at epoch 3)", {"early_stopping_patience": 3}),
    ("as the best sibling (trial 0): optimizer momentum -> rmsprop", {"optimizer": "rmsprop"}),
    ("as the best sibling (trial 0, best_val_accuracy 0.97): learning rate 0.0136 -> 0.0042", {"lr": 0.0042}),
    ("more training data or data augmentation", None),
    ("check input scaling (standardise features) and the labels", None),
])
def test_advice_maps_to_the_config_change_it_names(text: str, change: dict[str, object] | None) -> None:
    assert advice_change(text) == change
    if change:   # every change is a valid TrainConfig
        TrainConfig(**change)  # type: ignore[arg-type]


def test_first_change_skips_advice_no_config_value_carries_out() -> None:
    advice = ("more training data or data augmentation", "raise dropout 0 -> 0.3", "add weight decay (L2)")
    assert first_change(advice) == ("raise dropout 0 -> 0.3", {"dropout": 0.3})
    assert first_change(("check that the model can overfit one small batch",)) is None


def test_fix_retrains_with_the_first_advice_as_a_linked_run(tracking_uri: str) -> None:
    # momentum SGD with a small lr for it: stalled, told to raise the lr x10 (never to lower it)
    cfg = TrainConfig(dataset="iris", model="mlp", optimizer="momentum", lr=0.0005, epochs=5, hidden_units=16,
                      num_threads=1, lr_decay=1.0)
    old = train(cfg, tracking_uri=tracking_uri, experiment="fixme", log_model=False)
    done = CliRunner().invoke(app, ["fix", old.run_id, "--tracking-uri", tracking_uri, "--json"])
    assert done.exit_code == 0, done.output
    out = json.loads(done.output)
    assert out["before"]["label"] == "nonconvergent" and out["before"]["detail"] == "stalled"
    assert out["fix"].startswith("raise the learning rate 0.0005 -> 0.01 (the usual for momentum)")
    assert out["change"] == {"lr": 0.01}
    client = MlflowClient(tracking_uri)
    new = client.get_run(out["after"]["run_id"])
    assert new.data.tags[TAG + "fixed_from"] == old.run_id and new.data.tags[TAG + "fix"] == out["fix"]
    assert client.get_run(old.run_id).data.tags[TAG + "fixed_by"] == new.info.run_id
    assert new.data.params["lr"] == "0.01" and new.data.params["optimizer"] == "momentum"
    assert new.info.experiment_id == client.get_run(old.run_id).info.experiment_id
    assert new.data.tags[TAG + "diagnosis"] == out["after"]["label"]
    text = CliRunner().invoke(app, ["fix", "f" * 32, "--tracking-uri", tracking_uri])
    assert text.exit_code == 2 and "does not exist" in text.output and len(text.output.strip().splitlines()) == 1


def test_fix_until_healthy_goes_on_with_bigger_steps_and_records_the_chain(tracking_uri: str) -> None:
    # plain SGD at lr 0.01 for 3 epochs on digits: stalled at chance; lr -> 0.1 leaves it still improving,
    # epochs 3 -> 6 is not enough, so the next round takes a bigger step (6 -> 24) and it ends healthy
    cfg = TrainConfig(dataset="digits", model="mlp", optimizer="sgd", lr=0.01, momentum=0.0, epochs=3,
                      hidden_units=32, num_threads=1, lr_decay=1.0)
    old = train(cfg, tracking_uri=tracking_uri, experiment="fixme", log_model=False)
    done = CliRunner().invoke(app, ["fix", old.run_id, "--tracking-uri", tracking_uri, "--until-healthy",
                                    "--rounds", "4"])
    assert done.exit_code == 0, done.output
    lines = done.output.strip().splitlines()
    rounds = [line for line in lines if line.startswith("round ")]
    assert lines[0].startswith(f"before  {old.run_id}: nonconvergent stalled")
    assert [r.split()[1] for r in rounds] == ["1", "2", "3"], done.output
    assert "(a bigger step: 3 -> 6 was not enough)" in rounds[2] and "epochs=24" in rounds[2]
    assert lines[-1].startswith("healthy after 3 rounds: ")
    client = MlflowClient(tracking_uri)
    first = client.get_run(old.run_id)
    chain = first.data.tags[TAG + "fix_chain"].split()
    assert len(chain) == 3 and first.data.tags[TAG + "fix_result"] == "healthy"
    assert "Fix chain (healthy after 3 rounds)" in first.data.tags["mlflow.note.content"]
    previous = old.run_id
    for number, run_id in enumerate(chain, 1):   # each round links to the one before it
        run = client.get_run(run_id)
        assert run.data.tags[TAG + "fixed_from"] == previous and run.data.tags[TAG + "fix_round"] == str(number)
        assert run.data.tags[TAG + "fix_origin"] == old.run_id
        assert client.get_run(previous).data.tags[TAG + "fixed_by"] == run_id
        previous = run_id
    last = client.get_run(chain[-1])
    assert last.data.tags[TAG + "diagnosis"] == "healthy" and last.data.params["epochs"] == "24"
    assert last.data.params["lr"] == "0.1" and last.data.params["optimizer"] == "sgd"
