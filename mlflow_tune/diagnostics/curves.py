"""The curves a diagnosis reads and the diagnosis it returns (pure data, no torch or mlflow)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields

LABELS = ("healthy", "underfit", "overfit", "nonconvergent")


@dataclass(frozen=True, init=False)
class Curves:
    """Per-epoch values; index i is epoch i.  Any sequence is accepted and stored as a tuple of float
    (None or text that is not a number becomes NaN); empty means the metric was not logged."""

    train_loss: tuple[float, ...]
    val_loss: tuple[float, ...]
    train_accuracy: tuple[float, ...]
    val_accuracy: tuple[float, ...]
    lr: tuple[float, ...]
    grad_norm: tuple[float, ...]
    val_balanced_accuracy: tuple[float, ...]

    def __init__(
        self,
        train_loss: Sequence[float | None] = (),
        val_loss: Sequence[float | None] = (),
        train_accuracy: Sequence[float | None] = (),
        val_accuracy: Sequence[float | None] = (),
        lr: Sequence[float | None] = (),
        grad_norm: Sequence[float | None] = (),
        val_balanced_accuracy: Sequence[float | None] = (),
    ) -> None:
        given = (train_loss, val_loss, train_accuracy, val_accuracy, lr, grad_norm, val_balanced_accuracy)
        for f, raw in zip(fields(self), given, strict=True):
            object.__setattr__(self, f.name, tuple(_to_float(v) for v in raw or ()))


def _to_float(v: object) -> float:
    try:
        return float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan


@dataclass(frozen=True)
class Diagnosis:
    label: str  # one of LABELS or "unknown"
    detail: str
    confidence: float
    evidence: str
    advice: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        return {
            "label": self.label,
            "detail": self.detail,
            "confidence": round(self.confidence, 3),
            "evidence": self.evidence,
            "advice": list(self.advice),
        }


def advice_line(d: Diagnosis) -> str:
    """The advice as one line for the ``mlflow_tune.advice`` tag (at most 500 characters)."""
    line = "; ".join(d.advice)
    return line if len(line) <= 500 else line[:497] + "..."
