"""Coarse to fine: narrow a space around the best trials, and move it as their diagnoses suggest.

Both functions are pure: they take a :class:`Space` and plain trial values and return a new Space.
Every range is handled on the parameter's own scale (log for loguniform/qloguniform/logint), and
never leaves the bounds of the ``original`` space the user wrote.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from mlflow_tune.config.space import INT_KINDS, QUANTISED_KINDS, Param, Space, round_sig

MIN_WIDTH = 0.05   # a narrowed range spans at least this fraction of the original (on its scale)
CAPACITY = ("layers", "hidden_units", "embedding_dim")
REGULARISATION = ("dropout", "weight_decay")
ADAPTIVE_OPTIMIZERS = ("adam", "adamw", "rmsprop", "adadelta")


def narrow(space: Space, top: Sequence[Mapping[str, Any]], margin: float = 0.25,
           original: Space | None = None) -> Space:
    """The space around the ``top`` trials' values (params as dicts; MLflow strings are fine).

    A numeric range becomes [min, max] of the top values widened by ``margin * (max - min)`` on
    each side, on the parameter's scale; at least ``MIN_WIDTH`` of the original range wide; clipped
    to the original bounds; integer and quantised ranges keep at least one step. A choice keeps the
    values that appear among the top trials, in their original order. A parameter no top trial
    carries is left as it is.
    """
    if margin < 0:
        raise ValueError(f"margin must be at least 0, got {margin=}")
    params = []
    for param in space.params:
        bounds = _bounds(param, original)
        values = [t[param.name] for t in top if t.get(param.name) is not None]
        if not values:
            params.append(param)
        elif param.kind == "choice":
            params.append(_keep_choices(param, values, bounds))
        else:
            params.append(_narrow_numeric(param, values, margin, bounds))
    return Space(tuple(params))


def _bounds(param: Param, original: Space | None) -> Param:
    """The param as the user first wrote it (same kind), or ``param`` itself."""
    if original is not None and param.name in original:
        first = original.get(param.name)
        if first.kind == param.kind:
            return first
    return param


def _keep_choices(param: Param, values: Sequence[Any], bounds: Param) -> Param:
    seen = set()
    for value in values:
        try:
            seen.add(bounds.index_of(value))
        except ValueError:   # a value outside the space (held fixed elsewhere): no evidence here
            continue
    kept = tuple(c for i, c in enumerate(bounds.choices) if i in seen)
    return Param(param.name, "choice", choices=kept, free=param.free) if kept else param


def _narrow_numeric(param: Param, values: Sequence[Any], margin: float, bounds: Param) -> Param:
    assert bounds.low is not None and bounds.high is not None
    natural = [min(max(float(v), bounds.low), bounds.high) for v in values]
    scaled = [to_scale(param, v) for v in natural]
    low, high = min(scaled), max(scaled)
    span = high - low
    low, high = low - margin * span, high + margin * span
    blo, bhi = scaled_bounds(bounds)
    min_width = MIN_WIDTH * (bhi - blo)
    if high - low >= min_width:
        return _rebuild(param, low, high, bounds)
    centre = (low + high) / 2   # too narrow: the minimum width around the centre, slid inside
    return _rebuild(param, centre - min_width / 2, centre + min_width / 2, bounds, slide=True)


def _rebuild(param: Param, low: float, high: float, bounds: Param, *, slide: bool = False) -> Param:
    """``param`` with scaled bounds [low, high] snapped to its steps and kept inside ``bounds``:
    clipped, or with ``slide`` moved back inside whole (a shifted range keeps its width)."""
    blo, bhi = scaled_bounds(bounds)
    if slide:
        width = min(high - low, bhi - blo)
        low, high = (low, low + width) if low >= blo else (blo, blo + width)
        low, high = (low, high) if high <= bhi else (bhi - width, bhi)
    low, high = max(low, blo), min(high, bhi)
    nlo, nhi = from_scale(param, low), from_scale(param, high)
    if param.kind in INT_KINDS or param.kind in QUANTISED_KINDS:
        first, last, step = bounds.grid_range()
        klo = min(max(round(nlo / step), first), last)
        khi = min(max(round(nhi / step), first), last)
        if khi <= klo:
            klo, khi = (klo, klo + 1) if klo + 1 <= last else (max(first, khi - 1), khi)
        if khi <= klo:   # the original has a single step: keep its bounds
            return Param(param.name, param.kind, bounds.low, bounds.high, bounds.q, free=param.free)
        nlo, nhi = klo * step, khi * step
    assert bounds.low is not None and bounds.high is not None
    if param.kind not in INT_KINDS:
        nlo, nhi = max(round_sig(nlo), bounds.low), min(round_sig(nhi), bounds.high)
    return Param(param.name, param.kind, nlo, nhi, param.q, free=param.free)


def adjust_for_diagnoses(space: Space, labels: Sequence[str], original: Space) -> tuple[Space, list[str]]:
    """Move ranges the way the top trials' diagnoses point (../shared/PRACTICE.md, "reading the curves").

    ``labels``: the diagnosis labels of the stage's top trials. More than half underfit: capacity
    up, regularisation down. More than half overfit: regularisation up. At least a third
    nonconvergent: lr down tenfold, clipping and adaptive optimizers preferred. A numeric range
    moves by its own width (lr: by a decade) on its scale, staying inside ``original``; a numeric
    choice moves its window of values the same way. Returns the new space and one reason a move.
    """
    n = len(labels)
    counts = Counter(labels)
    moves: list[tuple[str, str, str]] = []   # (why, parameter, up|down|decade|clip|adaptive)
    if counts["underfit"] * 2 > n:
        why = f"{counts['underfit']} of {n} top trials underfit"
        moves += [(why, name, "up") for name in CAPACITY]
        moves += [(why, name, "down") for name in REGULARISATION]
    if counts["overfit"] * 2 > n:
        why = f"{counts['overfit']} of {n} top trials overfit"
        moves += [(why, name, "up") for name in REGULARISATION]
    if counts["nonconvergent"] and counts["nonconvergent"] * 3 >= n:
        why = f"{counts['nonconvergent']} of {n} top trials nonconvergent"
        moves += [(why, "lr", "decade"), (why, "grad_clip", "clip"), (why, "optimizer", "adaptive")]
    reasons = []
    for why, name, how in moves:
        if name not in space:
            continue
        param = space.get(name)
        moved = _move(param, how, _bounds(param, original))
        if moved is None:
            continue
        if moved == param:
            reasons.append(f"{why}: {name} stays {describe(param)} (no room to move {how})")
        else:
            reasons.append(f"{why}: {name} {describe(param)} -> {describe(moved)}")
            space = space.replace(moved)
    return space, reasons


def _move(param: Param, how: str, bounds: Param) -> Param | None:
    """The moved param, or None where this kind of move does not apply to it."""
    if param.kind == "choice":
        return _move_choice(param, how, bounds)
    if how in ("clip", "adaptive"):
        return None
    low, high = scaled_bounds(param)
    if how == "decade":
        assert param.low is not None and param.high is not None
        low, high = to_scale(param, param.low / 10), to_scale(param, param.high / 10)
    else:
        shift = (high - low) * (1 if how == "up" else -1)
        low, high = low + shift, high + shift
    return _rebuild(param, low, high, bounds, slide=True)


def _move_choice(param: Param, how: str, bounds: Param) -> Param | None:
    if how == "clip":
        keep = [c for c in param.choices if c] or [c for c in bounds.choices if c]
    elif how == "adaptive":
        keep = ([c for c in param.choices if c in ADAPTIVE_OPTIMIZERS]
                or [c for c in bounds.choices if c in ADAPTIVE_OPTIMIZERS])
    elif not bounds.numeric_choices or not param.numeric_choices:
        return None
    else:   # shift the window of sorted values by its own size (a decade for lr, one step)
        values = sorted(bounds.choices)
        idx = [values.index(c) for c in param.choices if c in values] or [0]
        first, size = min(idx), max(idx) - min(idx) + 1
        step = 1 if how == "decade" else size
        first = first + step if how == "up" else first - step
        first = min(max(first, 0), len(values) - size)
        window = values[first:first + size]
        keep = [c for c in bounds.choices if c in window]
    return Param(param.name, "choice", choices=tuple(keep), free=param.free) if keep else param


def scaled_bounds(param: Param) -> tuple[float, float]:
    """(low, high) on the parameter's own scale: natural log for log kinds, as-is otherwise."""
    assert param.low is not None and param.high is not None
    return to_scale(param, param.low), to_scale(param, param.high)


def to_scale(param: Param, value: float) -> float:
    return math.log(value) if param.log_scale else value


def from_scale(param: Param, value: float) -> float:
    return math.exp(value) if param.log_scale else value


def describe(param: Param) -> str:
    """A short human form of a range: ``16..64`` or ``{adam, rmsprop}``."""
    if param.kind == "choice":
        return "{" + ", ".join(str(c) for c in param.choices) + "}"
    return f"{param.low:g}..{param.high:g}"
