"""Leaving the process fast once everything is written."""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading
from typing import NoReturn

import typer


def quick_exit(code: int | str | None) -> NoReturn:
    """Exit without the interpreter's teardown once everything is written.

    Measured reason: freeing the modules of torch, torch._dynamo, mlflow and scikit-learn takes
    ~1.5 s of a 2-core machine after a search's last write (`bench/process.py`), a fifth of a
    small search. The exit handlers still run first (they drain the writer, stop the workers),
    then the standard streams are flushed. Threads that are not daemons are still running only
    when something is unfinished, and then the ordinary exit waits for them.
    """
    if isinstance(code, str):
        typer.echo(code, err=True)
        code = 1
    code = 0 if code is None else code
    if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        sys.exit(code)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)
