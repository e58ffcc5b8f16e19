"""Search progress for people: a live table in a terminal, plain lines elsewhere (CI, pipes)."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from mlflow_tune.tuning.listener import SearchListener
from mlflow_tune.tuning.trial import TrialOutcome


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _duration(seconds: float) -> str:
    minutes, sec = divmod(int(seconds), 60)
    return f"{minutes}m{sec:02d}s" if minutes else f"{sec}s"


class _Counts:
    def __init__(self) -> None:
        self.name, self.total, self.start = "", 0, time.monotonic()
        self.running: set[int] = set()
        self.by_status: dict[str, int] = {}
        self.best: TrialOutcome | None = None

    def done(self) -> int:
        return sum(self.by_status.values())

    def eta(self) -> str:
        done = self.done()
        if not done or not self.total:
            return "?"
        per_trial = (time.monotonic() - self.start) / done
        return _duration(max(0, self.total - done) * per_trial / max(1, len(self.running) or 1))

    def line(self) -> str:
        b = self.best
        best = f"best {_fmt(b.objective)} (trial {b.tid})" if b else "best -"
        return (f"[{self.name}] {self.done()}/{self.total} done, {len(self.running)} running, "
                f"{self.by_status.get('pruned', 0)} pruned, {self.by_status.get('failed', 0)} failed, "
                f"{best}, elapsed {_duration(time.monotonic() - self.start)}, ETA {self.eta()}")


class PlainProgress(SearchListener):
    """One line per finished trial; for logs and CI."""

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream or sys.stderr
        self.c = _Counts()

    def search_started(self, name: str, max_trials: int) -> None:
        self.c = _Counts()   # each stage counts on its own
        self.c.name, self.c.total = name, max_trials

    def trial_started(self, tid: int, params: dict[str, Any]) -> None:
        self.c.running.add(tid)

    def _count(self, outcome: TrialOutcome, best: TrialOutcome | None) -> None:
        self.c.running.discard(outcome.tid)
        self.c.by_status[outcome.status] = self.c.by_status.get(outcome.status, 0) + 1
        self.c.best = best

    def trial_finished(self, outcome: TrialOutcome, best: TrialOutcome | None) -> None:
        self._count(outcome, best)
        extra = f" [{outcome.diagnosis}]" if outcome.diagnosis else ""
        error = f" error: {outcome.error}" if outcome.status == "failed" else ""
        print(f"trial {outcome.tid}: {outcome.status} objective={_fmt(outcome.objective)}{extra}{error} | "
              f"{self.c.line()}", file=self.stream, flush=True)

    def message(self, text: str) -> None:
        print(text, file=self.stream, flush=True)


class LiveProgress(PlainProgress):
    """A live status line (rich) that redraws in place in a terminal."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.live import Live

        super().__init__()
        self.console = Console(stderr=True)
        self.live = Live(console=self.console, refresh_per_second=4, transient=True)
        self.live.start()

    def _refresh(self) -> None:
        self.live.update(self.c.line())

    def trial_started(self, tid: int, params: dict[str, Any]) -> None:
        super().trial_started(tid, params)
        self._refresh()

    def trial_finished(self, outcome: TrialOutcome, best: TrialOutcome | None) -> None:
        self._count(outcome, best)
        tag = f" [{outcome.diagnosis}]" if outcome.diagnosis else ""
        self.console.print(f"trial {outcome.tid}: {outcome.status} objective={_fmt(outcome.objective)}{tag}")
        self._refresh()

    def message(self, text: str) -> None:
        self.console.print(text)

    def search_finished(self) -> None:
        self.live.stop()
        self.console.print(self.c.line())


def default_listener(enabled: bool = True) -> SearchListener:
    if not enabled:
        return SearchListener()
    return LiveProgress() if sys.stderr.isatty() else PlainProgress()
