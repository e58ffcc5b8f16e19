"""A LightningModule on scikit-learn's digits (8x8 images, 10 classes), tuned by mlflow-tune.

`fit(trial)` is what a Lightning user already writes, plus one callback: `TuneCallback(trial)`
reports each epoch's `self.log(...)` values to the search, which prunes, stops diverging runs and
labels every trial from Lightning's own metric names. `MLFlowLogger` writes to the trial's run.
"""

from __future__ import annotations

import warnings

import lightning as L
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mlflow_tune.integrations.lightning import TuneCallback, mlflow_logger

# Lightning 2.6 with torch 2.13 warns about its own use of torch's pytree API on every fit
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")


class SmallCNN(nn.Module):
    """Two convolutions over the 8x8 image, then a linear head; `channels` is the capacity knob."""

    def __init__(self, channels: int = 16, dropout: float = 0.1):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, channels, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(channels, 2 * channels, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Dropout(dropout), nn.Linear(2 * channels * 4, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x.view(-1, 1, 8, 8))


class DigitsClassifier(L.LightningModule):
    def __init__(self, lr: float, channels: int, dropout: float):
        super().__init__()
        self.net, self.lr = SmallCNN(channels, dropout), lr
        self.loss = nn.CrossEntropyLoss()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> torch.Tensor:
        x, y = batch
        logits = self.net(x)
        loss = self.loss(logits, y)
        self.log("train_loss", loss, on_step=False, on_epoch=True)
        self.log("train_acc", (logits.argmax(1) == y).float().mean(), on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> None:
        x, y = batch
        logits = self.net(x)
        self.log("val_loss", self.loss(logits, y))
        self.log("val_acc", (logits.argmax(1) == y).float().mean())

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.lr)


def loaders(seed: int = 0) -> tuple[DataLoader, DataLoader, torch.Tensor]:
    x, y = load_digits(return_X_y=True)
    x = torch.tensor(x / 16.0, dtype=torch.float32)
    y = torch.tensor(y, dtype=torch.long)
    x_train, x_val, y_train, y_val = train_test_split(x, y, test_size=0.3, random_state=seed, stratify=y)
    train = DataLoader(TensorDataset(x_train, y_train), batch_size=64, shuffle=True)
    return train, DataLoader(TensorDataset(x_val, y_val), batch_size=256), x_val[:5]


def fit(trial) -> None:  # type: ignore[no-untyped-def]
    p = trial.params
    L.seed_everything(int(p.get("seed", 0)), verbose=False)
    train, val, example = loaders()
    model = DigitsClassifier(float(p["lr"]), int(p["channels"]), float(p["dropout"]))
    trainer = L.Trainer(max_epochs=int(p["epochs"]), callbacks=[TuneCallback(trial)], logger=mlflow_logger(trial),
                        enable_progress_bar=False, enable_model_summary=False, accelerator="auto", devices=1,
                        log_every_n_steps=1,
                        default_root_dir=f"lightning_logs/trial-{trial.number}")
    trainer.fit(model, train, val)
    trial.log_model(model.net.eval(), input_example=example.numpy())   # kept if among the search's top-k
