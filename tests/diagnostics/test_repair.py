"""`fix --until-healthy`'s policy: the first advice first, a bigger step where one did not cure, the next
lever against overfitting, and never a configuration already trained."""

from __future__ import annotations

import math

from mlflow_tune.diagnostics.changes import advice_change, first_change
from mlflow_tune.diagnostics.curves import Curves
from mlflow_tune.diagnostics.repair import Round, at_floor, next_change, overfit_levers
from mlflow_tune.diagnostics.verdict import diagnose
from mlflow_tune.training.config import TrainConfig

OVERFIT_ADVICE = ("raise dropout 0.3 -> 0.5", "raise weight decay (L2) 0.0001 -> 0.001",
                  "more training data or data augmentation", "early stopping on validation loss (best validation "
                  "loss at epoch 4)", "smaller model: hidden_units 256 -> 128")


def test_the_first_round_applies_the_first_advice_a_config_value_carries_out() -> None:
    advice = ("more training data or data augmentation", "raise dropout 0 -> 0.3", "add weight decay (L2)")
    start = Round({"dropout": 0.0, "epochs": 20}, "overfit", "high_variance", advice)
    assert next_change([start]) == first_change(advice) == ("raise dropout 0 -> 0.3", {"dropout": 0.3})


def test_a_step_that_did_not_cure_is_taken_again_twice_as_far_and_says_so() -> None:
    start = Round({"epochs": 3, "lr": 0.1}, "underfit", "still_improving", ("train longer: epochs 3 -> 6",))
    once = Round({"epochs": 6, "lr": 0.1}, "underfit", "still_improving", ("train longer: epochs 6 -> 12",),
                 {"epochs": 6})
    text, change = next_change([start, once]) or ("", {})
    assert change == {"epochs": 24}
    assert text == "train longer: epochs 6 -> 24 (a bigger step: 3 -> 6 was not enough)"
    assert advice_change(text) == change   # the text still names the change it makes
    # another label after the step: the step is not enlarged
    other = Round({"epochs": 6, "lr": 0.1}, "overfit", "high_variance", ("train longer: epochs 6 -> 12",),
                  {"epochs": 6})
    assert next_change([start, other]) == ("train longer: epochs 6 -> 12", {"epochs": 12})


def test_a_bigger_learning_rate_step_stops_at_the_optimizers_usual_value() -> None:
    advice = ("raise the learning rate 0.0001 -> 0.001 (x10): the loss barely moves",)
    adam = [Round({"lr": 1e-5, "optimizer": "adam"}, "nonconvergent", "stalled", advice),
            Round({"lr": 1e-4, "optimizer": "adam"}, "nonconvergent", "stalled", advice, {"lr": 1e-4})]
    assert next_change(adam) == (advice[0], {"lr": 0.001})    # 0.01 would be 10x Adam's usual step
    sgd = [Round({"lr": 1e-5, "optimizer": "sgd"}, "nonconvergent", "stalled", advice),
           Round({"lr": 1e-4, "optimizer": "sgd"}, "nonconvergent", "stalled", advice, {"lr": 1e-4})]
    text, change = next_change(sgd) or ("", {})
    assert change == {"lr": 0.01} and math.isclose(advice_change(text)["lr"], 0.01)   # type: ignore[index]


def test_overfitting_that_one_step_did_not_cure_gets_the_next_lever_in_order() -> None:
    params = {"dropout": 0.3, "weight_decay": 1e-4, "hidden_units": 256, "layers": 2, "subsample": 0.25}
    start = Round({**params, "dropout": 0.0}, "overfit", "high_variance", ())
    stuck = Round(params, "overfit", "high_variance", OVERFIT_ADVICE, {"dropout": 0.3})
    assert next_change([start, stuck]) == (
        "early stopping on validation loss: stop 3 epochs after the best", {"early_stopping_patience": 3})
    stopped = {**params, "early_stopping_patience": 3}
    levers = [change for _, change in overfit_levers(stopped)]
    assert levers == [{"weight_decay": 1e-3}, {"dropout": 0.5}, {"layers": 1}, {"hidden_units": 128},
                      {"subsample": 0.5}]
    for change in levers:   # every lever is a valid config
        TrainConfig(**change)  # type: ignore[arg-type]
    # only levers not in effect: at L2 1.0, dropout 0.5, one layer of 16 units on all the data, none but stopping
    done = {"weight_decay": 1.0, "dropout": 0.5, "hidden_units": 16, "layers": 1, "subsample": 1.0}
    assert [c for _, c in overfit_levers(done)] == [{"early_stopping_patience": 3}]


