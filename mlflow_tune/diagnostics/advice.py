"""Ordered advice for a diagnosis, naming concrete values from the run's own parameters.

The playbook is ../shared/PRACTICE.md ("Reading the curves", "Starting values from experience"):
underfit -> more capacity, less dropout / L2, train longer, a larger learning rate; no better than the
majority class -> oversample or balance batches or weight the loss, select on F1; overfit -> more
dropout or L2, more data, early stopping, a smaller model; nonconvergent -> learning rate x0.1,
gradient clipping at global norm 5-15, an adaptive optimizer, check input scaling and labels; for
recurrent models a smaller learning rate.  Parameters may be strings (MLflow stores params as text).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

Params = Mapping[str, object]

# dropout is tuned on a linear scale 0.3, 0.5, 0.7 (PRACTICE.md); we step along this ladder
_DROPOUT_LADDER = (0.0, 0.1, 0.3, 0.5, 0.7, 0.9)
_ADAPTIVE = ("adam", "adamw", "rmsprop", "adadelta")
# The usual learning rate per optimizer (PRACTICE.md: 1, 0.1, 0.01, 0.001; the adaptive optimizers'
# published defaults): advice about the lr is checked against it, so that a run stuck with a small
# step is never told to shrink it (issue 13: momentum SGD at 0.000578 was told 5.78e-05).
TYPICAL_LR = {"adam": 1e-3, "adamw": 1e-3, "rmsprop": 1e-3, "adadelta": 1.0, "sgd": 0.1, "momentum": 0.01}
# below a third of it the lr is small (a stall is then likely too small a step); above 10x it is
# large (a stall or a divergence is then likely too big a step)
LR_LOW, LR_HIGH = 1 / 3, 10.0


def num(params: Params | None, key: str) -> float | None:
    """A numeric param, accepting MLflow's strings; None when absent or not a finite number."""
    if params is None or key not in params:
        return None
    raw = params[key]
    if isinstance(raw, bool):
        return None
    try:
        value = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def text(params: Params | None, key: str) -> str:
    if params is None or params.get(key) is None:
        return ""
    return str(params[key]).strip().lower()


def fmt(x: float) -> str:
    """Short human form: 0.5, 0.001, 1e-05, 64."""
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e6 else f"{x:.3g}"


def lr_position(params: Params | None) -> str:
    """'low', 'high' or 'usual' against TYPICAL_LR for the run's optimizer ('' when lr is unknown;
    an optimizer we do not know, e.g. another tool's run, is judged against Adam's 1e-3)."""
    lr = num(params, "lr")
    if lr is None:
        return ""
    typical = TYPICAL_LR.get(text(params, "optimizer"), 1e-3)
    return "low" if lr < LR_LOW * typical else "high" if lr > LR_HIGH * typical else "usual"


def _step(value: float, up: bool) -> float:
    lower = [d for d in _DROPOUT_LADDER if d < value - 1e-9]
    higher = [d for d in _DROPOUT_LADDER if d > value + 1e-9]
    if up:
        return higher[0] if higher else value
    return lower[-1] if lower else value


