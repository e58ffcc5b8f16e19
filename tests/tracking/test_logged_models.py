"""Models logged with `mlflow.pytorch.log_model`: they load, predict from raw rows, and are linked."""

from __future__ import annotations

import logging
import subprocess
import sys

import mlflow
import numpy as np
import pytest
import torch
from mlflow import MlflowClient

from mlflow_tune.tracking.models import PICKLE_WARNING, log_model, model_parts
from mlflow_tune.tracking.runs import RunLogger, ensure_experiment
from mlflow_tune.training.config import TrainConfig
from mlflow_tune.training.loop import train_model
from mlflow_tune.training.models import Probabilities


@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_each_model_loads_and_predicts_with_its_own_weights(tracking_uri: str, model: str) -> None:
    client = MlflowClient(tracking_uri)
    experiment_id = ensure_experiment(client, "models")
    uris, inputs, expected = [], [], []
    for seed in (0, 1):
        cfg = TrainConfig(dataset="digits", model=model, epochs=2, seed=seed, num_threads=1, hidden_units=32)
        result = train_model(cfg)
        run = RunLogger.start(client, experiment_id, name=f"r{seed}")
        x = result.data.test.x[:4]
        uris.append(log_model(client, run.run_id, model_parts(result.model, x)))
        inputs.append(x)
        with torch.no_grad():
            expected.append(Probabilities(result.model).eval()(torch.as_tensor(x)).numpy())
        logged = client.get_logged_model(uris[-1].split("/")[-1])
        assert str(logged.status).endswith("READY")
        assert logged.source_run_id == run.run_id and logged.experiment_id == experiment_id
        assert [o.model_id for o in client.get_run(run.run_id).outputs.model_outputs] == [logged.model_id]
    assert uris[0] != uris[1]
    for uri, x, output in zip(uris, inputs, expected, strict=True):
        # raw rows in, probabilities out: the standardisation travels inside the model
        probabilities = mlflow.pyfunc.load_model(uri).predict(x)
        np.testing.assert_allclose(probabilities, output, rtol=1e-5, atol=1e-6)
        info = mlflow.models.get_model_info(uri)
        assert info.run_id and info.signature is not None and info.saved_input_example_info is not None
    assert not np.allclose(mlflow.pyfunc.load_model(uris[0]).predict(inputs[1]), expected[1])


def test_a_model_loads_in_a_fresh_process_from_its_own_code(tracking_uri: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    client = MlflowClient(tracking_uri)
    run = RunLogger.start(client, ensure_experiment(client, "models"))
    result = train_model(TrainConfig(dataset="iris", epochs=2, num_threads=1, hidden_units=8))
    uri = log_model(client, run.run_id, model_parts(result.model, result.data.test.x[:3]))
    # Another working directory, and the installed package hidden: only the model's code_paths
    # (which MLflow puts on sys.path when it loads the model) can provide what the pickle needs.
    code = """
import importlib.machinery, sys
import numpy as np, mlflow
sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in repr(f)]
sys.path[:] = [p for p in sys.path if not __import__("os").path.isdir(p + "/mlflow_tune")]
mlflow.set_tracking_uri(sys.argv[1])
m = mlflow.pyfunc.load_model(sys.argv[2])
import mlflow_tune
print(mlflow_tune.__file__)
print(m.predict(np.asarray([[5.1, 3.5, 1.4, 0.2]], dtype=np.float32)).shape)
"""
    done = subprocess.run([sys.executable, "-c", code, tracking_uri, uri], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    source, shape = done.stdout.strip().splitlines()[-2:]
    assert shape == "(1, 3)"
    assert "/work/main/" not in source and "code" in source, source   # loaded from the model's own copy


def test_no_pickle_warning_for_our_models_and_the_filter_still_matches_mlflow(
        tracking_uri: str, caplog: pytest.LogCaptureFixture) -> None:
    client = MlflowClient(tracking_uri)
    run = RunLogger.start(client, ensure_experiment(client, "models"))
    result = train_model(TrainConfig(dataset="iris", epochs=1, num_threads=1, hidden_units=8))
    parts = model_parts(result.model, result.data.test.x[:3])
    with caplog.at_level(logging.WARNING, logger="mlflow"):
        log_model(client, run.run_id, parts)
    assert not [r for r in caplog.records if "Pickle" in r.getMessage()]
    # Fails loudly if MLflow rewords the warning: the filter above would then silence nothing.
    caplog.clear()
    mlflow.set_tracking_uri(tracking_uri)
    with caplog.at_level(logging.WARNING, logger="mlflow"):
        mlflow.pytorch.log_model(torch.nn.Linear(2, 2), name="plain", run_id=run.run_id,
                                 serialization_format="pickle", pip_requirements=["torch"])
    assert any(PICKLE_WARNING in r.getMessage() for r in caplog.records)


def test_a_model_goes_to_the_clients_store_not_the_global_one(tracking_uri: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    other = f"sqlite:///{tmp_path / 'other.db'}"
    mlflow.set_tracking_uri(other)
    try:
        client = MlflowClient(tracking_uri)
        run = RunLogger.start(client, ensure_experiment(client, "models"))
        result = train_model(TrainConfig(dataset="iris", epochs=1, num_threads=1, hidden_units=8))
        uri = log_model(client, run.run_id, model_parts(result.model, result.data.test.x[:3]))
        assert mlflow.get_tracking_uri() == other   # put back
        assert client.get_logged_model(uri.split("/")[-1]).source_run_id == run.run_id
    finally:
        mlflow.set_tracking_uri(tracking_uri)
