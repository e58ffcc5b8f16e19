"""What the framework callbacks share: which numbers to report, and stopping without raising."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from mlflow_tune import interrupts
from mlflow_tune.trials.function import Trial, TrialPruned


def need(module: str, extra: str, what: str) -> Any:
    """Import `module`, or one line naming the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(f'{what} needs {module.split(".")[0]}; install it with: '
                          f'pip install "mlflow-tune[{extra}]"') from None


def scalars(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The finite-or-not single numbers among a framework's metrics (tensors of one element too),
    without Lightning's per-step copies (`*_step`): a trial's curves are per epoch."""
    out: dict[str, float] = {}
    for key, value in metrics.items():
        if str(key).endswith("_step"):
            continue
        numel = getattr(value, "numel", None)
        if numel is not None:
            if numel() != 1:
                continue
            value = value.item()
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        out[str(key)] = float(value)
    return out


def report(trial: Trial, step: int, metrics: Mapping[str, float], log: bool) -> bool:
    """Report one epoch; True when training must stop now (pruned, not converging, or a signal).

    Never raises into the framework: Lightning turns a KeyboardInterrupt into `sys.exit(1)` (and
    ignores SIGINT from then on), and an exception would end its run FAILED. The trial is ended
    by the search as pruned or interrupted once the framework has stopped cleanly."""
    try:
        trial.report(step, metrics, log=log)   # non-finite values too: they are the guard's to judge
    except TrialPruned:
        return True
    except interrupts.Interrupted:
        trial.interrupted = True
        return True
    return False
