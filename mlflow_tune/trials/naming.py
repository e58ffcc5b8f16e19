"""Run names that say what a run is, for the MLflow UI's runs table: `search tpe digits-mlp 12-03 14:07`,
`stage 1/2 random 30% data 6 epochs`, `trial-07 lr=3.2e-3 units=128`.

Names are for people; nothing reads them back (runs are found by their `mlflow_tune.*` tags).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

MAX_NAME = 120   # the runs table shows about this much; MLflow itself takes 250
# Long parameter names crowd the runs table; these are the TrainConfig fields people search most.
SHORT = {"hidden_units": "units", "batch_size": "batch", "weight_decay": "wd", "dropout": "drop",
         "learning_rate": "lr", "optimizer": "opt", "n_layers": "layers", "num_layers": "layers"}


def compact(value: Any) -> str:
    """A number in few characters: 0.0031622 -> 3.2e-3, 128 -> 128, 0.25 -> 0.25."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int) or (math.isfinite(value) and value == int(value) and abs(value) < 1e6):
        return str(int(value))
    if not math.isfinite(value):
        return str(value)
    if 1e-2 <= abs(value) < 1e4:
        return f"{value:.3g}"
    mantissa, exponent = f"{value:.1e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"


# The parameters with the largest effect first (PRACTICE.md: learning rate, then the optimizer and
# capacity, then regularisation), so that a name cut by the runs table still shows them; the rest
# follow by name. Every trial of a search lists its values in the same order.
FIRST = ("lr", "learning_rate", "optimizer", "hidden_units", "layers", "n_layers", "num_layers", "embedding_dim",
         "rnn_cell", "dropout", "weight_decay", "batch_size")


def trial_name(tid: int, params: Mapping[str, Any]) -> str:
    def rank(name: str) -> tuple[int, str]:
        return (FIRST.index(name) if name in FIRST else len(FIRST), SHORT.get(name, name))

    words = [f"trial-{tid:02d}", *(f"{SHORT.get(k, k)}={compact(params[k])}" for k in sorted(params, key=rank))]
    return _fit(" ".join(words))


def search_name(algo: str, train: Mapping[str, Any], objective: Any = None, first_stage_algo: str = "",
                when: str = "") -> str:
    """`search tpe digits-mlp 12-03 14:07`: the algorithm (a staged search's first stage's), what is
    trained and when it started, so that the searches of one experiment have names of their own."""
    what = ""
    if objective is not None:
        what = objective if isinstance(objective, str) else getattr(objective, "__name__", "function")
    elif train.get("dataset") or train.get("model"):
        dataset = str(train.get("dataset") or "data").rsplit("/", 1)[-1]
        what = f"{dataset}-{str(train.get('model') or 'model').rsplit(':', 1)[-1]}"
    return _fit(" ".join(w for w in ("search", first_stage_algo or algo, what, when) if w))


def stage_name(index: int, count: int, algo: str, overrides: Mapping[str, Any], retrain: int = 0,
               seeds: int = 1) -> str:
    """`stage 1/2 random 30% data 6 epochs`, or `stage 3/3 retrain top 2 x 3 seeds`."""
    words = [f"stage {index + 1}/{count}"]
    words.append(f"retrain top {retrain} x {seeds} seeds" if retrain else algo)
    if overrides.get("subsample") is not None:
        words.append(f"{float(overrides['subsample']):.0%} data")
    if overrides.get("classes"):
        words.append(f"classes {overrides['classes']}")
    if overrides.get("epochs") is not None:
        words.append(f"{overrides['epochs']} epochs")
    return _fit(" ".join(words))


def _fit(name: str) -> str:
    return name if len(name) <= MAX_NAME else name[:MAX_NAME - 3] + "..."
