"""SIGINT and SIGTERM as a flag the loops check, never an exception raised at an arbitrary point.

A handler that raises KeyboardInterrupt can land anywhere: inside a garbage-collection callback
(where Python swallows it and the search runs on), between a run's creation and its first write,
or in the middle of the summary (the parent stays RUNNING). So the handler only records the
signal; the search loop, the training loop (between epochs) and a user's `trial.report` look at
it, stop at a point where every run can be ended, and the command says what was saved.

Before anything worth saving exists (start-up, imports, the checks before the parent run) there
is nothing to stop cleanly: the handler exits at once (`exit_now`, 130). `saving()` marks the span
in which stopping must go through the flag. A second signal while saving means "now": the
process exits at once, as after kill -9, and `--resume` completes what was left (under the
Python API, with no command to exit, a second Ctrl-C raises KeyboardInterrupt as Python does).
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM)
EXIT_CODE = 130
STOP_REASON = "interrupted"   # a training run's stop reason when the flag stopped it
STORE_LOST = "store lost: "   # the flag's reason when the tracking store stopped answering
STORE_REFUSED = "store refused: "   # ... when it answers but refused a write (disk full, read-only)


class Interrupted(KeyboardInterrupt):
    """Raised at a chosen point (between epochs, in `trial.report`) once the flag is set."""

_requested = threading.Event()
_signal_name = ""
_saving = 0
_saved = False   # a saving span has ended: what it made is in the store
_exit_now: Callable[[str], None] | None = None


def requested() -> bool:
    """Whether SIGINT or SIGTERM arrived (or `request` was called)."""
    return _requested.is_set()


def signal_name() -> str:
    return _signal_name


def request(name: str = "interrupt") -> None:
    """Ask every loop to stop, as a signal would (e.g. the tracking server went away)."""
    global _signal_name
    _signal_name = _signal_name or name
    _requested.set()


def store_lost() -> bool:
    return _signal_name.startswith(STORE_LOST)


def store_refused() -> bool:
    return _signal_name.startswith(STORE_REFUSED)


def store_failed() -> bool:
    """The search stopped because of the store (lost or refusing writes), not because of a signal."""
    return store_lost() or store_refused()


def clear() -> None:
    global _signal_name
    _requested.clear()
    _signal_name = ""


def _handler(signum: int, frame: Any) -> None:
    name = signal.Signals(signum).name
    if _saving and not _requested.is_set():
        request(name)
        return
    if _exit_now is None:   # the Python API, no command around it: Python's own behaviour
        raise KeyboardInterrupt
    _exit_now(f"{name} again" if _saving else f"{name} after saving" if _saved else name)
    os._exit(EXIT_CODE)


def install(exit_now: Callable[[str], None] | None = None) -> bool:
    """Handle SIGINT and SIGTERM from now on (main thread only); `exit_now(signal name)` says goodbye
    when the process leaves at once. False where handlers cannot be set (not the main thread)."""
    global _exit_now
    if threading.current_thread() is not threading.main_thread():
        return False
    _exit_now = exit_now
    for sig in SIGNALS:
        signal.signal(sig, _handler)
    return True


def installed() -> bool:
    return signal.getsignal(signal.SIGTERM) is _handler


@contextlib.contextmanager
def saving() -> Iterator[None]:
    """Within: a signal sets the flag (the code in here stops cleanly), instead of exiting at once.

    Installs the handlers if nobody did (the Python API), and restores the previous ones after."""
    global _saving, _saved
    previous = None
    if not installed() and threading.current_thread() is threading.main_thread():
        previous = {sig: signal.getsignal(sig) for sig in SIGNALS}
        install()
    if _saving == 0:   # a new command or API call: an earlier search's interrupt is over
        clear()
    _saving += 1
    try:
        yield
    finally:
        _saving -= 1
        _saved = _saving == 0
        if previous is not None:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
