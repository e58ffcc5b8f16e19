"""A level's trial runs, made ahead by the writer so each is ready when its trial starts."""

from __future__ import annotations

import contextlib
from concurrent.futures import Future
from typing import TYPE_CHECKING

from mlflow_tune.tracking.runs import PARENT_TAG, TAG, RunLogger

if TYPE_CHECKING:
    from mlflow_tune.study.level import Level
    from mlflow_tune.tracking.writer import Writer


class ChildRuns:
    """Trial runs, made ahead by the background writer when trials train here or in workers.

    Creating a run is a ~15 ms round trip to the store; made while earlier trials train, it is
    ready when its trial starts. With N trials at once, N runs are made ahead: the next trial
    may start as soon as any running one ends. A run made ahead but never used is deleted when
    the level ends (after a kill -9 it stays, RUNNING, and `--resume` records it as interrupted).
    """

    def __init__(self, level: Level, ahead: Writer | None, depth: int = 1):
        self.level, self.ahead, self.depth = level, ahead, max(1, depth)
        self.made: dict[int, Future[str]] = {}

    def _tags(self, tid: int) -> dict[str, str]:
        return {TAG + "role": "trial", TAG + "trial": str(tid), PARENT_TAG: self.level.parent.run_id,
                **self.level.tags}

    def take(self, tid: int, more: int = 1) -> str:
        """The run of trial `tid`; makes runs ahead for up to `more` trials that may follow it."""
        level = self.level
        # Waits if the writer is still busy (e.g. with its first model): making a second run for
        # the same trial instead would leave two runs with one number after a kill -9.
        # It leaves `made` only once it is there: interrupted while waiting, discard() ends it.
        made = self.made.get(tid)
        run_id = made.result() if made is not None else RunLogger.start(
            level.parent.client, level.experiment_id, name=f"trial-{tid}", tags=self._tags(tid)).run_id
        self.made.pop(tid, None)
        if self.ahead is not None:
            from mlflow_tune.tracking.writer import RunWrite

            for ahead in range(tid + 1, tid + 1 + min(self.depth, more)):
                if ahead not in self.made:
                    tags = {**self._tags(ahead), "mlflow.runName": f"trial-{ahead}"}
                    self.made[ahead] = self.ahead.submit(RunWrite(
                        level.tracking_uri, "", experiment_id=level.experiment_id, create=tuple(tags.items())))
        return run_id

    def discard(self) -> None:
        """Runs made ahead that no trial took: ended KILLED (a deleted run still shows its status to
        whoever restores it), then deleted."""
        client = self.level.parent.client
        for made in self.made.values():
            with contextlib.suppress(Exception):
                run_id = made.result()
                client.set_terminated(run_id, "KILLED")
                client.delete_run(run_id)
        self.made.clear()
