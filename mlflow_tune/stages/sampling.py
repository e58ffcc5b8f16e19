"""How much of the data a coarse stage trains on, from the data itself.

PRACTICE.md: a coarse stage trains on a sample of a large set (e.g. 1%). A fixed `subsample`
is 1% of one data set and all of another; `sample_rows` says how many training rows are
enough to rank settings, and the fraction follows from the data set's size.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlflow_tune.config.space import round_sig


def sample_fraction(train: Mapping[str, Any], rows: int) -> tuple[float, int]:
    """(subsample giving about `rows` training rows, training rows in all) for TrainConfig values `train`."""
    from mlflow_tune.training.config import from_mapping
    from mlflow_tune.training.data import load_arrays

    cfg = from_mapping({k: v for k, v in train.items() if k != "subsample"})
    total = len(load_arrays(cfg)[1])
    train_rows = max(1, round(total * (1 - cfg.val_fraction - cfg.test_fraction)))
    return min(1.0, round_sig(rows / train_rows)), train_rows
