"""How a search reports progress. The search calls these; cli/ implements them for people."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mlflow_tune.trials.records import TrialOutcome


class SearchListener:
    """Events of a search; the default does nothing."""

    def search_started(self, name: str, max_trials: int, restored: Sequence[TrialOutcome] = ()) -> None:
        """A search (or stage) of `max_trials` starts; `restored`: its trials already done (a resume)."""
        return None

    def trial_started(self, tid: int, params: dict[str, Any]) -> None:
        return None

    def trial_finished(self, outcome: TrialOutcome, best: TrialOutcome | None) -> None:
        return None

    def message(self, text: str) -> None:
        return None

    def search_finished(self) -> None:
        return None
