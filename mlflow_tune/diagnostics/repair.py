"""`fix --until-healthy`: which change to try next, given the rounds already tried.

Round 1 applies the diagnosis's first advice that a config value carries out (changes.first_change,
what `fix` always did).  Each later round re-diagnoses the retrained run and picks again, on top of
every earlier change, with two rules an expert follows and one advice list alone does not:

- **a step that did not cure is made bigger, not repeated**: when the label stayed the same and the
  new first advice moves the same parameter the same way again (epochs 4 -> 8 and still cut short:
  8 -> 16 is proposed), the step is doubled on its own scale (8 -> 32);
- **overfitting that one step of regularisation did not cure gets the next lever**, in PRACTICE.md's
  order after dropout: early stopping at the best epoch, stronger L2 (x10, up to 1.0), a smaller model,
  more data where `subsample` < 1.  bench/diagnostics/repair.py measured why: with the advice list
  alone, overfit runs (40 training rows, 40 % label noise) went dropout 0 -> 0.3 -> 0.5 -> L2 1e-4 and
  1 of 20 was healthy after three rounds.

A configuration already trained is never proposed again (no cycles between two changes).
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mlflow_tune.diagnostics import advice as adv
from mlflow_tune.diagnostics.changes import advice_change

# the parameters whose steps are multiplicative (log scale); the others step linearly
_LOG_SCALE = ("lr", "weight_decay", "epochs", "hidden_units", "batch_size", "grad_clip")
# bounds TrainConfig accepts (a doubled step is clipped to them): dropout < 1, momentum < 1, L2 <= 1
_UPPER = {"dropout": 0.9, "momentum": 0.99, "weight_decay": 1.0, "epochs": 1000, "hidden_units": 2048}
_INTS = ("epochs", "hidden_units", "batch_size", "layers", "early_stopping_patience")
EARLY_STOP_PATIENCE = 3   # as the advice mapping (changes._FIXED): a few epochs past the best


@dataclass(frozen=True)
class Round:
    """One trained configuration and what its diagnosis said; the first is the run being fixed."""
    params: Mapping[str, Any]
    label: str
    detail: str
    advice: tuple[str, ...]
    change: Mapping[str, Any] = field(default_factory=dict)   # what this round changed (empty: the original)
    score: float | None = None   # its best validation accuracy, when logged


CAPACITY = ("hidden_units", "layers")


def at_floor(rounds: Sequence[Round], n_val: int | None = None) -> str:
    """Why the chain should stop at the data's floor, or '': the last round gave an underfit run more
    capacity and its validation accuracy did not move beyond the noise of the validation set (2
    standard errors of the difference of two accuracies, at least a point).  The loss the rules read as
    high bias is then the data's own error (label noise, overlapping classes: moons with noise 0.25
    keeps 0.25-0.29x ln 2 at its best), and no config value changes it.  The bigger round is the
    reference a single run lacks (diagnostics.siblings)."""
    if len(rounds) < 2:
        return ""
    now, before = rounds[-1], rounds[-2]
    grew = [k for k in CAPACITY if k in now.change and (adv.num(now.params, k) or 0) > (adv.num(before.params, k) or 0)]
    if (now.label, now.detail) != ("underfit", "high_bias") or before.label != "underfit" or not grew:
        return ""
    if now.score is None or before.score is None:
        return ""
    p = min(max(max(now.score, before.score), 0.0), 1.0)
    noise = max(0.01, 2 * math.sqrt(2 * p * (1 - p) / n_val)) if n_val else 0.01
    if now.score - before.score >= noise:
        return ""
    what = ", ".join(f"{k} {adv.fmt(adv.num(before.params, k) or 0)} -> {adv.fmt(adv.num(now.params, k) or 0)}"
                     for k in grew)
    return (f"at the data's floor: more capacity ({what}) moved val accuracy {before.score:.4g} -> {now.score:.4g} "
            f"(< {noise:.2g}, the noise of {n_val or 'the'} val rows): the loss left is the data's, not the model's")


def _key(params: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """A configuration compared as MLflow stores it (text), so '0.3' and 0.3 are the same run."""
    def norm(v: Any) -> str:
        try:
            return repr(float(v))
        except (TypeError, ValueError):
            return str(v).strip().lower()
    return tuple(sorted((k, norm(v)) for k, v in params.items()))


def _bigger(name: str, old: float, new: float) -> float:
    """The same move, twice as far on the parameter's own scale, clipped to what TrainConfig takes."""
    log = name in _LOG_SCALE and old > 0 and new > 0
    value = old * (new / old) ** 2 if log else old + 2 * (new - old)
    value = min(max(value, 0.0), _UPPER.get(name, math.inf))
    return float(round(value)) if name in _INTS else float(f"{value:.3g}")


