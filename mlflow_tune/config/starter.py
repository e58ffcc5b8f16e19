"""Starting points from experience: the default space and the ``mlflow-tune space init`` file.

The values follow ../shared/PRACTICE.md ("starting values from experience"). Pure text and
dicts; ``space.py`` and ``tunefile.py`` re-export these, and this module imports neither.
"""

from __future__ import annotations

import math
from typing import Any

from mlflow_tune.training.config import DATASETS, ConfigError

# Sets of a few thousand rows or fewer: a 10% sample would leave a handful of rows per class,
# so the coarse stage takes 30% of them; a user's own file is assumed large.
SMALL_DATASETS = ("digits", "wine", "iris", "breast_cancer", "synthetic", "sequences")
TINY_DATASETS = ("iris", "wine")   # ~100 training rows: a batch of 128 would be the whole set


def default_space(dataset: str, model: str) -> dict[str, Any]:
    """A starting space spec (the YAML ``space:`` mapping) for ``dataset`` and ``model``."""
    if dataset not in DATASETS:
        raise ConfigError(f"dataset={dataset!r} is not valid; choose one of: {', '.join(DATASETS)}.")
    if not model.strip():
        raise ConfigError("model must not be empty; choose mlp, cnn, rnn or module:function.")
    spec: dict[str, Any] = {
        # multiplicative parameters on a log scale; recurrent nets want a smaller learning rate
        "lr": {"loguniform": [1e-4, 1e-2 if model == "rnn" else 1.0]},
        "weight_decay": {"loguniform": [1e-6, 1e-1]},
        "dropout": {"uniform": [0.0, 0.7]},
        "layers": {"int": [1, 3]},
        "hidden_units": {"logint": [16, 256]},
        "batch_size": {"choice": [16, 32, 64] if dataset in TINY_DATASETS else [64, 128, 256]},
        "grad_clip": {"choice": [0, 5, 10, 15]},
        "optimizer": {"choice": ["adam", "rmsprop", "momentum"]},
    }
    if model == "rnn":
        spec["embedding_dim"] = {"choice": [128, 256]}
    return spec


_COMMENTS = {
    "lr": "log scale: 1e-4, 1e-3, 1e-2 ... equally likely (it matters most)",
    "weight_decay": "L2, log scale too",
    "dropout": "linear scale: 0.3, 0.5, 0.7",
    "layers": "integers 1..3; start small",
    "hidden_units": "integers on a log scale: 16, 32, 64 ... equally likely",
    "batch_size": "around 128; larger is faster",
    "grad_clip": "global-norm clipping; 0 = none",
    "optimizer": "adaptive optimizers spare most lr tuning",
    "embedding_dim": "token embedding size",
}


def default_tune_yaml(dataset: str, model: str, staged: bool = False) -> str:
    """Commented YAML text of a starting tune file; ``staged`` adds a coarse-to-fine plan."""
    space = default_space(dataset, model)
    lines = [
        f"# mlflow-tune search config for {model} on {dataset}.",
        "# Run: mlflow-tune search --config THIS_FILE    (see mlflow-tune search --help)",
        f"experiment: {dataset}-{model}",
        "",
        "# Fixed training values (any TrainConfig field, see mlflow-tune train --help).",
        "train:",
        f"  dataset: {dataset}",
        f"  model: {model}",
    ]
    if dataset in ("csv", "parquet"):
        lines += [f"  data_path: data.{dataset}   # your file", "  target: target   # its label column"]
    lines += [
        "  epochs: 20",
        "",
        "# Searched values; bounds in natural units. loguniform/logint search on a log scale",
        "# (for multiplicative parameters), uniform/int on a linear one; choice picks from a list.",
        "space:",
    ]
    for name, entry in space.items():
        kind, args = next(iter(entry.items()))
        lines.append(f"  {name}: {{{kind}: [{', '.join(_yaml_value(a) for a in args)}]}}"
                     f"   # {_COMMENTS[name]}")
    lines += [
        "",
        "search:",
        "  algo: mtpe         # mtpe (Optuna's TPE) | tpe (hyperopt's) | random | anneal | grid",
        "  max_trials: 20",
        "  parallel: 1        # trials at once",
        "  metric: val_loss   # val_loss | val_accuracy (mode follows: min for loss, max for accuracy)",
        "  pruning: median    # none | median | asha | hyperband | curve: stop clearly bad trials early",
        "  seed: 0",
    ]
    if staged:
        lines += _stage_lines(dataset)
    return "\n".join(lines) + "\n"


def _stage_lines(dataset: str) -> list[str]:
    fraction = 0.3 if dataset in SMALL_DATASETS else 0.1
    return [
        "",
        "# Coarse to fine; each stage sets its own algo and max_trials (search: holds the rest).",
        "stages:",
        f"  # a wide, cheap look: random search on {fraction:.0%} of the training data, few epochs",
        "  - name: coarse",
        "    algo: random",
        "    max_trials: 20",
        "    epochs: 5",
        f"    subsample: {fraction}",
        "  # TPE on the space narrowed around the coarse stage's top_k trials (widened by",
        "  # margin x their span, on each parameter's scale) and moved by their diagnoses",
        "  - name: fine",
        "    algo: tpe",
        "    max_trials: 20",
        "    epochs: 20",
        "    subsample: 1.0",
        "    top_k: 5",
        "    margin: 0.25",
        "    guided: true",
        "  # retrain the 3 best configurations on all the data, 3 seeds each (mean and spread)",
        "  - name: final",
        "    retrain: 3",
        "    seeds: 3",
        "    epochs: 30",
    ]


def _yaml_value(value: Any) -> str:
    """A YAML scalar: 1e-4 rather than 0.0001 for powers of ten (parse_space reads both)."""
    if isinstance(value, float) and value > 0 and abs(math.log10(value)) >= 3 \
            and math.log10(value).is_integer():
        return f"1e{int(math.log10(value))}"
    return str(value)
