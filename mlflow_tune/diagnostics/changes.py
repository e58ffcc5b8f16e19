"""Advice as a config change: what `mlflow-tune fix` and bench/diagnostics/repair.py apply.

The advice texts (diagnostics.advice) name the parameter and its new value ("lower dropout 0.9 ->
0.7", "raise the learning rate 0.000578 -> 0.00578 (x10)"); this reads them back into TrainConfig
values.  Advice that no config value carries out ("more training data", "check input scaling") maps
to None, and the first advice that does is the one applied.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

_NUMBER = r"([0-9][0-9.e+-]*)"
# (pattern, TrainConfig field, type): the value after '->' is the new one
_ARROWS = (
    (rf"learning rate {_NUMBER} -> {_NUMBER}", "lr", float),
    (rf"dropout {_NUMBER} -> {_NUMBER}", "dropout", float),
    (rf"weight decay \(L2\) {_NUMBER} -> {_NUMBER}", "weight_decay", float),
    (rf"epochs {_NUMBER} -> {_NUMBER}", "epochs", int),
    (rf"hidden_units {_NUMBER} -> {_NUMBER}", "hidden_units", int),
    (rf"layers {_NUMBER} -> {_NUMBER}", "layers", int),
    (rf"momentum {_NUMBER} -> {_NUMBER}", "momentum", float),
    (rf"batch size {_NUMBER} -> {_NUMBER}", "batch_size", int),
    (rf"grad_clip {_NUMBER} -> {_NUMBER}", "grad_clip", float),
)
_FIXED: tuple[tuple[str, dict[str, Any]], ...] = (
    ("add dropout 0.5", {"dropout": 0.5}),
    ("add weight decay (L2)", {"weight_decay": 1e-4}),
    ("clip gradients at global norm 5", {"grad_clip": 5.0}),
    ("switch to an adaptive optimizer: adam (lr 0.001)", {"optimizer": "adam", "lr": 1e-3}),
    # early stopping keeps the best epoch's weights and stops 3 epochs after it (the selection
    # already keeps the best weights; the stop saves the rest of the budget)
    ("early stopping on validation loss", {"early_stopping_patience": 3}),
    ("oversample the minority classes", {"balance": "oversample"}),
    ("or keep classes balanced within mini-batches", {"balance": "batches"}),
    ("or weight the loss by class", {"class_weight": "balanced"}),
)


def advice_change(text: str) -> dict[str, Any] | None:
    """The TrainConfig values one piece of advice sets, or None when no config value carries it out."""
    for prefix, values in _FIXED:
        if text.startswith(prefix):
            return dict(values)
    for pattern, name, kind in _ARROWS:
        found = re.search(pattern, text)
        if found:
            try:
                return {name: kind(float(found.group(2)))}
            except ValueError:
                return None
    if text.startswith("as the best sibling"):   # diagnostics.siblings: a value as the best sibling had it
        found = re.search(r"\): ([a-z_]+) (\S+) -> (\S+)$", text)
        if found:
            return {found.group(1): found.group(3)}
    if text.startswith("train longer") and "->" not in text:
        return None   # no epochs known to double
    return None


def first_change(advice: Iterable[str]) -> tuple[str, dict[str, Any]] | None:
    """The first piece of advice a config change carries out, with that change."""
    for text in advice:
        change = advice_change(text)
        if change:
            return text, change
    return None
