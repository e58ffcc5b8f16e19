"""A user's own training code: plain PyTorch on an imbalanced CSV, scored by F1.

mlflow-tune calls `fit(trial)` once per trial; the function reads `trial.params`, trains, and
reports its numbers with `trial.report`. Nothing else here knows about mlflow-tune.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import f1_score
from sklearn.model_selection import train_test_split

DATA = Path(__file__).resolve().parent / "data" / "imbalanced.csv"


class Classifier(torch.nn.Module):
    def __init__(self, features: int, units: int, dropout: float, mean: np.ndarray, scale: np.ndarray):
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("scale", torch.as_tensor(scale, dtype=torch.float32))
        self.body = torch.nn.Sequential(torch.nn.Linear(features, units), torch.nn.ReLU(), torch.nn.Dropout(dropout),
                                        torch.nn.Linear(units, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # raw rows in (missing values as the training mean), class probabilities out
        x = torch.where(torch.isnan(x), self.mean, x)
        return torch.softmax(self.body((x - self.mean) / self.scale), dim=1)


def load() -> tuple[np.ndarray, ...]:
    frame = pd.read_csv(DATA)
    x, y = frame.drop(columns="label").to_numpy(np.float32), frame["label"].to_numpy()
    return tuple(train_test_split(x, y, test_size=0.25, stratify=y, random_state=0))


def fit(trial) -> None:  # type: ignore[no-untyped-def]
    p = trial.params
    xt, xv, yt, yv = load()
    mean = np.nanmean(xt, axis=0)
    scale = np.nanstd(xt, axis=0) + 1e-6
    torch.manual_seed(0)
    model = Classifier(xt.shape[1], int(p["units"]), float(p["dropout"]), mean, scale)
    opt = torch.optim.Adam(model.parameters(), lr=float(p["lr"]))
    # weight the rare class up: plain cross-entropy learns to always answer "0" (95% accuracy)
    weight = torch.tensor([1.0, float(p["minority_weight"])])
    xt_t, yt_t, xv_t = torch.as_tensor(xt), torch.as_tensor(yt), torch.as_tensor(xv)
    for epoch in range(trial.budget.get("epochs", p.get("epochs", 30))):
        model.train()
        order = torch.randperm(len(xt_t))
        for i in range(0, len(order), 128):
            batch = order[i:i + 128]
            opt.zero_grad()
            probabilities = model(xt_t[batch])
            loss = torch.nn.functional.nll_loss(torch.log(probabilities + 1e-9), yt_t[batch], weight=weight)
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            train_loss = torch.nn.functional.nll_loss(torch.log(model(xt_t) + 1e-9), yt_t).item()
            pv = model(xv_t)
            val_loss = torch.nn.functional.nll_loss(torch.log(pv + 1e-9), torch.as_tensor(yv)).item()
        predicted = pv.argmax(1).numpy()
        trial.report(epoch, {"train_loss": train_loss, "val_loss": val_loss,
                             "val_accuracy": float((predicted == yv).mean()),
                             "val_f1": float(f1_score(yv, predicted, average="macro"))})
    trial.log_model(model, input_example=xv[:5])
