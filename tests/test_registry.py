"""Promotion into the Model Registry, on a real SQLite store with two real (tiny) searches."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from mlflow_tune.config.tunefile import parse_tune_config
from mlflow_tune.registry import PassedOver, _Trial, check_alias, choose, decide, predict, promote
from mlflow_tune.registry.promotion import logged_test_metrics
from mlflow_tune.study.study import SearchOutcome, search
from mlflow_tune.training.config import ConfigError

ANY_LABEL = ("underfit", "overfit", "nonconvergent", "undiagnosed")   # the poor trial's label varies
TRAIN = {"dataset": "digits", "model": "mlp", "num_threads": 1, "hidden_units": 32}


@dataclass(frozen=True)
class Store:
    uri: str
    good: SearchOutcome     # lr 0.01 healthy, lr 0.003 underfit, lr 50 nonconvergent
    poor: SearchOutcome     # one underfit trial, no logged model (rebuilt from its checkpoint)


def _search(uri: str, epochs: int, lrs: list[float], top_k: int) -> SearchOutcome:
    tune = parse_tune_config({
        "experiment": "promote", "train": {**TRAIN, "epochs": epochs}, "space": {"lr": {"choice": lrs}},
        "search": {"algo": "grid", "max_trials": len(lrs), "pruning": "none", "top_k_models": top_k}})
    return search(tune, tracking_uri=uri)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, empty_store: Path) -> Iterator[Store]:
    import mlflow

    root = tmp_path_factory.mktemp("registry")
    shutil.copy(empty_store, root / "mlflow.db")
    uri = f"sqlite:///{root}/mlflow.db"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        mp.chdir(root)
        mlflow.set_tracking_uri(uri)
        yield Store(uri, _search(uri, 4, [0.01, 0.003, 50.0], 1), _search(uri, 3, [1e-4], 0))


def _test_rows(params: dict[str, str]) -> tuple[np.ndarray, np.ndarray]:
    from mlflow_tune.training.config import from_mapping
    from mlflow_tune.training.data import split

    test = split(from_mapping(params)).test
    return test.x, test.y


def test_champion_challenger_lifecycle(store: Store) -> None:
    import mlflow
    from mlflow import MlflowClient

    client = MlflowClient(store.uri)
    first = promote(store.good.parent_run_id, "digits", tracking_uri=store.uri)
    assert first.run_id == store.good.trials[0].run_id and first.created and first.alias_moved
    reasons = {p.trial: p.reason for p in first.passed_over}
    assert set(reasons) == {1, 2} and reasons[2] == "nonconvergent"
    assert "moved" in first.message

    # The champion loads by alias and scores the recorded accuracy on the held-out rows.
    run = client.get_run(first.run_id)
    x, y = _test_rows(run.data.params)
    champion = mlflow.pyfunc.load_model("models:/digits@champion")
    accuracy = float(np.mean(np.asarray(champion.predict(x)).argmax(axis=1) == y))
    assert accuracy == pytest.approx(first.metrics["test_accuracy"])
    assert run.data.metrics["promotion_test_accuracy"] == pytest.approx(accuracy)
    assert accuracy == pytest.approx(run.data.metrics["test_accuracy"])   # the trial's own evaluation
    # promote reports exactly the test metrics the run logged; its recomputation (for the alias
    # decision) agrees with them, so no note
    assert first.metrics == {k: v for k, v in run.data.metrics.items() if k.startswith("test_")}
    assert {"test_loss", "test_accuracy"} <= set(first.metrics) and first.note == ""
    assert first.compared["test_loss"] == pytest.approx(run.data.metrics["test_loss"], rel=1e-4)

    version = client.get_model_version("digits", first.version or "")
    assert version.tags["mlflow_tune.trial_run_id"] == first.run_id
    assert version.tags["mlflow_tune.search_run_id"] == store.good.parent_run_id
    assert version.tags["mlflow_tune.diagnosis"] == "healthy"
    assert json.loads(version.tags["mlflow_tune.params"])["lr"] == "0.01"
    assert "test accuracy" in (version.description or "")
    signature = mlflow.models.get_model_info("models:/digits@champion").signature
    assert signature is not None and signature.inputs is not None and signature.outputs is not None
    assert signature.inputs.inputs[0].shape == (-1, 64) and signature.outputs.inputs[0].shape == (-1, 10)

    # Idempotent: the same trial again is the same version; the alias already points there.
    again = promote(store.good.parent_run_id, "digits", tracking_uri=store.uri)
    assert (again.version, again.created, again.alias_moved) == (first.version, False, False)
    assert len(client.search_model_versions("name = 'digits'")) == 1

    # A worse challenger is registered, but the alias stays on the champion.
    worse = promote(store.poor.parent_run_id, "digits", allow=ANY_LABEL, tracking_uri=store.uri)
    assert worse.created and not worse.alias_moved and worse.version != first.version
    assert worse.incumbent_version == first.version
    assert worse.metrics["test_accuracy"] < worse.incumbent_metrics["test_accuracy"]
    assert "not better" in worse.message
    # the search tuned val_loss (the default): the alias is judged on the test loss, not the accuracy
    assert "test loss" in worse.message and "test accuracy" not in worse.message, worse.message
    assert str(client.get_model_version_by_alias("digits", "champion").version) == first.version
    assert client.get_run(worse.run_id).data.tags["mlflow_tune.model_uri"] == worse.model_uri   # rebuilt

    # --force moves it, still without a third version.
    forced = promote(store.poor.parent_run_id, "digits", allow=ANY_LABEL, force=True,
                     tracking_uri=store.uri)
    assert forced.alias_moved and not forced.created and forced.version == worse.version
    assert str(client.get_model_version_by_alias("digits", "champion").version) == worse.version
    assert len(client.search_model_versions("name = 'digits'")) == 2


def test_no_eligible_trial_says_why(store: Store) -> None:
    with pytest.raises(ConfigError, match=r"no eligible trial.*: trial 0 \w+\.$"):
        promote(store.poor.parent_run_id, "poor", tracking_uri=store.uri)


def test_unknown_or_wrong_run(store: Store) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        promote("0" * 32, "x", tracking_uri=store.uri)
    with pytest.raises(ConfigError, match="is not a search"):
        promote(store.good.trials[0].run_id, "x", tracking_uri=store.uri)


def test_incomparable_inputs_are_reported(store: Store) -> None:
    from mlflow import MlflowClient

    uri = MlflowClient(store.uri).get_run(store.good.trials[0].run_id).data.tags["mlflow_tune.model_uri"]
    with pytest.raises(ValueError, match=r"inputs of shape \(64,\)"):
        predict(uri, np.zeros((3, 13), dtype=np.float32))


@pytest.mark.parametrize("alias", ["latest", "v1", "V12"])
def test_reserved_alias_refused(alias: str) -> None:
    with pytest.raises(ConfigError, match=f"alias '{alias}' is reserved"):
        check_alias(alias)


def test_alias_charset() -> None:
    with pytest.raises(ConfigError, match="not valid"):
        check_alias("my champion")
    check_alias("champion-2_b")


def _t(trial: int, loss: float | None, outcome: str = "completed", diagnosis: str = "healthy") -> _Trial:
    return _Trial(f"run{trial}", trial, loss, outcome, diagnosis, {}, {})


def test_choose_skips_unhealthy_and_allow_admits() -> None:
    trials = [_t(0, 0.5), _t(1, 0.1, diagnosis="overfit"), _t(2, 0.05, outcome="pruned"),
              _t(3, None, outcome="failed"), _t(4, 0.01, diagnosis="nonconvergent"), _t(5, 0.5)]
    best, passed = choose(trials)
    assert best.trial == 0   # ties go to the lower index
    assert [(p.trial, p.reason) for p in passed] == [(1, "overfit"), (2, "pruned"), (3, "failed"),
                                                     (4, "nonconvergent")]
    best, passed = choose(trials, ("overfit",))
    assert best.trial == 1 and {p.trial for p in passed} == {2, 3, 4}
    with pytest.raises(ConfigError, match="trial 0 overfit, trial 1 pruned"):
        choose([_t(0, 0.1, diagnosis="overfit"), _t(1, 0.1, outcome="pruned")])


def test_decide() -> None:
    ours = {"test_accuracy": 0.9}
    assert decide(ours, None, {}, "", False, "1")[0]
    assert not decide(ours, "1", {}, "", False, "1")[0]
    assert decide(ours, "1", {"test_accuracy": 0.8}, "", False, "2")[0]
    assert not decide(ours, "1", {"test_accuracy": 0.9}, "", False, "2")[0]
    # a loss: lower is better
    assert decide({"test_loss": 0.2}, "1", {"test_loss": 0.3}, "", False, "2", key="test_loss", higher=False)[0]
    assert not decide({"test_loss": 0.4}, "1", {"test_loss": 0.3}, "", False, "2", key="test_loss",
                      higher=False)[0]
    moved, why = decide(ours, "1", {}, "version 1 is not comparable", False, "2")
    assert not moved and "--force" in why
    assert decide(ours, "1", {}, "version 1 is not comparable", True, "2")[0]


def test_cli_promote(store: Store) -> None:
    from mlflow_tune.cli.app import app

    runner = CliRunner()
    args = ["promote", store.good.parent_run_id, "--model-name", "cli-digits", "--tracking-uri", store.uri]
    done = runner.invoke(app, args)
    assert done.exit_code == 0, done.output
    assert "chose trial 0" in done.output and "passed over trial 2" in done.output
    logged = MlflowClient(store.uri).get_run(store.good.trials[0].run_id).data.metrics
    assert f"test loss {logged['test_loss']:.4f}" in done.output and "(as its run logged them)" in done.output
    assert "registered as cli-digits version 1" in done.output
    assert 'mlflow.pyfunc.load_model("models:/cli-digits@champion")' in done.output
    done = runner.invoke(app, [*args, "--json"])
    assert done.exit_code == 0, done.output
    payload = json.loads(done.output)
    assert payload["version"] == "1" and payload["created"] is False and payload["passed_over"]
    for bad, expected in ((["--alias", "latest"], "reserved"), (["--allow", "great"], "not valid")):
        done = runner.invoke(app, [*args, *bad])
        assert done.exit_code == 2 and expected in done.output
        assert len(done.output.strip().splitlines()) == 1
    done = runner.invoke(app, ["promote", "f" * 32, "--model-name", "x", "--tracking-uri", store.uri])
    assert done.exit_code == 2 and "does not exist" in done.output


def test_logged_test_metrics_are_reported_and_a_disagreeing_recomputation_is_named() -> None:
    logged = {"test_loss": 0.289, "test_accuracy": 0.93, "test_f1": 0.92, "objective": 0.14, "loss": 0.14}
    same, note = logged_test_metrics(logged, {"test_loss": 0.28900001, "test_accuracy": 0.93})
    assert same == {"test_accuracy": 0.93, "test_f1": 0.92, "test_loss": 0.289} and note == ""
    _, note = logged_test_metrics(logged, {"test_loss": 0.181, "test_accuracy": 0.93})
    assert note == "recomputed through the served model, test_loss 0.1810 differs from the run's 0.2890"
    mine, note = logged_test_metrics({"objective": 0.1}, {"test_loss": 0.2, "test_accuracy": 0.9})
    assert mine == {"test_loss": 0.2, "test_accuracy": 0.9} and "logged no test metrics" in note


def test_mlproject_promote_entry_point() -> None:
    import yaml

    project = yaml.safe_load((Path(__file__).resolve().parents[1] / "MLproject").read_text())
    entry = project["entry_points"]["promote"]
    assert set(entry["parameters"]) == {"parent_run_id", "model_name", "alias"}
    assert entry["parameters"]["alias"]["default"] == "champion"
    assert entry["command"] == ("python -m mlflow_tune.cli promote {parent_run_id} "
                                "--model-name {model_name} --alias {alias}")


def test_passed_over_trials_are_one_line_per_reason() -> None:
    from mlflow_tune.cli.promote import passed_over_lines

    passed = [PassedOver(f"r{t}", t, "pruned") for t in range(12, 0, -1)] + [PassedOver("r20", 20, "overfit")]
    lines = passed_over_lines(passed)
    assert lines == ["  passed over 12 trials (pruned): 1, 2, 3, 4, 5, 6, 7, 8 and 4 more",
                     "  passed over trial 20 (run r20): overfit"]


@pytest.mark.parametrize("name", ["bad/name", "a:b", "  "])
def test_a_bad_model_name_is_refused_before_the_search_is_read(tmp_path: Path, name: str) -> None:
    from mlflow_tune.cli.app import app

    # the parent id does not exist: the name is the first thing judged (MLflow's own rule)
    done = CliRunner().invoke(app, ["promote", "0" * 32, "--model-name", name,
                                    "--tracking-uri", f"sqlite:///{tmp_path / 'none.db'}"])
    assert done.exit_code == 2 and "--model-name" in done.output and "eligible" not in done.output, done.output
    assert not (tmp_path / "none.db").exists()   # no store was opened
