"""`make demo`'s module: it finds its tune file in the repository and the file is valid."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mlflow_tune.cli.demo import DEMO
from mlflow_tune.config.tunefile import load_tune_file


def test_the_demo_config_is_found_and_valid() -> None:
    assert DEMO.is_file(), DEMO
    tune = load_tune_file(DEMO)
    assert tune.search.max_trials >= 4 and tune.train["dataset"] == "digits"


@pytest.mark.slow
def test_the_demo_runs_on_a_fresh_store_and_prints_only_ours(tmp_path: Path) -> None:
    """`make demo` as a user runs it: a new ./mlflow.db, a finished search, a report, no MLflow log lines."""
    done = subprocess.run([sys.executable, "-m", "mlflow_tune.cli.demo"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    output = done.stdout + done.stderr
    assert "INFO mlflow" not in output and "Creating initial MLflow database tables" not in output
    assert "stopped by max_trials" in done.stdout and "report: reports/" in done.stdout
    assert "writing the report" in done.stderr   # the seconds after the last trial are not silent
    assert (tmp_path / "mlflow.db").is_file() and list((tmp_path / "reports").glob("*/report.html"))