def underfit_advice(params: Params | None, still_improving: bool) -> tuple[str, ...]:
    out: list[str] = []
    dropout, wd = num(params, "dropout"), num(params, "weight_decay")
    units, layers = num(params, "hidden_units"), num(params, "layers")
    epochs, lr = num(params, "epochs"), num(params, "lr")
    if still_improving:
        out.append(f"train longer: epochs {fmt(epochs)} -> {fmt(2 * epochs)}" if epochs else "train longer")
    # the strongest regulariser first: it is the likeliest cause when it is far above the usual values
    if dropout is not None and dropout >= 0.5:
        out.append(f"lower dropout {fmt(dropout)} -> {fmt(_step(dropout, up=False))}")
    if wd is not None and wd >= 1e-2:
        out.append(f"lower weight decay (L2) {fmt(wd)} -> {fmt(wd / 10)} (x0.1)")
    if units is not None and units >= 1024:
        pass   # PRACTICE.md: over 1000 units is rare; more layers instead
    elif units is not None:  # PRACTICE.md: 16, 32, 128 units are typical, over 1000 rare
        out.append(
            f"more units: hidden_units {fmt(units)} -> {fmt(min(1024.0, units * (4 if units < 32 else 2)))}"
        )
    else:
        out.append("more units per layer")
    out.append(
        f"more layers: layers {fmt(layers)} -> {fmt(layers + 1)}" if layers is not None else "more layers"
    )
    if dropout is not None and 0 < dropout < 0.5:
        out.append(f"lower dropout {fmt(dropout)} -> {fmt(_step(dropout, up=False))}")
    if wd is not None and 1e-3 <= wd < 1e-2:  # below 1e-3 L2 hardly limits an MLP's fit
        out.append(f"lower weight decay (L2) {fmt(wd)} -> {fmt(wd / 10)} (x0.1)")
    if not still_improving:
        out.append(f"train longer: epochs {fmt(epochs)} -> {fmt(2 * epochs)}" if epochs else "train longer")
    # one step of the log grid 0.001, 0.01, 0.1, 1 is x10; x3 is half a step, safer when raising;
    # first after 'train longer' when the lr is small for its optimizer, never when it is large
    where = lr_position(params)
    if where == "low" and lr:
        out.insert(1 if still_improving else 0, f"raise the learning rate {fmt(lr)} -> {fmt(lr * 3)} (x3): "
                   "small for this optimizer")
    elif where != "high":
        out.append(f"raise the learning rate {fmt(lr)} -> {fmt(lr * 3)} (x3)" if lr else "raise the learning rate")
    return tuple(out)


def majority_advice(params: Params | None) -> tuple[str, ...]:
    """No better than always answering the majority class.  PRACTICE.md, class balance: try the natural
    ratio and an oversampled minority, keep classes balanced within mini-batches; and judge the run on a
    metric that the majority class cannot win alone."""
    balance, weight = text(params, "balance") or "none", text(params, "class_weight") or "none"
    out: list[str] = []
    if balance == "none":
        out.append("oversample the minority classes: balance=oversample")
        out.append("or keep classes balanced within mini-batches: balance=batches")
        if weight == "none":
            out.append("or weight the loss by class: class_weight=balanced")
    else:  # the training classes are balanced already: the signal, not the ratio, is missing
        out.append(f"classes are already balanced in training (balance={balance}): check that the features "
                   "predict the label")
    out.append("tune and select on val_f1 or val_balanced_accuracy: accuracy rewards the majority class")
    # then capacity: a model too small to separate the minority also ends at the majority rate
    out.extend(a for a in underfit_advice(params, still_improving=False) if a.startswith(("more", "lower")))
    return tuple(out[:6])


def overfit_advice(params: Params | None, best_epoch: int | None) -> tuple[str, ...]:
    out: list[str] = []
    dropout, wd = num(params, "dropout"), num(params, "weight_decay")
    units, layers = num(params, "hidden_units"), num(params, "layers")
    if dropout is None:
        out.append("add dropout 0.5")
    elif dropout < 0.5:  # from little or none straight to 0.3, the first value of the usual grid
        out.append(f"raise dropout {fmt(dropout)} -> {fmt(max(0.3, _step(dropout, up=True)))}")
    # dropout >= 0.5 is already high (PRACTICE.md: 0.5 typical): L2, data and a smaller model instead
    if wd is None:
        out.append("add weight decay (L2), e.g. 1e-4 and up on a log scale")
    elif wd < 1.0:  # PRACTICE.md: L2 up to 1.0
        out.append(f"raise weight decay (L2) {fmt(wd)} -> {fmt(wd * 10 if wd > 0 else 1e-4)}")
    out.append("more training data or data augmentation")
    where = f" (best validation loss at epoch {best_epoch})" if best_epoch is not None else ""
    out.append(f"early stopping on validation loss{where}")
    if units is not None and units > 16:
        out.append(f"smaller model: hidden_units {fmt(units)} -> {fmt(units / 2)}")
    if layers is not None and layers > 1:
        out.append(f"smaller model: layers {fmt(layers)} -> {fmt(layers - 1)}")
    if units is None and layers is None:
        out.append("smaller model (fewer units or layers)")
    return tuple(out)


