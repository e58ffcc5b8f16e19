"""Models logged from a template: what comes out loads, predicts and is linked like Model.log's."""

from __future__ import annotations

import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient

from mlflow_tune.tracking.models import log_model, model_parts
from mlflow_tune.tracking.runs import RunLogger, ensure_experiment
from mlflow_tune.training.config import TrainConfig
from mlflow_tune.training.loop import train_model


@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_models_of_one_kind_share_a_template_and_each_loads(tracking_uri: str, model: str) -> None:
    client = MlflowClient(tracking_uri)
    experiment_id = ensure_experiment(client, "models")
    uris, inputs, expected = [], [], []
    for seed in (0, 1):   # two models of the same kind: the second is staged from the first's template
        cfg = TrainConfig(dataset="digits", model=model, epochs=2, seed=seed, num_threads=1, hidden_units=32)
        result = train_model(cfg)
        run = RunLogger.start(client, experiment_id, name=f"r{seed}")
        x = result.data.test.x[:4]
        parts = model_parts(result.model, x)
        uris.append(log_model(client, run.run_id, parts, experiment_id=experiment_id))
        inputs.append(x)
        expected.append(parts.output)
        logged = client.get_logged_model(uris[-1].split("/")[-1])
        assert str(logged.status).endswith("READY")
        assert logged.source_run_id == run.run_id
        assert [o.model_id for o in client.get_run(run.run_id).outputs.model_outputs] == [logged.model_id]
    assert uris[0] != uris[1]
    mlflow.set_tracking_uri(tracking_uri)
    for uri, x, output in zip(uris, inputs, expected, strict=True):
        probabilities = mlflow.pyfunc.load_model(uri).predict(x)
        np.testing.assert_allclose(probabilities, output, rtol=1e-5, atol=1e-6)   # its own weights
        info = mlflow.models.get_model_info(uri)
        assert info.run_id and info.signature is not None and info.saved_input_example_info is not None
    # the weights differ, so the two models answer differently on the same rows
    assert not np.allclose(mlflow.pyfunc.load_model(uris[0]).predict(inputs[1]), expected[1])
