"""The ``space:`` section of a tune file (YAML) read into a validated :class:`Space`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlflow_tune.config.settings import hint
from mlflow_tune.config.space import KINDS, QUANTISED_KINDS, Param, Space
from mlflow_tune.training.config import ConfigError, check_names


def parse_space(spec: Mapping[str, Any], free: bool = False) -> Space:
    """Validate the YAML ``space:`` mapping; every error names the entry and the valid choices.

    ``free``: the names are a user function's own parameters, not TrainConfig fields."""
    if not isinstance(spec, Mapping):
        raise ConfigError(f"space must be a mapping of parameter: {{kind: args}}, got {spec!r}")
    if not free:
        check_names([str(name) for name in spec], where="space")
    return Space(tuple(_parse_entry(str(name), entry, free) for name, entry in spec.items()))


def _parse_entry(name: str, entry: Any, free: bool = False) -> Param:
    prefix = f"space entry {name!r}"
    if not isinstance(entry, Mapping) or len(entry) != 1:
        got = ", ".join(map(str, entry)) if isinstance(entry, Mapping) else repr(entry)
        raise ConfigError(f"{prefix} must be a mapping with exactly one kind, e.g. {{choice: [...]}}, "
                          f"got {got or '{}'}; valid kinds: {', '.join(KINDS)}")
    kind, args = next(iter(entry.items()))
    if kind not in KINDS:
        raise ConfigError(f"{prefix}: unknown kind {kind!r}{hint(str(kind), KINDS)}; "
                          f"valid kinds: {', '.join(KINDS)}")
    if not isinstance(args, (list, tuple)):
        raise ConfigError(f"{prefix}: {kind} needs a list, got {args!r}")
    if kind == "choice":
        return Param(name, kind, choices=tuple(args), free=free)
    size = 3 if kind in QUANTISED_KINDS else 2
    if len(args) != size:
        shape = "[low, high, q]" if size == 3 else "[low, high]"
        raise ConfigError(f"{prefix}: {kind} needs {shape}, got {list(args)}")
    numbers = [_number(prefix, a) for a in args]
    return Param(name, kind, numbers[0], numbers[1], numbers[2] if size == 3 else None, free=free)


def _number(prefix: str, value: Any) -> float:
    # PyYAML reads 1e-4 (no dot) as a string, so numeric strings are accepted.
    if isinstance(value, bool):
        raise ConfigError(f"{prefix}: expected a number, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{prefix}: expected a number, got {value!r}") from None