def test_no_configuration_already_trained_is_proposed_again() -> None:
    # lowering dropout 0.5 -> 0.3 would undo round 1 and train the original again
    start = Round({"dropout": 0.3}, "overfit", "high_variance", ())
    up = Round({"dropout": 0.5}, "underfit", "high_bias", ("lower dropout 0.5 -> 0.3", "more layers: layers 1 -> 2"),
               {"dropout": 0.5})
    assert next_change([start, up]) == ("more layers: layers 1 -> 2", {"layers": 2})
    # nothing new left: None, and only allowed fields are set
    assert next_change([start, Round({"dropout": 0.5}, "underfit", "high_bias", ("lower dropout 0.5 -> 0.3",),
                                     {"dropout": 0.5})]) is None
    assert next_change([Round({}, "underfit", "high_bias", ("more layers: layers 1 -> 2",))], allowed=("lr",)) is None


def test_a_run_ended_by_early_stopping_is_not_told_to_train_longer() -> None:
    # 40 % label noise, early stopping (patience 3) at epoch 9 of 50: the train loss still falls (it
    # memorises the noise) but the val loss turned at epoch 5; "epochs 50 -> 100" stops at epoch 9 again
    curves = Curves(train_loss=[1.9, 1.7, 1.6, 1.52, 1.46, 1.41, 1.37, 1.33, 1.30],
                    val_loss=[1.6, 1.2, 0.95, 0.85, 0.78, 0.74, 0.75, 0.77, 0.79],
                    train_accuracy=[0.4, 0.5, 0.55, 0.57, 0.58, 0.59, 0.6, 0.6, 0.61],
                    val_accuracy=[0.6, 0.75, 0.82, 0.85, 0.87, 0.88, 0.88, 0.87, 0.87])
    params = {"epochs": "50", "early_stopping_patience": "3"}
    d = diagnose(curves, n_classes=10, planned_epochs=50, params=params)
    assert (d.label, d.detail) == ("underfit", "high_bias"), d
    assert not any(a.startswith("train longer: epochs 50 -> 100") for a in d.advice[:1])
    # the same curves without early stopping (a run cut at 9 of 50 epochs) are still improving
    cut = diagnose(curves, n_classes=10, planned_epochs=50, params={"epochs": "50"})
    assert cut.detail == "still_improving", cut



def test_more_capacity_that_moves_nothing_stops_the_chain_at_the_datas_floor() -> None:
    # moons with noise 0.25: 64 -> 128 units, val accuracy 0.917 -> 0.921 on 240 rows (noise 0.05)
    start = Round({"hidden_units": 64}, "underfit", "high_bias", (), score=0.917)
    bigger = Round({"hidden_units": 128}, "underfit", "high_bias", (), {"hidden_units": 128}, score=0.921)
    why = at_floor([start, bigger], n_val=240)
    assert why.startswith("at the data's floor: more capacity (hidden_units 64 -> 128) moved val accuracy "
                          "0.917 -> 0.921"), why
    # a real gain, a change that was not capacity, or a run no longer high-bias: go on
    gained = Round({"hidden_units": 128}, "underfit", "high_bias", (), {"hidden_units": 128}, score=0.99)
    assert at_floor([start, gained], n_val=240) == ""
    longer = Round({"hidden_units": 64, "epochs": 40}, "underfit", "high_bias", (), {"epochs": 40}, score=0.92)
    assert at_floor([start, longer], n_val=240) == ""
    improving = Round({"hidden_units": 128}, "underfit", "still_improving", (), {"hidden_units": 128}, score=0.92)
    assert at_floor([start, improving], n_val=240) == ""
