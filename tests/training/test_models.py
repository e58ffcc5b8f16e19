from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from mlflow_tune.training.config import ConfigError, TrainConfig
from mlflow_tune.training.data import split
from mlflow_tune.training.models import Network, Probabilities, build_model, resolve_builder


def _forward(cfg: TrainConfig) -> tuple[torch.Tensor, int]:
    data = split(cfg)
    model = build_model(cfg, data)
    assert isinstance(model, Network)
    x = torch.as_tensor(data.train.x[:7])
    with torch.no_grad():
        return model(x), data.n_classes


@pytest.mark.parametrize("cfg", [
    TrainConfig(dataset="digits", model="mlp", layers=2, hidden_units=16),
    TrainConfig(dataset="wine", model="mlp", activation="tanh", dropout=0.3),
    TrainConfig(dataset="digits", model="cnn", layers=2, hidden_units=16),
    TrainConfig(dataset="digits", model="rnn", rnn_cell="gru", hidden_units=16),
    TrainConfig(dataset="digits", model="rnn", rnn_cell="lstm", hidden_units=16, layers=2, dropout=0.1),
    TrainConfig(dataset="iris", model="rnn", hidden_units=8),
    TrainConfig(dataset="sequences", model="rnn", n_samples=100, hidden_units=16, embedding_dim=8),
    TrainConfig(dataset="sequences", model="rnn", rnn_cell="lstm", n_samples=100, hidden_units=16,
                embedding_dim=8),
], ids=["mlp-digits", "mlp-wine", "cnn", "gru-digits", "lstm-digits", "gru-iris", "gru-tokens",
        "lstm-tokens"])
def test_forward_shapes(cfg: TrainConfig) -> None:
    logits, n_classes = _forward(cfg)
    assert logits.shape == (7, n_classes)
    assert torch.isfinite(logits).all()


def test_probabilities_sum_to_one() -> None:
    cfg = TrainConfig(hidden_units=8)
    data = split(cfg)
    probs = Probabilities(build_model(cfg, data))(torch.as_tensor(data.test.x[:4]))
    assert torch.allclose(probs.sum(1), torch.ones(4))


def test_network_standardises_raw_rows() -> None:
    cfg = TrainConfig(dataset="wine")
    data = split(cfg)
    model = build_model(cfg, data)
    assert np.allclose(model.mean.numpy(), data.mean) and np.allclose(model.std.numpy(), data.std)
    assert "mean" in model.state_dict()   # travels with the checkpoint and the logged model


def test_cnn_on_tabular_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"cnn.*image"):
        _forward(TrainConfig(dataset="wine", model="cnn"))


def test_mlp_on_tokens_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="rnn"):
        _forward(TrainConfig(dataset="sequences", model="mlp", n_samples=100))


def test_user_model_module_function(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "my_models.py").write_text(textwrap.dedent("""
        from torch import nn

        def tiny(config, spec):
            return nn.Sequential(nn.Flatten(), nn.Linear(spec.n_features, spec.n_classes))
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        logits, n_classes = _forward(TrainConfig(dataset="iris", model="my_models:tiny"))
    finally:
        sys.modules.pop("my_models", None)
    assert logits.shape == (7, n_classes) == (7, 3)


def test_user_model_that_cannot_load() -> None:
    with pytest.raises(ConfigError, match="no_such_module_xyz"):
        resolve_builder("no_such_module_xyz:build")


def test_unknown_model_lists_choices() -> None:
    with pytest.raises(ConfigError) as err:
        _forward(TrainConfig(model="transformer"))
    message = str(err.value)
    assert "model='transformer'" in message
    for name in ("mlp", "cnn", "rnn", "module:function"):
        assert name in message
