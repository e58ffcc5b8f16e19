"""`mlflow-tune train` through Typer's CliRunner, plus start-up cost in a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from mlflow_tune.cli.app import app
from mlflow_tune.training.config import OPTIMIZERS

QUICK = ["--epochs", "2", "--hidden-units", "16", "--num-threads", "1", "--no-log-model"]


def invoke(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, list(args))


def test_train_logs_a_run(tracking_uri: str) -> None:
    result = invoke("train", "--dataset", "digits", "--model", "mlp", *QUICK)
    assert result.exit_code == 0, result.output
    run_id = result.output.split()[1].rstrip(":")
    run = MlflowClient(tracking_uri=tracking_uri).get_run(run_id)
    assert run.data.params["epochs"] == "2"
    assert run.data.tags["mlflow_tune.role"] == "train"
    assert "mlflow ui --backend-store-uri" in result.output


def test_train_key_value_words_and_json(tracking_uri: str) -> None:
    result = invoke("train", "epochs=2.0", "hidden_units=16", "num_threads=1", "sanity_check=true",
                    "--no-log-model", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    run = MlflowClient(tracking_uri=tracking_uri).get_run(summary["run_id"])
    assert run.data.params["sanity_check"] == "true"
    assert run.data.tags["mlflow_tune.sanity"] == "passed"


def test_train_from_yaml_config(tracking_uri: str, tmp_path: Path) -> None:
    config = tmp_path / "train.yaml"
    config.write_text("dataset: iris\nepochs: 3\nhidden_units: 8\nnum_threads: 1\nlr: 0.01\n")
    # a command-line option wins over the file
    result = invoke("train", "--config", str(config), "--epochs", "2", "--no-log-model", "--json")
    assert result.exit_code == 0, result.output
    run_id = json.loads(result.output.strip().splitlines()[-1])["run_id"]
    params = MlflowClient(tracking_uri=tracking_uri).get_run(run_id).data.params
    assert (params["dataset"], params["epochs"], params["lr"]) == ("iris", "2", "0.01")


def test_train_from_tune_file_train_section(tracking_uri: str, tmp_path: Path) -> None:
    config = tmp_path / "tune.yaml"
    config.write_text("experiment: x\ntrain:\n  dataset: wine\n  epochs: 2\n  num_threads: 1\n"
                      "space:\n  lr: {loguniform: [1.0e-4, 1.0]}\n")
    result = invoke("train", "--config", str(config), "--no-log-model", "--json")
    assert result.exit_code == 0, result.output


def _one_line_error(result) -> str:  # type: ignore[no-untyped-def]
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    return lines[0]


def test_bad_optimizer(tracking_uri: str) -> None:
    line = _one_line_error(invoke("train", "--optimizer", "adamax", *QUICK))
    assert "optimizer='adamax'" in line
    assert all(name in line for name in OPTIMIZERS)


def test_bad_optimizer_as_key_value(tracking_uri: str) -> None:
    line = _one_line_error(invoke("train", "optimizer=adamax", *QUICK))
    assert "optimizer='adamax'" in line and "adamw" in line


def test_unknown_key_value(tracking_uri: str) -> None:
    line = _one_line_error(invoke("train", "learning_rate=0.1", *QUICK))
    assert "'learning_rate'" in line and "lr" in line and "hidden_units" in line


def test_not_key_value(tracking_uri: str) -> None:
    line = _one_line_error(invoke("train", "digits", *QUICK))
    assert "'digits'" in line and "KEY=VALUE" in line


def test_missing_data_file(tracking_uri: str, tmp_path: Path) -> None:
    line = _one_line_error(invoke("train", "--dataset", "csv", "--data-path", str(tmp_path / "gone.csv"),
                                  *QUICK))
    assert "gone.csv" in line and "does not exist" in line
    assert MlflowClient(tracking_uri=tracking_uri).get_experiment_by_name("mlflow-tune") is None


def test_malformed_yaml(tracking_uri: str, tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("epochs: [1, 2\nlr: 0.1\n")
    line = _one_line_error(invoke("train", "--config", str(config), *QUICK))
    assert "bad.yaml" in line and "not valid YAML" in line


def test_unknown_yaml_key(tracking_uri: str, tmp_path: Path) -> None:
    config = tmp_path / "typo.yaml"
    config.write_text("epochs: 2\nhiden_units: 8\n")
    line = _one_line_error(invoke("train", "--config", str(config), *QUICK))
    assert "'hiden_units'" in line and "did you mean 'hidden_units'" in line


def test_missing_config_file(tracking_uri: str, tmp_path: Path) -> None:
    line = _one_line_error(invoke("train", "--config", str(tmp_path / "none.yaml"), *QUICK))
    assert "none.yaml" in line


def test_bad_number(tracking_uri: str) -> None:
    line = _one_line_error(invoke("train", "epochs=ten", "--no-log-model"))
    assert "epochs='ten'" in line


def test_bad_tracking_uri(tracking_uri: str) -> None:
    line = _one_line_error(invoke("train", "--tracking-uri", "plain/dir", *QUICK))
    assert "plain/dir" in line


def test_train_help_lists_every_field() -> None:
    from mlflow_tune.training.config import FIELD_NAMES

    result = CliRunner(env={"COLUMNS": "250"}).invoke(app, ["train", "--help"])
    assert result.exit_code == 0
    for name in FIELD_NAMES:
        assert f"--{name.replace('_', '-')}" in result.output, name


def test_help_imports_nothing_heavy() -> None:
    """`mlflow-tune --help` as a whole process stays fast (0.3-0.5 s here) because it never imports
    torch, mlflow and the rest; asserted on the imports, not a timer a loaded machine would trip."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "mlflow_tune.cli", "--help"],
                          capture_output=True, text=True, check=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert "train" in done.stdout
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    assert "typer" in imported   # the import log was read
    heavy = sorted(m for m in ("torch", "mlflow", "sklearn", "matplotlib", "pandas", "hyperopt", "optuna")
                   if m in imported)
    assert heavy == [], f"imported by mlflow-tune --help: {heavy}"


def test_cli_import_is_light() -> None:
    code = ("import sys, mlflow_tune.cli; heavy = sorted(m for m in ('torch', 'mlflow', 'sklearn', "
            "'matplotlib', 'pandas') if m in sys.modules); print(','.join(heavy))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert done.stdout.strip() == "", f"imported by mlflow_tune.cli: {done.stdout.strip()}"


@pytest.mark.parametrize("command", ["train"])
def test_subcommand_help(command: str) -> None:
    assert invoke(command, "--help").exit_code == 0


def test_an_empty_csv_is_one_line_and_exit_2_before_any_run(tmp_path: Path, tracking_uri: str) -> None:
    (tmp_path / "empty.csv").write_bytes(b"")
    done = CliRunner().invoke(app, ["train", "--data-path", str(tmp_path / "empty.csv"), "--epochs", "1"])
    assert done.exit_code == 2 and "is empty (0 bytes)" in done.output and "Traceback" not in done.output, done.output
    assert not MlflowClient(tracking_uri).search_runs([e.experiment_id for e in
                                                       MlflowClient(tracking_uri).search_experiments()])
