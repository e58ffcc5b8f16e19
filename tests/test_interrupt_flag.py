"""The interrupt flag: what a signal does inside and outside `saving()` (mlflow_tune/interrupts.py)."""

from __future__ import annotations

import os
import signal
import time

import pytest

from mlflow_tune import interrupts


def _signal_self(sig: int) -> None:
    os.kill(os.getpid(), sig)
    time.sleep(0.05)   # the handler runs in the main thread at the next bytecode


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_while_saving_sets_the_flag_and_raises_nothing(sig: int) -> None:
    before = signal.getsignal(signal.SIGTERM)
    with interrupts.saving():
        assert not interrupts.requested()
        _signal_self(sig)
        assert interrupts.requested() and interrupts.signal_name() == signal.Signals(sig).name
    assert signal.getsignal(signal.SIGTERM) is before   # the API leaves the handlers as it found them


def test_a_second_signal_under_the_api_raises_keyboard_interrupt() -> None:
    with pytest.raises(KeyboardInterrupt), interrupts.saving():
        _signal_self(signal.SIGINT)
        _signal_self(signal.SIGINT)


def test_a_new_search_starts_with_the_flag_clear() -> None:
    interrupts.request("earlier")
    with interrupts.saving():
        assert not interrupts.requested()


def test_the_writer_waits_for_one_runs_writes_and_drains_in_bounded_time() -> None:
    import threading
    from concurrent.futures import Future

    from mlflow_tune.tracking.writer import RunWrite, Writer

    writer = Writer("thread")
    gate = threading.Event()
    slow: Future[str] = Future()
    writer._pending.append((slow, RunWrite("sqlite:///x.db", "stuck")))
    threading.Thread(target=lambda: (gate.wait(5), slow.set_result("")), daemon=True).start()
    writer.wait_for("another-run", timeout=0.1)   # nothing of its own pending: returns at once
    began = time.monotonic()
    errors = writer.drain(timeout=0.3)
    assert time.monotonic() - began < 1 and errors == ["run stuck: not written within 0.3 s"]
    gate.set()
