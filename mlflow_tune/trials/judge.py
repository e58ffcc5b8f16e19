"""The live judgement of a trial that reports its own metrics (a user's function, an MLflow Project).

Our own loop's trials are judged by training callbacks (the guard, `PruningCallback`); these
trials hand in named values instead. `Judge` keeps their history, and after each new point of
the search's metric says whether the trial should stop: not converging (a non-finite value,
or the live guard's verdict on the curves it recognises) or pruned.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from mlflow_tune.diagnostics import diagnose, early_verdict
from mlflow_tune.diagnostics.advice import nonconvergent_advice
from mlflow_tune.diagnostics.curves import Curves, Diagnosis
from mlflow_tune.diagnostics.runs import pick_keys
from mlflow_tune.trials.pruning import PruningCallback
from mlflow_tune.trials.records import Board, TrialSpec

GUARD_WINDOW = 5   # the guard reads the first loss and the last few; see `curves`


class Judge:
    def __init__(self, spec: TrialSpec, board: Board, params: Mapping[str, Any] | None = None):
        self.spec, self.params = spec, dict(params or spec.config)
        self.pruning = PruningCallback(spec, board)
        self.history: dict[str, list[float]] = {}
        self.verdict: Diagnosis | None = None   # set when the trial was stopped for not converging
        self.stopped = ""                       # why the trial should stop ("" while it may go on)

    def values(self, key: str) -> list[float]:
        return self.history.get(key, [])

    def add(self, values: Mapping[str, float]) -> None:
        for key, value in values.items():
            self.history.setdefault(key, []).append(value)

    def curves(self, window: int = 0) -> Curves:
        """The metrics the diagnosis recognises (or `spec.curve_keys` names), as curves; with
        `window`, each curve's first value and last `window` ones."""
        keys = pick_keys(set(self.history), self.spec.curve_keys)
        chosen = {curve: self.history[key] for curve, key in keys.items()}
        if window:
            chosen = {c: v if len(v) <= window + 1 else [v[0], *v[-window:]] for c, v in chosen.items()}
        return Curves(**chosen)

    def judge(self, value: float, latest: Mapping[str, float], where: str) -> str:
        """After a new point `value` of the search's metric (`latest`: the values that came with it,
        `where`: e.g. "step 12"): the reason to stop, or ""; sets `stopped` and `verdict`."""
        # A window keeps this O(1) per point: the whole history each time made a user function's
        # report cost 0.6 ms at 1,000 epochs (bench/trial_report.py). Non-finite values are caught
        # as they arrive, so the window misses none.
        watched = {self.spec.metric, *pick_keys(set(latest), {}).values(), *self.spec.curve_keys.values()}
        bad = next((k for k in sorted(watched) if k in latest and not math.isfinite(latest[k])), None)
        verdict = Diagnosis("nonconvergent", "nan", 1.0, f"{bad} is {latest[bad]} at {where}",
                            nonconvergent_advice(self.params, "nan")) if bad else \
            early_verdict(self.curves(window=GUARD_WINDOW))
        if verdict is not None:
            self.verdict = verdict
            self.stopped = f"nonconvergent: {verdict.detail} ({verdict.evidence})"
        else:
            self.stopped = self.pruning.observe(value) or ""
        return self.stopped

    def diagnosis(self, planned_epochs: int | None = None) -> Diagnosis | None:
        """The label at the end: the verdict that stopped the trial, else the curves' diagnosis."""
        curves = self.curves()
        if self.verdict is not None or not (curves.train_loss or curves.val_loss):
            return self.verdict
        return diagnose(curves, planned_epochs=planned_epochs, params=self.params)

    def points(self) -> Sequence[float]:
        return self.values(self.spec.metric)
