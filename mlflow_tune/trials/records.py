"""One search trial as records: its spec, its outcome, and what a level's trials share (the board).

Running a trial is `runner.run_trial`; a user's function gets a `function.Trial`; the pruner's
callback is `pruning.PruningCallback`. Plain records: every layer from the search loop down to
the executors passes them around, so this module imports nothing of the package at import time.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

OUTCOMES = ("completed", "pruned", "nonconvergent", "failed", "interrupted")
# The MLflow status each outcome ends its run with. A pruned trial ends FINISHED (tagged
# mlflow_tune.pruned=true): the search chose to stop it and its curve and objective are sound, while
# KILLED draws the red cross MLflow's runs table keeps for runs stopped from outside (an interrupted
# trial is one, and stays KILLED). Before, 11 of 21 pruned trials looked failed in the UI.
RUN_STATUS = {"pruned": "FINISHED", "nonconvergent": "FAILED", "failed": "FAILED"}
SPARE = 2   # models held beyond a level's top k, for trials that offered one and then did not finish


@dataclass(frozen=True)
class TrialSpec:
    tid: int
    run_id: str
    tracking_uri: str
    config: dict[str, Any]          # full TrainConfig values for this trial
    params: dict[str, Any]          # the searched values (a subset of config)
    metric: str = "val_loss"
    mode: str = "min"
    pruning: str = "none"
    pruning_warmup: int = 2
    min_trials_for_pruning: int = 3
    asha_reduction: int = 3
    top_k_models: int = 3
    project: str = ""               # run as an MLflow Project instead of in-process
    entry_point: str = "train"
    env_manager: str = "local"
    background_writes: bool = False  # write through the process's writer thread (inline runs)
    experiment_id: str = ""
    objective: Any = None           # a user's training function (or "module:function") instead of ours
    budget: dict[str, Any] = field(default_factory=dict)   # a stage's epochs/subsample/classes, for it
    threads: int = 0                # torch threads for a user function (0: leave as is)
    search_run_id: str = ""         # the search's parent run
    curve_keys: dict[str, str] = field(default_factory=dict)   # e.g. {"val_loss": "valid/loss"}: what to diagnose
    objective_rule: str = "smoothed"   # search.objective: best | smoothed | last (training.selection)

    @property
    def run_name(self) -> str:
        from mlflow_tune.trials.naming import trial_name

        return trial_name(self.tid, self.params)

    def oriented(self, value: float) -> float:
        """Lower is better, whatever the metric."""
        return value if self.mode == "min" else -value


@dataclass(frozen=True)
class TrialOutcome:
    tid: int
    run_id: str
    status: str                     # one of OUTCOMES
    objective: float | None = None  # the metric as search.objective summarises it, in its own units
    loss: float | None = None       # objective oriented so that lower is better (what hyperopt sees)
    diagnosis: str = ""
    epochs: int = 0
    error: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    fatal: bool = False             # the search cannot go on (e.g. its metric is never reported)


@dataclass
class Board:
    """What a level's trials share: per-epoch curves (for pruning) and final losses (for top-k models).

    It lives in the driver. A trial in a worker process sees it as `executors.pool.RemoteBoard`, whose
    calls the driver's reader threads answer here; each call is one dict operation, atomic
    under the GIL, so those threads need no lock.
    """

    curves: dict[int, list[float]] = field(default_factory=dict)
    losses: dict[int, float] = field(default_factory=dict)
    outbox: Any = None   # in a worker process: where its RunWrite jobs go (put), to the driver's writer
    # The best finished trials' models, (loss, run id, model parts) by trial: logged when the level
    # ends, so a search logs k models, not one for every trial that was among the best when it ended.
    models: dict[int, tuple[float, str, Any]] = field(default_factory=dict)
    lock: Any = field(default_factory=threading.Lock, repr=False)

    def publish(self, tid: int, curve: list[float]) -> None:
        self.curves[tid] = list(curve)

    def snapshot(self) -> dict[int, Sequence[float]]:
        return dict(self.curves)

    def record(self, tid: int, loss: float) -> None:
        self.losses[tid] = loss

    def rank(self, loss: float) -> int:
        """1-based rank of `loss` among finished trials' losses (ties rank high)."""
        return 1 + sum(1 for other in dict(self.losses).values() if other < loss)

    def offer(self, tid: int, run_id: str, loss: float, parts: Any, keep: int) -> None:
        """Hold trial `tid`'s model while it is among the `keep` (and SPARE more) best offered so far.

        A trial offers its model as it ends; its worker may still die before its outcome arrives
        (a killed Spark worker), and such a trial must not take a finished one's place: the spares
        stand in for it when the level's models are taken."""
        with self.lock:   # workers' reader threads offer concurrently
            self.models[tid] = (loss, run_id, parts)
            while len(self.models) > keep + SPARE:
                del self.models[max(self.models, key=lambda t: (self.models[t][0], t))]

    def take_models(self, keep: int, finished: Collection[int]) -> list[tuple[int, str, Any]]:
        """The `keep` best held models of trials in `finished` (completed), best first, handed over
        once (the level is over)."""
        with self.lock:
            held, self.models = self.models, {}
        ranked = sorted(((t, m) for t, m in held.items() if t in finished), key=lambda i: (i[1][0], i[0]))
        return [(tid, run_id, parts) for tid, (_, run_id, parts) in ranked[:keep]]


def worker_name() -> str:
    """Which process trained the trial (host:pid), to see how a search spread its work."""
    import os
    import socket

    return f"{socket.gethostname()}:{os.getpid()}"


def best_of(values: Sequence[float], mode: str, how: str = "best") -> float | None:
    """The objective of a whole curve under rule `how` (training.selection.pick); None if no value is finite."""
    from mlflow_tune.training.selection import pick

    found = pick(values, mode, how)
    return None if found is None else found[1]
