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
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from mlflow_tune import interrupts
from mlflow_tune.training.callbacks import TrainCallback
from mlflow_tune.training.config import TrainConfig
from mlflow_tune.training.data import DataSplits, balanced_batches, split
from mlflow_tune.training.evaluation import evaluate, has_auc
from mlflow_tune.training.models import Network, build_model
from mlflow_tune.training.records import EpochRecord, TrainResult
from mlflow_tune.training.sanity import sanity_check
from mlflow_tune.training.selection import Selection, Tracker

if TYPE_CHECKING:
    pass

__all__ = ["EpochRecord", "TrainCallback", "TrainResult", "train_model"]

STATUSES = ("completed", "early_stopped", "nonfinite", "stopped")


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
    weight: torch.Tensor | None = None   # class weights of the training loss


def _to_tensors(cfg: TrainConfig, data: DataSplits, device: torch.device) -> _Tensors:
    def t(a: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(a).to(device)
    return _Tensors(t(data.train.x), t(data.train.y), t(data.val.x), t(data.val.y),
                    t(data.test.x), t(data.test.y), class_weights(cfg, data, device))


def class_weights(cfg: TrainConfig, data: DataSplits, device: torch.device) -> torch.Tensor | None:
    """Cross-entropy weights n / (C * count_c) from the training split (sklearn's "balanced"), or None.

    Counted on the rows the loss sees: after balance=oversample every class is equally frequent
    and the weights are 1; balance=batches draws every class equally, so weighting on top would
    correct the imbalance twice and none is used.
    """
    if cfg.class_weight == "none" or cfg.balance == "batches":
        return None
    from sklearn.utils.class_weight import compute_class_weight

    present = np.unique(data.train.y)
    weights = np.ones(data.n_classes, np.float32)   # a class missing from training: no count to invert
    weights[present] = compute_class_weight("balanced", classes=present, y=data.train.y)
    return torch.as_tensor(weights, device=device)


def _batches(cfg: TrainConfig, y: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    if cfg.balance == "batches":
        return balanced_batches(y, cfg.batch_size, rng)
    order = rng.permutation(len(y))
    return [order[i:i + cfg.batch_size] for i in range(0, len(y), cfg.batch_size)]


def _train_epoch(cfg: TrainConfig, model: nn.Module, opt: torch.optim.Optimizer, t: _Tensors,
                 y_np: np.ndarray, rng: np.random.Generator) -> tuple[float, float, float]:
    """One pass over the training split: (train loss, train accuracy, mean pre-clip gradient norm).

    With class weights the logged train loss is the weighted one the optimizer minimises; the
    validation and test losses stay unweighted, so val_loss means the same in every run of a
    search, whatever its class_weight, and runs stay comparable on it.
    """
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
        loss = nn.functional.cross_entropy(logits, yb, weight=t.weight)
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
                data: DataSplits | None = None, selection: Selection | None = None) -> TrainResult:
    """Train one model from `cfg`; every epoch goes to `callbacks`, in order.

    `selection` says which epoch's weights are kept (and tested): by default the best of the
    smoothed val loss (training.selection explains why not the single best epoch).

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
    t = _to_tensors(cfg, data, device)
    selection = selection or Selection()
    result = TrainResult(cfg, "completed", [], model, data, selection=selection)
    tracker = selection.tracker()
    if cfg.sanity_check:
        result.sanity = sanity_check(model, t.x_train, t.y_train, data.n_classes)
        for cb in callbacks:
            cb.on_sanity(result.sanity)
    opt = make_optimizer(cfg, [p for p in model.parameters() if p.requires_grad])
    rng = np.random.default_rng(cfg.seed)
    start = time.perf_counter()
    for epoch in range(cfg.epochs):
        if interrupts.requested():   # SIGINT/SIGTERM: stop between epochs, everything so far kept
            result.status, result.stop_reason = "stopped", interrupts.STOP_REASON
            break
        if _run_epoch(cfg, epoch, model, opt, t, data, rng, result, callbacks, tracker):
            break
    result.seconds = time.perf_counter() - start
    if result.best_state:
        model.load_state_dict(result.best_state)
    if len(data.test):
        result.set_test(evaluate(model, t.x_test, t.y_test, data.n_classes))
    for cb in callbacks:
        cb.on_train_end(result)
    return result


def _run_epoch(cfg: TrainConfig, epoch: int, model: Network, opt: torch.optim.Optimizer, t: _Tensors,
               data: DataSplits, rng: np.random.Generator, result: TrainResult,
               callbacks: Sequence[TrainCallback], tracker: Tracker) -> bool:
    """One epoch plus bookkeeping; returns True when training must stop."""
    tic = time.perf_counter()
    lr = opt.param_groups[0]["lr"]
    try:
        train_loss, train_acc, grad_norm = _train_epoch(cfg, model, opt, t, data.train.y, rng)
        val = evaluate(model, t.x_val, t.y_val, data.n_classes)
    except NonFiniteLoss as exc:
        result.status, result.stop_reason = "nonfinite", f"non-finite value at epoch {epoch}: {exc}"
        nan = math.nan
        record = EpochRecord(epoch, nan, nan, nan, nan, lr, nan, time.perf_counter() - tic,
                             val_auc=nan if has_auc(data.val.y, data.n_classes) else None)
        result.history.append(record)
        for cb in callbacks:
            cb.on_epoch_end(record, result.history)
        return True
    val_loss, val_acc = val.loss, val.accuracy
    # epoch_seconds includes the class-balance metrics: their cost shows in every run's numbers
    record = EpochRecord(epoch, train_loss, val_loss, train_acc, val_acc, lr, grad_norm,
                         time.perf_counter() - tic, val.f1, val.balanced_accuracy, val.auc)
    result.history.append(record)
    if not math.isfinite(val_loss):
        result.status, result.stop_reason = "nonfinite", f"validation loss {val_loss} at epoch {epoch}"
    elif tracker.update(getattr(record, result.selection.metric)):
        result.best_val_loss, result.best_val_accuracy, result.best_epoch = val_loss, val_acc, epoch
        result.objective = tracker.value
        result.best_state = copy.deepcopy(model.state_dict())
    reasons = [r for cb in callbacks if (r := cb.on_epoch_end(record, result.history))]
    if result.status == "nonfinite":
        return True
    if reasons:
        result.status, result.stop_reason = "stopped", reasons[0]
        return True
    patience = cfg.early_stopping_patience
    # patience counts from the kept epoch (the selection's improvement); `last` keeps every epoch,
    # so there it counts from the raw best val loss
    best = result.best_epoch if result.selection.how != "last" else int(np.argmin([r.val_loss for r in result.history]))
    if patience and epoch - best >= patience:
        metric = result.selection.metric if result.selection.how != "last" else "val_loss"
        result.status = "early_stopped"
        result.stop_reason = f"no {metric} improvement for {patience} epochs (best at epoch {best})"
        return True
    new_lr = plateau_decay([r.val_loss for r in result.history], lr, cfg.lr_decay, cfg.lr_patience)
    for group in opt.param_groups:
        group["lr"] = new_lr
    return False
