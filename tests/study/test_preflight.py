"""Issue 12, item 8: a user's data or model that cannot work stops a search before any run exists."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from mlflow_tune.cli import app

CASES = {
    "missing": (None, "does not exist"),
    "no_target": ("a,b\n1,2\n3,4\n", "target='label' is not a column"),
    "one_class": ("a,label\n" + "".join(f"{i},x\n" for i in range(30)), "has one class ('x')"),
    "empty": ("a,label\n", "has no rows"),
    "nan": ("a,label\n" + "".join(f"{'' if i == 3 else i},{i % 2}\n" for i in range(30)),
            "has missing values in columns: a; set impute"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_user_data_is_one_line_before_any_run(tracking_uri: str, tmp_path: Path, case: str) -> None:
    text, needle = CASES[case]
    data = tmp_path / f"{case}.csv"
    if text is not None:
        data.write_text(text)
    config = tmp_path / "tune.yaml"
    config.write_text(f"experiment: pre\ntrain: {{dataset: csv, data_path: {data}, target: label, epochs: 2}}\n"
                      "space: {lr: {loguniform: [0.001, 0.1]}}\nsearch: {max_trials: 2}\n")
    done = CliRunner().invoke(app, ["search", "--config", str(config)])
    assert done.exit_code == 2 and needle in done.output, done.output
    assert len(done.output.strip().splitlines()) == 1
    client = MlflowClient(tracking_uri)
    assert not client.search_runs([e.experiment_id for e in client.search_experiments()])


def test_an_unimportable_model_is_one_line_before_any_run(tracking_uri: str, tmp_path: Path) -> None:
    config = tmp_path / "tune.yaml"
    config.write_text("experiment: pre\ntrain: {dataset: iris, model: 'nosuchpkg.models:build', epochs: 2}\n"
                      "space: {lr: {loguniform: [0.001, 0.1]}}\nsearch: {max_trials: 2}\n")
    done = CliRunner().invoke(app, ["search", "--config", str(config)])
    assert done.exit_code == 2 and "model='nosuchpkg.models:build'" in done.output, done.output
    client = MlflowClient(tracking_uri)
    assert not client.search_runs([e.experiment_id for e in client.search_experiments()])
