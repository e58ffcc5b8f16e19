"""The benchmarks' validation splits: a stratified 30 % of each data set (generate.py and wide.py)."""

from __future__ import annotations

import math
import sys
from functools import cache
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
TABULAR = ("digits", "wine", "breast_cancer", "synthetic")   # generate.py's; the others are wide.py's


@cache
def val_rows(dataset: str) -> int:
    """Rows of the validation split of `dataset`: the sample its accuracy is measured on, as our
    training loop logs it (`val_rows`)."""
    import generate
    import wide

    _, y = generate.load(dataset, 0) if dataset in TABULAR else wide.load(dataset)
    return math.ceil(0.3 * len(y))
