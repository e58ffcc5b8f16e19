"""Helpers shared by test modules (not fixtures)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def start_search_cli(config: Path, uri: str) -> subprocess.Popen[bytes]:
    """`mlflow-tune search` in a real subprocess, for tests that signal or kill it."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    return subprocess.Popen([sys.executable, "-m", "mlflow_tune.cli", "search", "--config", str(config),
                             "--tracking-uri", uri, "--quiet"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def needs(present: bool, what: str) -> pytest.MarkDecorator:
    """Skip on a developer's machine that lacks a system package; never in CI, where `.ci/run`
    installs it, so a missing package there fails loudly instead of skipping its tests."""
    return pytest.mark.skipif(not present and not os.environ.get("CI"), reason=f"needs {what} (.ci/run installs it)")
