"""`mlflow_tune.optimize` as people call it from Python: the search of their own function, with the
progress display and the summary `mlflow-tune search` prints, and the same report on its run.

The study's `optimize` (study/study.py) is the silent library function; this is the user-facing
one, here because only cli/ prints.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlflow_tune.study.listener import SearchListener
    from mlflow_tune.study.summary import SearchOutcome
    from mlflow_tune.trials.function import Trial


def optimize(fn: Callable[[Trial], Any], space: Mapping[str, Any], *, metric: str, progress: bool = True,
             report: bool = True, listener: SearchListener | None = None, **settings: Any) -> SearchOutcome:
    """Tune `fn(trial)`: see `mlflow_tune.study.study.optimize` for the arguments. `progress=False`
    prints nothing (for scripts and notebooks that print their own); `report=False` skips
    report.html; a `listener` of your own replaces the display."""
    from mlflow_tune.cli.progress import default_listener
    from mlflow_tune.cli.search import print_search, search_report
    from mlflow_tune.study.study import optimize as run_optimize

    outcome = run_optimize(fn, space, metric=metric, listener=listener or default_listener(progress), **settings)
    page = search_report(outcome, say=progress) if report and outcome.trials and not outcome.interrupted else None
    if progress:
        print_search(outcome, page, err=True)
    return outcome
