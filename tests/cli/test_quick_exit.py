"""The CLI leaves without the interpreter's teardown, but only after exit handlers and flushes."""

from __future__ import annotations

import subprocess
import sys

import pytest

SCRIPT = """
import atexit, sys
atexit.register(lambda: print("handler ran", flush=False))
sys.argv = ["mlflow-tune", *sys.argv[1:]]
from mlflow_tune.cli import main
main()
"""


@pytest.mark.parametrize(("args", "code"), [(["--help"], 0), (["train", "--optimizer", "adamm"], 2)])
def test_exit_code_kept_and_handlers_run(args: list[str], code: int) -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT, *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == code, done.stderr
    assert done.stdout.rstrip().endswith("handler ran")   # ran, and its unflushed output reached the pipe
    if code == 2:
        assert "adamm" in done.stderr and "Traceback" not in done.stderr


def test_a_running_non_daemon_thread_gets_the_ordinary_exit() -> None:
    script = """
import sys, threading, time
sys.argv = ["mlflow-tune", "--help"]
threading.Thread(target=lambda: (time.sleep(0.5), print("thread finished", flush=True))).start()
from mlflow_tune.cli import main
main()
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "thread finished" in done.stdout
