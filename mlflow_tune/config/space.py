"""Search spaces: the YAML ``space:`` spec, validated, and its hyperopt and grid forms.

A :class:`Space` is a tuple of :class:`Param` entries, one per TrainConfig field being searched.
Bounds are always in natural units (``lr: {loguniform: [1e-4, 1]}``); the scale a parameter is
searched on (log or linear) is part of its kind. Narrowing between stages lives in
``narrowing.py``. hyperopt is imported inside functions only, so the CLI starts fast.
"""

from __future__ import annotations

import dataclasses
import difflib
import itertools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from mlflow_tune.config.starter import default_space
from mlflow_tune.training.config import FIELD_TYPES, ConfigError, TrainConfig, check_names, coerce

__all__ = ["KINDS", "Param", "Space", "default_space", "grid_points", "round_sig"]

LOG_KINDS = ("loguniform", "qloguniform", "logint")
MAX_CHOICES = 10_000
INT_KINDS = ("int", "logint")
QUANTISED_KINDS = ("quniform", "qloguniform")
NUMERIC_KINDS = ("uniform", "loguniform", "quniform", "qloguniform", "int", "logint")
KINDS = (*NUMERIC_KINDS, "choice")
GRID_KINDS = ("choice", "int", "logint", "quniform", "qloguniform")
MAX_GRID_POINTS = 10_000
SIGNIFICANT_DIGITS = 6
# int kinds sample round(uniform(low - _INT_HALF, high + _INT_HALF)): the end values as likely as the rest
_INT_HALF = 0.49999


def round_sig(value: float, digits: int = SIGNIFICANT_DIGITS) -> float:
    """``value`` rounded to ``digits`` significant digits (0.30000000000000004 -> 0.3)."""
    if value == 0 or not math.isfinite(value):
        return value
    return round(value, digits - 1 - math.floor(math.log10(abs(value))))


