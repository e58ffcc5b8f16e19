"""Fault points for the reliability tests: the process kills itself at a named moment.

`MLFLOW_TUNE_FAULT=NAME:N[:SIGNAL]` makes the N-th pass through `point(NAME)` send SIGNAL
(default KILL; INT or TERM) to this process. Timing a signal from outside cannot hit "just after
a trial was reported completed" reliably; this can. Unset (always, outside tests) it costs one
dictionary lookup. Points: `trial-started`, `after-trial-<outcome>` (study/driver.py),
`setup-logged` and `before-summary` (study/study.py), `store-created` (tracking/store.py).
"""

from __future__ import annotations

import os
import signal

_seen: dict[str, int] = {}


def point(name: str) -> None:
    spec = os.environ.get("MLFLOW_TUNE_FAULT")
    if not spec:
        return
    target, _, rest = spec.partition(":")
    if target != name:
        return
    count, _, sig = rest.partition(":")
    _seen[name] = _seen.get(name, 0) + 1
    if _seen[name] == int(count or 1):
        os.kill(os.getpid(), getattr(signal, "SIG" + (sig or "KILL").upper()))
