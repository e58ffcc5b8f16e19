"""What every check of a diagnosis reads: the curves, the chance reference, the run's params."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from mlflow_tune.diagnostics import advice as adv
from mlflow_tune.diagnostics.curves import Curves, Diagnosis


def conf(value: float, threshold: float, scale: float) -> float:
    """0.5 at the threshold, rising linearly with the margin, capped at 0.99."""
    if not math.isfinite(value):
        return 0.99
    return max(0.5, min(0.99, 0.5 + 0.5 * (value - threshold) / scale))


@dataclass(frozen=True)
class Ctx:
    c: Curves
    n_classes: int | None
    loss: tuple[float, ...]  # train loss if logged, else val loss
    loss_name: str
    ref: float  # chance loss ln(C), else the first logged loss
    ref_name: str
    params: Mapping[str, object] | None
    n_val: int | None = None   # validation rows: the sampling noise its accuracy carries


def context(curves: Curves, n_classes: int | None, params: Mapping[str, object] | None,
            n_val: int | None = None) -> Ctx:
    if n_classes is None:
        guess = adv.num(params, "n_classes")
        n_classes = int(guess) if guess and guess >= 2 else None
    loss, name = (curves.train_loss, "train loss") if curves.train_loss else (curves.val_loss, "val loss")
    if n_classes and n_classes >= 2:
        return Ctx(
            curves, n_classes, loss, name, math.log(n_classes), f"ln(C)={math.log(n_classes):.3g}", params, n_val
        )
    first = loss[0] if loss and math.isfinite(loss[0]) and loss[0] > 0 else 1.0
    return Ctx(curves, None, loss, name, first, f"first {name} {first:.3g}", params, n_val)


def nonconvergent(ctx: Ctx, detail: str, confidence: float, evidence: str) -> Diagnosis:
    return Diagnosis("nonconvergent", detail, confidence, evidence, adv.nonconvergent_advice(ctx.params, detail))