@dataclass(frozen=True)
class Param:
    """One searched parameter; validated on construction, so every Param in a Space is usable."""

    name: str
    kind: str
    low: float | None = None
    high: float | None = None
    q: float | None = None
    choices: tuple[Any, ...] = ()
    free: bool = False   # a user function's parameter: any name, typed by its kind, not a TrainConfig field

    def __post_init__(self) -> None:
        if not self.free:
            check_names([self.name], where="space")
        if self.kind not in KINDS:
            raise self._error(f"unknown kind {self.kind!r}{_hint(self.kind, KINDS)}; "
                              f"valid kinds: {', '.join(KINDS)}")
        if self.kind == "choice":
            self._check_choices()
        else:
            self._check_numeric()

    def _error(self, text: str) -> ConfigError:
        return ConfigError(f"space entry {self.name!r}: {text}")

    def _check_choices(self) -> None:
        if not self.choices:
            raise self._error("choice needs at least one value, got []")
        if len(self.choices) > MAX_CHOICES:
            raise self._error(f"choice has {len(self.choices)} values; at most {MAX_CHOICES} are allowed")
        coerced = [self._coerce(v, "choice value") for v in self.choices]
        seen: set[str] = set()   # by repr: values may be unhashable, and a pairwise check was quadratic
        for i, value in enumerate(coerced):
            key = f"{type(value).__name__}:{value!r}"
            if key in seen:
                raise self._error(f"choice has duplicate value {str(self.choices[i])[:60]!r}")
            seen.add(key)
        object.__setattr__(self, "choices", tuple(coerced))

    @property
    def field_type(self) -> type:
        if not self.free:
            return FIELD_TYPES[self.name]
        return object if self.kind == "choice" else int if self.kind in INT_KINDS else float

    def typed(self, value: Any) -> Any:
        """``value`` (maybe a string read back from MLflow) as this parameter's type."""
        if not self.free:
            return coerce(self.name, value)
        if self.field_type is object:   # a free choice: the value as written, found by its text
            return next((c for c in self.choices if str(c) == str(value)), value)
        return int(float(value)) if self.field_type is int else float(value)

    def _check_numeric(self) -> None:
        field_type = self.field_type
        if field_type not in (int, float):
            raise self._error(f"{self.name!r} is a {field_type.__name__} field; "
                              f"use choice, not {self.kind}")
        if field_type is int and self.kind in ("uniform", "loguniform"):
            raise self._error(f"{self.name!r} is an int field; use int, logint, quniform or choice, "
                              f"not {self.kind}")
        low, high = self.low, self.high
        if low is None or high is None or not (math.isfinite(low) and math.isfinite(high)):
            raise self._error(f"{self.kind} needs finite bounds [low, high], got [{low}, {high}]")
        if low >= high:
            raise self._error(f"low must be below high, got [{_fmt(low)}, {_fmt(high)}]")
        if self.kind in LOG_KINDS and low <= 0:
            raise self._error(f"{self.kind} bounds must be positive, got [{_fmt(low)}, {_fmt(high)}]")
        if self.kind in INT_KINDS and not (float(low).is_integer() and float(high).is_integer()):
            raise self._error(f"{self.kind} bounds must be integers, got [{_fmt(low)}, {_fmt(high)}]")
        if self.kind in QUANTISED_KINDS:
            if self.q is None or not math.isfinite(self.q) or self.q <= 0:
                raise self._error(f"q must be positive, got {self.q}")
            if field_type is int and not float(self.q).is_integer():
                raise self._error(f"{self.name!r} is an int field, so q must be an integer, got {self.q}")
            if math.ceil(low / self.q - 1e-9) > math.floor(high / self.q + 1e-9):
                raise self._error(f"no multiple of q={_fmt(self.q)} lies in [{_fmt(low)}, {_fmt(high)}]")
        for bound in (low, high):
            self._coerce(_natural(self, bound), "bound")
        object.__setattr__(self, "low", float(low))
        object.__setattr__(self, "high", float(high))
        q = self.q if self.kind in QUANTISED_KINDS else None
        object.__setattr__(self, "q", None if q is None else float(q))

    def _coerce(self, value: Any, what: str) -> Any:
        """``value`` as the field's type, checked against TrainConfig's own per-field rules."""
        if self.free:
            return value if self.kind == "choice" else self.typed(value)
        try:
            typed = coerce(self.name, value)
            # data_path keeps csv/parquet valid; cross-field rules are checked when a trial is built.
            dataclasses.replace(TrainConfig(data_path="-"), **{self.name: typed})
        except ConfigError as exc:
            if str(exc).startswith(f"{self.name}="):
                raise self._error(f"{what} {value!r} is not valid: {exc}") from None
            raise
        return typed

    @property
    def log_scale(self) -> bool:
        return self.kind in LOG_KINDS

    @property
    def numeric_choices(self) -> bool:
        return self.kind == "choice" and all(
            isinstance(c, (int, float)) and not isinstance(c, bool) for c in self.choices)

    def to_spec(self) -> dict[str, Any]:
        """The YAML form, e.g. ``{"loguniform": [0.0001, 1.0]}``; parse_space reads it back."""
        if self.kind == "choice":
            return {"choice": list(self.choices)}
        assert self.low is not None and self.high is not None
        args = [_natural(self, self.low), _natural(self, self.high)]
        if self.q is not None and self.kind in QUANTISED_KINDS:
            args.append(_natural(self, self.q))
        return {self.kind: args}

    def grid_values(self) -> list[Any]:
        """Every value of a discrete parameter, in increasing order (choices in their own order)."""
        if self.kind == "choice":
            return list(self.choices)
        first, last, step = self.grid_range()
        return [self.decode_value(k * step) for k in range(first, last + 1)]

    def grid_size(self) -> int:
        if self.kind == "choice":
            return len(self.choices)
        first, last, _ = self.grid_range()
        return last - first + 1

    def grid_range(self) -> tuple[int, int, float]:
        """(first, last, step): the values are k * step for k in first..last."""
        if self.kind not in GRID_KINDS:
            raise self._error(f"grid search needs discrete values, not {self.kind}; "
                              f"use one of: {', '.join(GRID_KINDS)}")
        assert self.low is not None and self.high is not None
        step = self.q if self.kind in QUANTISED_KINDS and self.q is not None else 1.0
        return math.ceil(self.low / step - 1e-9), math.floor(self.high / step + 1e-9), step

    def decode_value(self, value: Any) -> Any:
        """A sampled value as the TrainConfig field's type, clipped into the bounds and rounded."""
        if self.kind == "choice":
            return value
        assert self.low is not None and self.high is not None
        number = min(max(float(value), self.low), self.high)
        if self.kind in GRID_KINDS:
            first, last, step = self.grid_range()
            number = min(max(round(number / step), first), last) * step
        return self.typed(round_sig(number))

    def index_of(self, value: Any) -> int:
        """Index of ``value`` (possibly a string read back from MLflow) among the choices."""
        typed = self.typed(value)
        for i, choice in enumerate(self.choices):
            if choice == typed or (isinstance(typed, float) and math.isclose(choice, typed)):
                return i
        raise self._error(f"value {value!r} is not one of the choices {list(self.choices)}")

    def to_hyperopt(self) -> Any:
        from hyperopt import hp

        if self.kind == "choice":
            return hp.choice(self.name, list(self.choices))
        assert self.low is not None and self.high is not None
        low, high, q = self.low, self.high, self.q
        if self.kind == "uniform":
            return hp.uniform(self.name, low, high)
        if self.kind == "loguniform":
            return hp.loguniform(self.name, math.log(low), math.log(high))
        if self.kind == "quniform":
            return hp.quniform(self.name, low, high, q)
        if self.kind == "qloguniform":
            return hp.qloguniform(self.name, math.log(low), math.log(high), q)
        if self.kind == "int":
            return hp.quniform(self.name, low - _INT_HALF, high + _INT_HALF, 1)
        return hp.qloguniform(self.name, math.log(low - _INT_HALF), math.log(high + _INT_HALF), 1)


