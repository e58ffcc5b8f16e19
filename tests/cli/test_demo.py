"""`make demo`'s module: it finds its tune file in the repository and the file is valid."""

from __future__ import annotations

from mlflow_tune.cli.demo import DEMO
from mlflow_tune.tuning.tunefile import load_tune_file


def test_the_demo_config_is_found_and_valid() -> None:
    assert DEMO.is_file(), DEMO
    tune = load_tune_file(DEMO)
    assert tune.search.max_trials >= 4 and tune.train["dataset"] == "digits"
