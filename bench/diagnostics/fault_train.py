"""Models, optimisers, schedules and the training loop of faults.py (self-contained, as wide.py's).

Two model families the rules were not checked on: ``cnn`` (two 3x3 convolutions with max pooling on
sklearn's digits as 8x8 images) and ``bnmlp`` (an MLP with batch norm after every hidden layer).
Optimisers Adam, AdamW, SGD, SGD+momentum, SGD+Nesterov, Adagrad, Adadelta; schedules one-cycle,
exponential, linear warm-up and cosine, set once per epoch (TrainConfig has plateau decay only).
A run may carry one practitioner bug (``Cfg.bug``): its oracle measurements (eval-mode accuracy on
the clean training labels, eval-mode validation curves, the balanced accuracy) are returned beside
the curves and never logged.
"""

from __future__ import annotations

import math
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import generate
import wide

# raw features x this factor for `unscaled_inputs`: digits' 0..16 as 0..255 pixel values; breast_cancer
# and wine are raw already (areas in the thousands, proline ~1000); the others have unit scale
RAW_SCALE = {"digits": 16.0, "breast_cancer": 1.0, "wine": 1.0, "synthetic": 100.0, "moons": 100.0}


@dataclass(frozen=True)
class Cfg:
    recipe: str
    fault: str = "none"          # the fault kind; "none" for the healthy set-ups
    bug: str = ""                # a practitioner bug applied to data, model or loop (not logged in params)
    model: str = "bnmlp"         # bnmlp | cnn
    hidden_units: int = 64       # units per layer (bnmlp) or channels of the first convolution (cnn)
    layers: int = 2
    dropout: float = 0.0
    weight_decay: float = 1e-4
    optimizer: str = "adam"      # adam | adamw | sgd | momentum | nesterov | adagrad | adadelta
    lr: float = 1e-3
    momentum: float = 0.0
    batch_size: int = 32
    epochs: int = 30
    schedule: str = "none"       # none | onecycle | exponential | warmup | cosine
    subsample: int = 0
    label_noise: float = 0.0


def load(name: str) -> tuple[np.ndarray, np.ndarray]:
    return generate.load(name, 0) if name in generate.DATASETS else wide.load(name)


class Net(nn.Module):
    def __init__(self, n_in: int, n_out: int, cfg: Cfg) -> None:
        super().__init__()
        act = (lambda: nn.Identity()) if cfg.bug == "missing_nonlinearity" else (lambda: nn.ReLU())
        h = cfg.hidden_units
        mods: list[nn.Module]
        if cfg.model == "cnn":
            mods = [nn.Conv2d(1, h, 3, padding=1), act(), nn.MaxPool2d(2),
                    nn.Conv2d(h, 2 * h, 3, padding=1), act(), nn.MaxPool2d(2), nn.Flatten(),
                    nn.Dropout(cfg.dropout), nn.Linear(2 * h * 4, n_out)]
        else:
            mods, width = [], n_in
            for _ in range(cfg.layers):
                mods += [nn.Linear(width, h), nn.BatchNorm1d(h), act(), nn.Dropout(cfg.dropout)]
                width = h
            mods.append(nn.Linear(width, n_out))
        self.net = nn.Sequential(*mods)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)  # type: ignore[no-any-return]


def optimizer(cfg: Cfg, params: list[nn.Parameter]) -> torch.optim.Optimizer:
    wd = cfg.weight_decay
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=wd)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=wd)
    if cfg.optimizer == "adagrad":
        return torch.optim.Adagrad(params, lr=cfg.lr, weight_decay=wd)
    if cfg.optimizer == "adadelta":
        return torch.optim.Adadelta(params, lr=cfg.lr, weight_decay=wd)
    momentum = cfg.momentum if cfg.optimizer in ("momentum", "nesterov") else 0.0
    return torch.optim.SGD(params, lr=cfg.lr, momentum=momentum, nesterov=cfg.optimizer == "nesterov",
                           weight_decay=wd)


def lr_at(cfg: Cfg, epoch: int) -> float:
    """The learning rate of an epoch.  One-cycle as torch's OneCycleLR, per epoch: up from lr/25 over
    the first 30 %, then a cosine down to lr/1e4; exponential: to lr/10 at the end (gamma 0.926 over
    30 epochs); warm-up: linear from lr/10 over 5 epochs, then constant."""
    t = epoch / max(1, cfg.epochs - 1)
    if cfg.schedule == "onecycle":
        if t < 0.3:
            return cfg.lr * (0.04 + 0.96 * t / 0.3)
        return cfg.lr * (1e-4 + (1 - 1e-4) * 0.5 * (1 + math.cos(math.pi * (t - 0.3) / 0.7)))
    if cfg.schedule == "exponential":   # x gamma per epoch, to a tenth at the end
        return float(cfg.lr * 0.1 ** (epoch / cfg.epochs))
    if cfg.schedule == "warmup":
        return cfg.lr * min(1.0, 0.1 + 0.9 * epoch / 5)
    if cfg.schedule == "cosine":
        return cfg.lr * 0.5 * (1 + math.cos(math.pi * epoch / cfg.epochs))
    return cfg.lr