def _enlarge(text: str, change: dict[str, Any], before: Mapping[str, Any], now: Mapping[str, Any]
             ) -> tuple[str, dict[str, Any]]:
    """Double the step of every value that moves a parameter on, the way the last round moved it from
    `before` to `now` (the label stayed: that step was too small).  The text names the new value, so
    changes.advice_change still reads it back as the change."""
    out, said = dict(change), []
    for name, value in change.items():
        a, b = adv.num(before, name), adv.num(now, name)
        if a is None or b is None or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if (value - b) * (b - a) > 0:
            bigger = _bigger(name, b, float(value))
            if name == "lr":   # never past the optimizer's usual step: beyond it lies divergence
                usual = adv.TYPICAL_LR.get(adv.text(now, "optimizer"), 1e-3)
                bigger = min(bigger, max(value, usual)) if value > b else max(bigger, min(value, usual))
                if bigger == value:
                    continue
            out[name] = int(bigger) if name in _INTS else bigger
            text = re.sub(r" \(x[0-9.]+\)", "", text.replace(f"{adv.fmt(b)} -> {adv.fmt(value)}",
                                                             f"{adv.fmt(b)} -> {adv.fmt(bigger)}", 1))
            said.append(f"{adv.fmt(a)} -> {adv.fmt(b)} was not enough")
    return (f"{text} (a bigger step: {', '.join(said)})" if said else text), out


def overfit_levers(params: Mapping[str, Any], best_epoch: int | None = None) -> list[tuple[str, dict[str, Any]]]:
    """The next levers against overfitting, in order, each as (advice text, change); only those not in
    effect yet."""
    out: list[tuple[str, dict[str, Any]]] = []
    patience = adv.num(params, "early_stopping_patience")
    if not patience:
        at = f" (best validation loss at epoch {best_epoch})" if best_epoch is not None else ""
        out.append((f"early stopping on validation loss{at}: stop {EARLY_STOP_PATIENCE} epochs after the best",
                    {"early_stopping_patience": EARLY_STOP_PATIENCE}))
    wd = adv.num(params, "weight_decay") or 0.0
    if wd < 1.0:
        new = min(1.0, max(wd * 10, 1e-3))   # from none or a token 1e-4 straight to 1e-3, then x10
        out.append((f"stronger weight decay (L2) {adv.fmt(wd)} -> {adv.fmt(new)}", {"weight_decay": new}))
    dropout = adv.num(params, "dropout") or 0.0
    if dropout < 0.5:
        out.append((f"raise dropout {adv.fmt(dropout)} -> 0.5", {"dropout": 0.5}))
    units, layers = adv.num(params, "hidden_units"), adv.num(params, "layers")
    if layers is not None and layers > 1:
        out.append((f"smaller model: layers {adv.fmt(layers)} -> {adv.fmt(layers - 1)}", {"layers": int(layers - 1)}))
    if units is not None and units > 16:
        out.append((f"smaller model: hidden_units {adv.fmt(units)} -> {adv.fmt(units / 2)}",
                    {"hidden_units": int(units // 2)}))
    subsample = adv.num(params, "subsample")
    if subsample is not None and 0 < subsample < 1:
        new = min(1.0, 2 * subsample)
        out.append((f"more data: subsample {adv.fmt(subsample)} -> {adv.fmt(new)}", {"subsample": new}))
    return out


def _candidates(rounds: Sequence[Round]) -> list[tuple[str, dict[str, Any]]]:
    now = rounds[-1]
    found = [(text, change) for text in now.advice if (change := advice_change(text))]
    stuck = len(rounds) > 1 and rounds[-2].label == now.label
    if now.label == "overfit" and stuck:
        return overfit_levers(now.params) + found
    if stuck:
        found = [_enlarge(text, change, rounds[-2].params, now.params) for text, change in found]
    # Tried and dropped: a run still not converging after a step-size change taking the other levers
    # (momentum, batch size, clipping) before the learning rate again.  bench/diagnostics/repair.py:
    # the nonconvergent runs healthy within 3 rounds fell from 110/128 to 104/128 (NaN 29 -> 24 of 34).
    return found


def next_change(rounds: Sequence[Round], allowed: Collection[str] | None = None
                ) -> tuple[str, dict[str, Any]] | None:
    """The next change to train (advice text, config values), or None when nothing is left to try.

    `rounds[0]` is the run being fixed, each later one a retrained run, `rounds[-1]` the one to fix now;
    `allowed`: the config fields a change may set (None: any)."""
    seen = {_key(r.params) for r in rounds}
    now = rounds[-1].params
    for text, change in _candidates(rounds):
        after = {**now, **change}
        if allowed is not None and not set(change) <= set(allowed):
            continue
        if _key(after) in seen:
            continue
        return text, change
    return None
