"""Which epoch of a run counts: the one whose weights are kept, tested and reported as the objective.

Three rules (``search.objective`` in a tune file):

- ``best``: the single best epoch of the metric.  One lucky epoch wins: a trial whose val loss ran
  0.259, 0.149, 0.187, 0.084, 0.222, ... scored 0.084 and tested at 0.289.
- ``smoothed`` (the default): the best epoch of the metric's exponential moving average
  s_t = (1 - w) s_{t-1} + w x_t with w = 0.5, s_0 = x_0; the objective is s_t at that epoch and the
  kept weights are that epoch's.  Why an EMA rather than the median of a window around the best
  epoch: the EMA is causal, so the loop can decide at epoch t whether to keep epoch t's weights
  without holding later checkpoints; a centred window needs epochs t+1..t+k first (k extra copies of
  the weights, and a run stopped early has no right half).  Why w = 0.5: one epoch's deviation moves
  the objective by at most half of it (the dip above counts 0.140, not 0.084, and a steadier trial
  ending near 0.12 wins), while a falling curve lags by about one epoch only, so short budgets are
  not penalised much.
- ``last``: the last epoch, weights as training left them.

Pure python: the loop (training) and the trials of a user's function or project (trials) share it, so
that the objective a trial reports is computed the same way whoever trained it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

OBJECTIVES = ("best", "smoothed", "last")
EMA_WEIGHT = 0.5


def choice_error(value: object) -> str:
    return f"search.objective={value!r} is not valid; choose one of: {', '.join(OBJECTIVES)}."


@dataclass(frozen=True)
class Selection:
    """What the loop keeps: the epoch `how` picks on `metric` (`mode` min or max)."""

    metric: str = "val_loss"
    mode: str = "min"
    how: str = "smoothed"

    def __post_init__(self) -> None:
        if self.how not in OBJECTIVES:
            raise ValueError(choice_error(self.how))
        if self.mode not in ("min", "max"):
            raise ValueError(f"mode={self.mode!r} is not valid; choose one of: min, max.")

    def tracker(self) -> Tracker:
        return Tracker(self.how, self.mode)


class Tracker:
    """Fed one value per epoch; says whether that epoch is now the one to keep.

    ``epoch`` and ``value`` are the kept epoch and its objective (the smoothed value for
    ``smoothed``); -1 and None until a finite value came.  Non-finite values are skipped: they
    neither win nor enter the average (such a run is stopped as nonconvergent anyway)."""

    def __init__(self, how: str, mode: str) -> None:
        self.how, self.sign = how, 1.0 if mode == "min" else -1.0
        self.epoch: int = -1
        self.value: float | None = None
        self._ema: float | None = None
        self._seen = 0

    def update(self, value: float | None) -> bool:
        epoch, self._seen = self._seen, self._seen + 1
        if value is None or not math.isfinite(value):
            return False
        if self.how == "smoothed":
            self._ema = value if self._ema is None else (1 - EMA_WEIGHT) * self._ema + EMA_WEIGHT * value
            score = self._ema
        else:
            score = value
        if self.how == "last" or self.value is None or self.sign * score < self.sign * self.value:
            self.epoch, self.value = epoch, score
            return True
        return False


def pick(values: Iterable[float | None], mode: str = "min", how: str = "smoothed") -> tuple[int, float] | None:
    """(epoch, objective) of a whole curve under rule `how`; None when no value is finite."""
    tracker = Tracker(how, mode)
    for v in values:
        tracker.update(v)
    return None if tracker.value is None else (tracker.epoch, tracker.value)


def smoothed(values: Iterable[float]) -> list[float]:
    """The EMA curve `smoothed` ranks (NaN where the input is not finite), for reports and tests."""
    out: list[float] = []
    ema: float | None = None
    for v in values:
        if math.isfinite(v):
            ema = v if ema is None else (1 - EMA_WEIGHT) * ema + EMA_WEIGHT * v
            out.append(ema)
        else:
            out.append(math.nan)
    return out
