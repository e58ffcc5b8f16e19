"""The training loop: pure PyTorch, reporting each epoch to callbacks (no MLflow here).

Callbacks decide where numbers go (tracking, progress, pruning, the diagnosis guard); the
loop only trains, evaluates and keeps the best checkpoint.
"""

from __future__ import annotations

import copy
import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from mlflow_tune.training.callbacks import EpochRecord, TrainCallback
from mlflow_tune.training.config import TrainConfig
from mlflow_tune.training.data import DataSplits, balanced_batches, split
from mlflow_tune.training.models import Network, build_model
from mlflow_tune.training.sanity import SanityReport, sanity_check

if TYPE_CHECKING:
    from mlflow_tune.diagnostics.curves import Diagnosis

__all__ = ["EpochRecord", "TrainCallback", "TrainResult", "train_model"]

STATUSES = ("completed", "early_stopped", "nonfinite", "stopped")


@dataclass
class TrainResult:
    config: TrainConfig
    status: str                         # one of STATUSES
    history: list[EpochRecord]
    model: Network                      # holds the best checkpoint's weights
    data: DataSplits
    best_epoch: int = -1
    best_val_loss: float = math.inf
    best_val_accuracy: float = 0.0
    test_loss: float = math.nan
    test_accuracy: float = math.nan
    stop_reason: str = ""
    sanity: SanityReport | None = None
    seconds: float = 0.0
    best_state: dict[str, torch.Tensor] = field(default_factory=dict)
    diagnosis: Diagnosis | None = None

    @property
    def n_classes(self) -> int:
        return self.data.n_classes

    def final_metrics(self) -> dict[str, float]:
        out = {"best_val_loss": self.best_val_loss, "best_val_accuracy": self.best_val_accuracy,
               "best_epoch": float(self.best_epoch), "train_seconds": self.seconds}
        if len(self.data.test):
            out.update(test_loss=self.test_loss, test_accuracy=self.test_accuracy)
        return out


class NonFiniteLoss(Exception):
    pass


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def make_optimizer(cfg: TrainConfig, params: list[nn.Parameter]) -> torch.optim.Optimizer:
    wd, lr = cfg.weight_decay, cfg.lr
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, weight_decay=wd)
    if cfg.optimizer == "momentum":
        return torch.optim.SGD(params, lr=lr, momentum=cfg.momentum, weight_decay=wd)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=wd)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=wd)
    if cfg.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, weight_decay=wd)
    return torch.optim.Adadelta(params, lr=lr, weight_decay=wd)


def plateau_decay(val_losses: Sequence[float], lr: float, factor: float, patience: int) -> float:
    """Decay lr by `factor` once val loss has not improved for `patience` epochs.

    The practice's "x0.5 when validation stops improving": the counter is implied by the
    history, so after a decay we wait `patience` more epochs before the next one.
    """
    if factor >= 1.0 or len(val_losses) <= patience:
        return lr
    best = int(np.argmin(val_losses))
    since = len(val_losses) - 1 - best
    return lr * factor if since > 0 and since % patience == 0 else lr


@dataclass
class _Tensors:
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


def _to_tensors(data: DataSplits, device: torch.device) -> _Tensors:
    def t(a: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(a).to(device)
    return _Tensors(t(data.train.x), t(data.train.y), t(data.val.x), t(data.val.y),
                    t(data.test.x), t(data.test.y))


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 4096) -> tuple[float, float]:
    model.eval()
    loss_sum, correct = 0.0, 0
    for i in range(0, len(y), batch):
        logits = model(x[i:i + batch])
        loss_sum += float(nn.functional.cross_entropy(logits, y[i:i + batch], reduction="sum"))
        correct += int((logits.argmax(1) == y[i:i + batch]).sum())
    n = max(1, len(y))
    return loss_sum / n, correct / n


