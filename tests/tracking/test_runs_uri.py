"""Tracking URIs and experiment names that MLflow would refuse with a traceback: one line, exit 2."""

from __future__ import annotations

import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from mlflow_tune.cli import app
from mlflow_tune.tracking.runs import URI_SCHEMES, resolve_tracking_uri


@pytest.mark.parametrize(("args", "needle"), [
    (["--tracking-uri", "foo://bar"], "has an unknown scheme 'foo'; use one of: sqlite"),
    (["--experiment", "e" * 600], "has 600 characters; use 1 to 500"),
])
def test_train_refuses_in_one_line(tracking_uri: str, args: list[str], needle: str) -> None:
    done = CliRunner().invoke(app, ["train", "--dataset", "iris", "--epochs", "1", *args])
    assert done.exit_code == 2 and needle in done.output, done.output
    assert len(done.output.strip().splitlines()) == 1
    assert not MlflowClient(tracking_uri).search_runs(["0"])


def test_the_schemes_we_accept_are_ones_mlflow_knows() -> None:
    """If MLflow drops one, this fails before users meet MLflow's traceback again."""
    from mlflow.tracking._tracking_service.utils import _tracking_store_registry

    known = set(_tracking_store_registry._registry)
    assert set(URI_SCHEMES) <= known | {""}
    assert resolve_tracking_uri("postgresql+psycopg2://u@h/db").startswith("postgresql+psycopg2")