def _lr_move(lr: float, usual: float | None, optimizer: str, up: bool) -> str:
    """One step of x10 on the log grid; straight to the usual value for a known optimizer when the lr
    is more than a step beyond it (lr 30 with SGD: 0.1, not 3, which diverges as well; changed after
    bench/diagnostics/repair.py's first run, see its README)."""
    if usual is not None and (lr * 10 < usual if up else lr / 10 > usual):
        verb = "raise" if up else "lower"
        return f"{verb} the learning rate {fmt(lr)} -> {fmt(usual)} (the usual for {optimizer})"
    return f"raise the learning rate {fmt(lr)} -> {fmt(lr * 10)} (x10)" if up else \
        f"lower the learning rate {fmt(lr)} -> {fmt(lr / 10)} (x0.1)"


def nonconvergent_advice(params: Params | None, detail: str) -> tuple[str, ...]:
    out: list[str] = []
    lr, clip, wd = num(params, "lr"), num(params, "grad_clip"), num(params, "weight_decay")
    momentum, batch = num(params, "momentum"), num(params, "batch_size")
    optimizer, model = text(params, "optimizer"), text(params, "model")
    tiny_lr = lr is not None and lr <= (1e-5 if optimizer in _ADAPTIVE else 1e-4)
    if detail == "stalled" and wd is not None and wd >= 0.1:
        out.append(
            f"lower weight decay (L2) {fmt(wd)} -> {fmt(wd / 10)} (x0.1): it can pin the weights at zero"
        )
    dropout = num(params, "dropout")
    if detail == "stalled" and dropout is not None and dropout >= 0.5:
        out.append(
            f"lower dropout {fmt(dropout)} -> {fmt(_step(dropout, up=False))}: it can keep the fit at chance"
        )
    where = lr_position(params)
    usual = TYPICAL_LR.get(optimizer)
    if detail == "stalled" and lr is not None and (tiny_lr or where == "low"):
        out.append(_lr_move(lr, usual, optimizer, up=True) + ": the loss barely moves")
    elif detail == "stalled" and where == "usual":
        pass   # neither too small nor too large a step: regularisation, the optimizer or the data first
    elif lr is not None:  # the learning rate matters most (PRACTICE.md)
        out.append(_lr_move(lr, usual, optimizer, up=False))
    else:
        out.append("lower the learning rate (x0.1)")
    if model == "rnn":
        out.append(
            "recurrent model: keep the learning rate small (x0.1 again if it still fails) and clip gradients"
        )
    stuck_small = detail == "stalled" and (tiny_lr or where == "low")  # clipping cannot help tiny steps
    if (clip is None or clip <= 0) and not stuck_small:
        out.append("clip gradients at global norm 5")
    elif clip is not None and clip > 15 and not stuck_small:
        out.append(f"clip gradients tighter: grad_clip {fmt(clip)} -> 10")
    if momentum is not None and momentum >= 0.95 and optimizer not in _ADAPTIVE:
        out.append(f"lower momentum {fmt(momentum)} -> 0.9")
    elif (momentum is not None and momentum >= 0.9 and optimizer == "momentum" and batch is not None
          and batch < 16 and detail != "stalled"):   # tiny batches: high momentum amplifies their noise
        out.append(f"lower momentum {fmt(momentum)} -> 0.5 (batch size {fmt(batch)})")
    if batch is not None and batch < 16:  # PRACTICE.md: around 128; very small batches can hurt
        out.append(f"raise batch size {fmt(batch)} -> {fmt(max(32.0, batch * 8))}")
    if optimizer not in _ADAPTIVE:
        out.append("switch to an adaptive optimizer: adam (lr 0.001) or rmsprop")
    out.append("check input scaling (standardise features) and the labels")
    out.append("check that the model can overfit one small batch")
    return tuple(out)