def _batches(cfg: TrainConfig, y: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    if cfg.balance == "batches":
        return balanced_batches(y, cfg.batch_size, rng)
    order = rng.permutation(len(y))
    return [order[i:i + cfg.batch_size] for i in range(0, len(y), cfg.batch_size)]


def _train_epoch(cfg: TrainConfig, model: nn.Module, opt: torch.optim.Optimizer, t: _Tensors,
                 y_np: np.ndarray, rng: np.random.Generator) -> tuple[float, float, float]:
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    loss_sum = torch.zeros((), device=t.y_train.device)
    correct = torch.zeros((), device=t.y_train.device, dtype=torch.long)
    norm_sum, seen, steps = 0.0, 0, 0
    max_norm = cfg.grad_clip if cfg.grad_clip > 0 else math.inf
    for idx_np in _batches(cfg, y_np, rng):
        idx = torch.as_tensor(idx_np, device=t.y_train.device)
        xb, yb = t.x_train[idx], t.y_train[idx]
        logits = model(xb)
        loss = nn.functional.cross_entropy(logits, yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        # clip_grad_norm_ returns the pre-clip global norm, which is the number worth logging.
        norm = float(torch.nn.utils.clip_grad_norm_(params, max_norm))
        if not (math.isfinite(norm) and bool(torch.isfinite(loss))):
            raise NonFiniteLoss(f"loss={float(loss.detach())} grad_norm={norm}")
        opt.step()
        loss_sum += loss.detach() * len(yb)
        correct += (logits.detach().argmax(1) == yb).sum()
        norm_sum, seen, steps = norm_sum + norm, seen + len(yb), steps + 1
    return float(loss_sum) / seen, int(correct) / seen, norm_sum / steps


def train_model(cfg: TrainConfig, callbacks: Sequence[TrainCallback] = (),
                data: DataSplits | None = None) -> TrainResult:
    """Train one model from `cfg`; every epoch goes to `callbacks`, in order.

    The diagnosis guard (`diagnostics.guard.DiagnosisGuard`) is one of them when the caller
    wants it, first, so that it sets `result.diagnosis` before the others see the result.
    """
    if cfg.num_threads > 0:
        torch.set_num_threads(cfg.num_threads)
    seed_everything(cfg.seed)
    data = data if data is not None else split(cfg)
    device = pick_device(cfg.device)
    model = build_model(cfg, data).to(device)
    for cb in callbacks:
        cb.on_train_start(cfg, data, model)
    t = _to_tensors(data, device)
    result = TrainResult(cfg, "completed", [], model, data)
    if cfg.sanity_check:
        result.sanity = sanity_check(model, t.x_train, t.y_train, data.n_classes)
        for cb in callbacks:
            cb.on_sanity(result.sanity)
    opt = make_optimizer(cfg, [p for p in model.parameters() if p.requires_grad])
    rng = np.random.default_rng(cfg.seed)
    start = time.perf_counter()
    for epoch in range(cfg.epochs):
        if _run_epoch(cfg, epoch, model, opt, t, data, rng, result, callbacks):
            break
    result.seconds = time.perf_counter() - start
    if result.best_state:
        model.load_state_dict(result.best_state)
    if len(data.test):
        result.test_loss, result.test_accuracy = evaluate(model, t.x_test, t.y_test)
    for cb in callbacks:
        cb.on_train_end(result)
    return result


def _run_epoch(cfg: TrainConfig, epoch: int, model: Network, opt: torch.optim.Optimizer, t: _Tensors,
               data: DataSplits, rng: np.random.Generator, result: TrainResult,
               callbacks: Sequence[TrainCallback]) -> bool:
    """One epoch plus bookkeeping; returns True when training must stop."""
    tic = time.perf_counter()
    lr = opt.param_groups[0]["lr"]
    try:
        train_loss, train_acc, grad_norm = _train_epoch(cfg, model, opt, t, data.train.y, rng)
        val_loss, val_acc = evaluate(model, t.x_val, t.y_val)
    except NonFiniteLoss as exc:
        result.status, result.stop_reason = "nonfinite", f"non-finite value at epoch {epoch}: {exc}"
        nan = math.nan
        record = EpochRecord(epoch, nan, nan, nan, nan, lr, nan, time.perf_counter() - tic)
        result.history.append(record)
        for cb in callbacks:
            cb.on_epoch_end(record, result.history)
        return True
    record = EpochRecord(epoch, train_loss, val_loss, train_acc, val_acc, lr, grad_norm,
                         time.perf_counter() - tic)
    result.history.append(record)
    if not math.isfinite(val_loss):
        result.status, result.stop_reason = "nonfinite", f"validation loss {val_loss} at epoch {epoch}"
    elif val_loss < result.best_val_loss:
        result.best_val_loss, result.best_val_accuracy, result.best_epoch = val_loss, val_acc, epoch
        result.best_state = copy.deepcopy(model.state_dict())
    reasons = [r for cb in callbacks if (r := cb.on_epoch_end(record, result.history))]
    if result.status == "nonfinite":
        return True
    if reasons:
        result.status, result.stop_reason = "stopped", reasons[0]
        return True
    patience = cfg.early_stopping_patience
    if patience and epoch - result.best_epoch >= patience:
        result.status = "early_stopped"
        result.stop_reason = f"no val_loss improvement for {patience} epochs (best at epoch {result.best_epoch})"
        return True
    new_lr = plateau_decay([r.val_loss for r in result.history], lr, cfg.lr_decay, cfg.lr_patience)
    for group in opt.param_groups:
        group["lr"] = new_lr
    return False
