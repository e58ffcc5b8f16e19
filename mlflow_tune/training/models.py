"""Model builders: mlp, cnn, rnn, and user models.

Every model is wrapped in :class:`Network`, which takes *raw* feature rows (float) or token
ids (int) and applies the training split's imputation, standardisation and the reshape
itself. That makes the logged MLflow model self-contained: it predicts from the rows a user
has, missing values included when it was trained with ``impute``.

A user model is a builder ``fn(config: TrainConfig, spec: InputSpec) -> torch.nn.Module``
that maps the prepared input (shape ``spec.input_shape`` after the batch dimension:
``(features,)`` for tabular data, ``(C, H, W)`` for images, ``(T,)`` int64 tokens) to
class logits ``(batch, spec.n_classes)``. Name it as ``model="package.module:function"``
or register it in the entry-point group ``mlflow_tune.models``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points

import numpy as np
import torch
from torch import nn

from mlflow_tune.training.config import ConfigError, TrainConfig
from mlflow_tune.training.data import DataSplits

ENTRY_POINT_GROUP = "mlflow_tune.models"


@dataclass(frozen=True)
class InputSpec:
    kind: str                      # tabular | image | tokens
    n_features: int
    n_classes: int
    input_shape: tuple[int, ...]   # per-example shape the body receives
    vocab_size: int = 0

    @classmethod
    def from_data(cls, data: DataSplits) -> InputSpec:
        shape = data.image_shape if data.kind == "image" else (data.n_features,)
        return cls(data.kind, data.n_features, data.n_classes, shape, data.vocab_size)


class Network(nn.Module):
    """Raw rows in, logits out: impute NaN, standardise (float input), reshape, then the body."""

    def __init__(self, body: nn.Module, mean: np.ndarray, std: np.ndarray, shape: tuple[int, ...],
                 fill: np.ndarray | None = None):
        super().__init__()
        self.body = body
        self.standardise = mean.size > 0
        self.mean: torch.Tensor
        self.std: torch.Tensor
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32))
        # A None buffer stays out of the state dict: checkpoints of runs without impute keep
        # loading into networks built after imputation existed.
        self.register_buffer("fill", torch.as_tensor(fill, dtype=torch.float32)
                             if fill is not None and fill.size else None)
        self.shape = shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.standardise:
            x = x.float()
            # getattr: a network pickled before imputation existed has no such buffer.
            fill = getattr(self, "fill", None)
            if fill is not None:
                x = torch.where(torch.isnan(x), fill, x)
            x = (x - self.mean) / self.std
        return self.body(x.reshape((x.shape[0], *self.shape)))  # type: ignore[no-any-return]


class Probabilities(nn.Module):
    """The exported form: raw rows in, class probabilities out (what `pyfunc.predict` returns)."""

    def __init__(self, network: Network):
        super().__init__()
        self.network = network

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.network(x), dim=1)


def _activation(name: str) -> nn.Module:
    kinds: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU,
                                         "leaky_relu": nn.LeakyReLU, "elu": nn.ELU, "sigmoid": nn.Sigmoid}
    return kinds[name]()


def mlp(cfg: TrainConfig, spec: InputSpec) -> nn.Module:
    if spec.kind == "tokens":
        raise ConfigError("model='mlp' cannot read token data; use model=rnn for dataset=sequences.")
    width, blocks = int(np.prod(spec.input_shape)), []
    for _ in range(cfg.layers):
        blocks += [nn.Linear(width, cfg.hidden_units), _activation(cfg.activation), nn.Dropout(cfg.dropout)]
        width = cfg.hidden_units
    return nn.Sequential(nn.Flatten(), *blocks, nn.Linear(width, spec.n_classes))


def cnn(cfg: TrainConfig, spec: InputSpec) -> nn.Module:
    if spec.kind != "image":
        raise ConfigError(f"model='cnn' needs image data, but dataset={cfg.dataset!r} is {spec.kind}; "
                          "image datasets: digits.")
    channels, (c_in, h, w), blocks = 16, spec.input_shape, []
    for _ in range(cfg.layers):
        blocks += [nn.Conv2d(c_in, channels, 3, padding=1), _activation(cfg.activation)]
        if min(h, w) >= 4:   # pool while the map is big enough to keep spatial information
            blocks.append(nn.MaxPool2d(2))
            h, w = h // 2, w // 2
        c_in, channels = channels, min(channels * 2, 128)
    return nn.Sequential(*blocks, nn.Flatten(), nn.Dropout(cfg.dropout),
                         nn.Linear(c_in * h * w, cfg.hidden_units), _activation(cfg.activation),
                         nn.Dropout(cfg.dropout), nn.Linear(cfg.hidden_units, spec.n_classes))


class Recurrent(nn.Module):
    """GRU/LSTM over a sequence (image rows, tabular features as steps, or embedded tokens)."""

    def __init__(self, cfg: TrainConfig, spec: InputSpec):
        super().__init__()
        self.kind = spec.kind
        if spec.kind == "tokens":
            self.embed: nn.Module = nn.Embedding(spec.vocab_size, cfg.embedding_dim)
            step = cfg.embedding_dim
        else:
            self.embed = nn.Identity()
            step = spec.input_shape[0] * spec.input_shape[2] if spec.kind == "image" else 1
        cell = nn.GRU if cfg.rnn_cell == "gru" else nn.LSTM
        self.rnn = cell(step, cfg.hidden_units, num_layers=cfg.layers, batch_first=True,
                        dropout=cfg.dropout if cfg.layers > 1 else 0.0)
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(cfg.hidden_units, spec.n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "tokens":
            seq = self.embed(x.long())
        elif self.kind == "image":   # (N, C, H, W) -> rows as steps: (N, H, C*W)
            seq = x.permute(0, 2, 1, 3).reshape(x.shape[0], x.shape[2], -1)
        else:
            seq = x.unsqueeze(-1)
        out, _ = self.rnn(seq)
        return self.head(self.drop(out[:, -1]))  # type: ignore[no-any-return]


def rnn(cfg: TrainConfig, spec: InputSpec) -> nn.Module:
    return Recurrent(cfg, spec)


Builder = Callable[[TrainConfig, InputSpec], nn.Module]
BUILTIN: dict[str, Builder] = {"mlp": mlp, "cnn": cnn, "rnn": rnn}


def resolve_builder(name: str) -> Builder:
    """A built-in name, an entry point in `mlflow_tune.models`, or `module:function`."""
    if name in BUILTIN:
        return BUILTIN[name]
    plugins = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
    if name in plugins:
        return plugins[name].load()  # type: ignore[no-any-return]
    if ":" in name:
        module, _, attr = name.partition(":")
        try:
            return getattr(importlib.import_module(module), attr)  # type: ignore[no-any-return]
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"model={name!r} cannot be loaded: {exc}.") from None
    valid = [*BUILTIN, *plugins, "module:function"]
    raise ConfigError(f"model={name!r} is not valid; choose one of: {', '.join(valid)}.")


def build_model(cfg: TrainConfig, data: DataSplits) -> Network:
    spec = InputSpec.from_data(data)
    body = resolve_builder(cfg.model)(cfg, spec)
    return Network(body, data.mean, data.std, spec.input_shape, data.fill)