@dataclass(frozen=True)
class Space:
    """The searched parameters, in spec order (grid order and hyperopt labels follow it)."""

    params: tuple[Param, ...] = ()

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for param in self.params:
            if param.name in seen:
                raise ConfigError(f"space entry {param.name!r} appears twice")
            seen.add(param.name)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    def __len__(self) -> int:
        return len(self.params)

    def __contains__(self, name: object) -> bool:
        return name in self.names

    def get(self, name: str) -> Param:
        for param in self.params:
            if param.name == name:
                return param
        raise ConfigError(f"{name!r} is not in the space; space parameters: {', '.join(self.names)}")

    def to_spec(self) -> dict[str, Any]:
        return {p.name: p.to_spec() for p in self.params}

    def to_hyperopt(self) -> dict[str, Any]:
        return {p.name: p.to_hyperopt() for p in self.params}

    def decode(self, sample: Mapping[str, Any]) -> dict[str, Any]:
        """A ``hyperopt.space_eval``'d sample -> TrainConfig-typed values (ints as int, rounded floats)."""
        missing = [n for n in self.names if n not in sample]
        if missing:
            raise ConfigError(f"sample lacks space parameters: {', '.join(missing)}")
        return {p.name: p.decode_value(sample[p.name]) for p in self.params}

    def to_hyperopt_vals(self, params: Mapping[str, Any]) -> dict[str, list[Any]]:
        """Params of a finished trial (strings from MLflow are fine) -> hyperopt's ``misc.vals`` form."""
        vals: dict[str, list[Any]] = {}
        for p in self.params:
            if p.name not in params:
                raise ConfigError(f"trial params lack space parameter {p.name!r}")
            value = params[p.name]
            vals[p.name] = [p.index_of(value) if p.kind == "choice" else float(p.decode_value(value))]
        return vals

    def restrict(self, names: Iterable[str]) -> Space:
        """Only the named parameters (in space order); an unknown name is an error."""
        wanted = list(names)
        for name in wanted:
            if name not in self.names:
                raise ConfigError(f"{name!r} is not in the space{_hint(name, self.names)}; "
                                  f"space parameters: {', '.join(self.names)}")
        return Space(tuple(p for p in self.params if p.name in wanted))

    def replace(self, param: Param) -> Space:
        """This space with ``param`` swapped in for the entry of the same name."""
        self.get(param.name)
        return Space(tuple(param if p.name == param.name else p for p in self.params))

    def example(self) -> dict[str, Any]:
        """One valid value per parameter (lower bound or first choice), for validating a config."""
        return {p.name: p.choices[0] if p.kind == "choice" else p.decode_value(p.low)
                for p in self.params}


def grid_points(space: Space) -> list[dict[str, Any]]:
    """Every combination of the discrete values, in spec order (the last parameter varies fastest)."""
    sizes = [p.grid_size() for p in space.params]
    total = math.prod(sizes)
    if total > MAX_GRID_POINTS:
        shape = " x ".join(f"{p.name} {n}" for p, n in zip(space.params, sizes, strict=True))
        raise ConfigError(f"grid has {total} points ({shape}); at most {MAX_GRID_POINTS} are allowed, "
                          "narrow the space or use tpe/random")
    axes = [p.grid_values() for p in space.params]
    return [dict(zip(space.names, combo, strict=True)) for combo in itertools.product(*axes)]


def _natural(param: Param, value: float) -> int | float:
    """A bound as written in YAML: int for integer kinds/fields, else a float rounded for display."""
    if param.kind in INT_KINDS or (param.field_type is int and float(value).is_integer()):
        return int(value)
    return round_sig(float(value))


def _fmt(value: float) -> str:
    return f"{value:g}"


def _hint(name: str, valid: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(valid), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
