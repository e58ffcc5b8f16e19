"""Search progress for people: a rich progress bar in a terminal, plain lines elsewhere (CI, pipes),
nothing with --quiet.

Counts are against what will really run (a grid's size, a stage's own trials), always in the same
order; the ETA appears only once a few trials have finished (the first ones pay the start-up).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import Any, TextIO

from mlflow_tune.study.level import best_trial
from mlflow_tune.study.listener import SearchListener
from mlflow_tune.study.note import DIAGNOSES
from mlflow_tune.trials.records import TrialOutcome

ETA_AFTER = 3   # finished trials before an ETA is worth showing
BAR = 12        # the live line's bar, drawn where MIN_COUNTS characters of counts still fit beside it
MIN_COUNTS = 50
NAME = 24       # a stage's name, cut on the live line (its full name is on the stage's lines above)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _duration(seconds: float) -> str:
    minutes, sec = divmod(int(seconds), 60)
    return f"{minutes}m{sec:02d}s" if minutes else f"{sec}s"


class Counts:
    """One search's (or stage's) counts; `clock` is injectable for tests."""

    def __init__(self, name: str = "", total: int = 0, clock: Any = time.monotonic,
                 restored: Sequence[TrialOutcome] = ()) -> None:
        self.name, self.total, self.clock = name, total, clock
        self.start = clock()
        self.running: set[int] = set()
        self.by_status: dict[str, int] = {}
        self.by_diagnosis: dict[str, int] = {}
        self.best: TrialOutcome | None = None
        for outcome in restored:   # a resumed search counts on from where it stopped
            self.add(outcome, None)
        self.best = best_trial(list(restored))
        self.before = len(restored)   # done before this process: not in the rate the ETA uses

    def done(self) -> int:
        return sum(self.by_status.values())

    def add(self, outcome: TrialOutcome, best: TrialOutcome | None) -> None:
        self.running.discard(outcome.tid)
        self.by_status[outcome.status] = self.by_status.get(outcome.status, 0) + 1
        if outcome.diagnosis:
            self.by_diagnosis[outcome.diagnosis] = self.by_diagnosis.get(outcome.diagnosis, 0) + 1
        self.best = best

    def eta(self) -> str:
        """Remaining trials at the rate seen so far (which already reflects trials running at once)."""
        done, here = self.done(), self.done() - self.before
        if here < ETA_AFTER or not self.total:
            return ""
        return _duration(max(0, self.total - done) * (self.clock() - self.start) / here)

    def _counts(self) -> list[str]:
        """Running, pruned, failed, then each diagnosis seen, in a fixed order."""
        words = [f"{len(self.running)} running", f"{self.by_status.get('pruned', 0)} pruned",
                 f"{self.by_status.get('failed', 0)} failed"]
        order = [*DIAGNOSES, *sorted(set(self.by_diagnosis) - set(DIAGNOSES))]
        return words + [f"{self.by_diagnosis[d]} {d}" for d in order if self.by_diagnosis.get(d)]

    def _best(self, short: bool = False) -> str:
        b = self.best
        return f"best {_fmt(b.objective)} ({'#' if short else 'trial '}{b.tid})" if b else "best -"

    def status(self) -> str:
        """Counts in a fixed order: running, pruned, failed, then diagnoses; best; time."""
        eta = self.eta()
        words = [*self._counts(), self._best(), f"elapsed {_duration(self.clock() - self.start)}"]
        return ", ".join(words + ([f"ETA {eta}"] if eta else []))

    def line(self) -> str:
        return f"[{self.name}] {self.done()}/{self.total} done, {self.status()}"

    def fitted(self, width: int) -> str:
        """The live line's counts in `width` characters: the best and the ETA first, then the running,
        pruned and failed counts, the labels and the time, the least important dropped first."""
        eta = self.eta()
        words = [self._best(short=True), *([f"ETA {eta}"] if eta else []), *self._counts(),
                 f"elapsed {_duration(self.clock() - self.start)}"]
        while len(words) > 1 and len(", ".join(words)) > width:
            words.pop()
        return ", ".join(words)[:max(0, width)]


def _trial_line(outcome: TrialOutcome) -> str:
    extra = f" [{outcome.diagnosis}]" if outcome.diagnosis else ""
    error = f" error: {outcome.error}" if outcome.status == "failed" else ""
    return f"trial {outcome.tid}: {outcome.status} objective={_fmt(outcome.objective)}{extra}{error}"


class PlainProgress(SearchListener):
    """One line per finished trial; for logs and CI."""

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream or sys.stderr
        self.c = Counts()

    def search_started(self, name: str, max_trials: int, restored: Sequence[TrialOutcome] = ()) -> None:
        self.c = Counts(name, max_trials, restored=restored)   # each stage counts on its own

    def trial_started(self, tid: int, params: dict[str, Any]) -> None:
        self.c.running.add(tid)

    def trial_finished(self, outcome: TrialOutcome, best: TrialOutcome | None) -> None:
        self.c.add(outcome, best)
        print(f"{_trial_line(outcome)} | {self.c.line()}", file=self.stream, flush=True)

    def message(self, text: str) -> None:
        print(text, file=self.stream, flush=True)


class LiveProgress(PlainProgress):
    """A rich progress bar per search or stage, redrawn in place; finished trials print above it."""

    def __init__(self, console: Any = None) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        super().__init__()
        self.console = console or Console(stderr=True)   # a test's console of a given width
        # One line that fits the terminal, whatever its width (from 60 columns): the name and the count,
        # a bar where there is room, and as many counts as fit (`Counts.fitted`), redrawn each refresh.
        self.with_bar = (TextColumn("{task.description}"), BarColumn(bar_width=BAR), MofNCompleteColumn(),
                         TextColumn("{task.fields[status]}"))
        self.progress = Progress(*self.with_bar, console=self.console, refresh_per_second=4)
        self.task: Any = None
        self.progress.start()

    def _status(self) -> str:
        count = 2 * len(str(self.c.total)) + 1           # MofNCompleteColumn pads the done count
        # rich keeps the last column free and puts a space between columns
        room = self.console.width - 1 - len(self.c.name[:NAME]) - count - 2
        bar = room - BAR - 1 >= MIN_COUNTS
        self.progress.columns = self.with_bar if bar else (self.with_bar[0], *self.with_bar[2:])
        return self.c.fitted(room - (BAR + 1 if bar else 0))

    def search_started(self, name: str, max_trials: int, restored: Sequence[TrialOutcome] = ()) -> None:
        super().search_started(name, max_trials, restored)
        self.task = self.progress.add_task(name[:NAME], total=max_trials or None, completed=self.c.done(),
                                           status=self._status())

    def _refresh(self) -> None:
        if self.task is not None:
            self.progress.update(self.task, completed=self.c.done(), status=self._status())

    def trial_started(self, tid: int, params: dict[str, Any]) -> None:
        super().trial_started(tid, params)
        self._refresh()

    def trial_finished(self, outcome: TrialOutcome, best: TrialOutcome | None) -> None:
        from rich.markup import escape

        self.c.add(outcome, best)
        self.progress.console.print(escape(_trial_line(outcome)))
        self._refresh()

    def message(self, text: str) -> None:
        from rich.markup import escape

        self.progress.console.print(escape(text))

    def search_finished(self) -> None:
        self._refresh()
        self.progress.stop()


def default_listener(enabled: bool = True) -> SearchListener:
    if not enabled:
        return SearchListener()
    return LiveProgress() if sys.stderr.isatty() else PlainProgress()