def split(dataset: str, seed: int, cfg: Cfg) -> tuple[np.ndarray, ...]:
    """Train/val split with the data bugs applied: imbalance before the split, leak, scaling, labels."""
    x, y = load(dataset)
    rng = np.random.default_rng(seed)
    if cfg.bug == "extreme_imbalance":   # the largest class in full, every other class cut to 2 % of it
        big = int(np.bincount(y).argmax())
        n_keep = max(3, int(0.02 * np.bincount(y).max()))
        keep = np.concatenate([np.flatnonzero(y == c)[: len(y) if c == big else n_keep] for c in np.unique(y)])
        x, y = x[keep], y[keep]
    x_tr, x_va, y_tr, y_va = train_test_split(x, y, test_size=0.3, stratify=y, random_state=seed)
    if cfg.subsample:
        keep, _ = train_test_split(np.arange(len(y_tr)), train_size=cfg.subsample, stratify=y_tr, random_state=seed)
        x_tr, y_tr = x_tr[keep], y_tr[keep]
    if cfg.bug == "leaked_validation":   # the validation rows are also trained on
        x_tr, y_tr = np.concatenate([x_tr, x_va]), np.concatenate([y_tr, y_va])
    if cfg.bug == "unscaled_inputs":
        x_tr, x_va = x_tr * RAW_SCALE[dataset], x_va * RAW_SCALE[dataset]
    else:
        scaler = StandardScaler().fit(x_tr)
        x_tr, x_va = scaler.transform(x_tr), scaler.transform(x_va)
    y_clean = y_tr.copy()
    n_classes = int(y.max()) + 1
    if cfg.bug == "shuffled_labels":     # labels permuted against the inputs (shuffled apart)
        y_tr = rng.permutation(y_tr)
    if cfg.label_noise:
        flip = rng.random(len(y_tr)) < cfg.label_noise
        y_tr = y_tr.copy()
        y_tr[flip] = (y_tr[flip] + rng.integers(1, n_classes, flip.sum())) % n_classes
    if cfg.model == "cnn":               # digits' 64 features as one 8x8 channel
        x_tr, x_va = x_tr.reshape(-1, 1, 8, 8), x_va.reshape(-1, 1, 8, 8)
    x_tr, x_va = x_tr.astype(np.float32), x_va.astype(np.float32)
    return x_tr, x_va, y_tr, y_va, y_clean


def _evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, train_mode: bool = False) -> tuple[float, float]:
    model.train(train_mode)
    with torch.no_grad():
        out = model(x)
        return float(nn.functional.cross_entropy(out, y)), float((out.argmax(1) == y).float().mean())


def train(dataset: str, seed: int, cfg: Cfg) -> dict[str, object]:
    x_tr, x_va, y_tr, y_va, y_clean = split(dataset, seed, cfg)
    n_classes = int(max(y_tr.max(), y_va.max())) + 1
    torch.manual_seed(seed)
    xt, yt, yc = torch.from_numpy(x_tr), torch.from_numpy(y_tr), torch.from_numpy(y_clean)
    xv, yv = torch.from_numpy(x_va), torch.from_numpy(y_va)
    model = Net(x_tr.shape[-1], n_classes, cfg)
    opt = optimizer(cfg, list(model.parameters()))
    gen = torch.Generator().manual_seed(seed)
    names = ("train_loss", "val_loss", "train_accuracy", "val_accuracy", "lr", "grad_norm")
    curves: dict[str, list[float]] = {k: [] for k in names}
    true_val: dict[str, list[float]] = {"val_loss": [], "val_accuracy": []}   # eval mode, whatever the bug
    min_batch = 2 if cfg.model == "bnmlp" else 1   # batch norm cannot train on a batch of one
    for epoch in range(cfg.epochs):
        for group in opt.param_groups:
            group["lr"] = lr_at(cfg, epoch)
        model.train()
        perm = torch.randperm(len(yt), generator=gen)
        tot_loss = tot_correct = tot_norm = 0.0
        seen = steps = 0
        for i in range(0, len(yt), cfg.batch_size):
            b = perm[i:i + cfg.batch_size]
            if len(b) < min_batch:
                continue
            out = model(xt[b])
            loss = nn.functional.cross_entropy(out, yt[b])
            opt.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            tot_norm += float(torch.nn.utils.clip_grad_norm_(model.parameters(), float("inf")))
            opt.step()
            tot_loss += float(loss.detach()) * len(b)
            tot_correct += float((out.argmax(1) == yt[b]).sum())
            seen, steps = seen + len(b), steps + 1
        curves["train_loss"].append(tot_loss / seen)
        curves["train_accuracy"].append(tot_correct / seen)
        vl, va = _evaluate(model, xv, yv, train_mode=cfg.bug == "dropout_at_eval")  # the bug: no model.eval()
        curves["val_loss"].append(vl)
        curves["val_accuracy"].append(va)
        tv = _evaluate(model, xv, yv)
        true_val["val_loss"].append(tv[0])
        true_val["val_accuracy"].append(tv[1])
        curves["lr"].append(lr_at(cfg, epoch))
        curves["grad_norm"].append(tot_norm / max(steps, 1))
        if not all(math.isfinite(v[-1]) for v in curves.values()):
            break
    _, train_eval_acc = _evaluate(model, xt, yc)   # eval mode, clean labels (before shuffling / noise)
    model.eval()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")   # a diverged model may predict classes the val split lacks
        pred = model(xv).argmax(1).numpy()
        balanced = float(balanced_accuracy_score(y_va, pred))
    return {"curves": curves, "true_val": true_val, "n_classes": n_classes, "train_eval_accuracy": train_eval_acc,
            "val_balanced_accuracy": balanced,
            "majority_rate": float(np.bincount(y_va).max() / len(y_va)), "val_rows": len(y_va)}
