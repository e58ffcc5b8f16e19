"""Ask/tell over hyperopt's suggest functions and Optuna's TPE (`mtpe`, mtpe.py), plus grid.

`fmin` owns its loop and runs trials serially; driving `algo.suggest` over a `Trials` and a
`Domain` ourselves (as hyperopt's SparkTrials does inside) lets the search layer own
scheduling, pruning and resume. The history lives in MLflow: on resume every finished
child run is told back here, so no Trials pickle is ever written.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from mlflow_tune.config.settings import ALGOS
from mlflow_tune.config.space import Space, grid_points
from mlflow_tune.samplers.mtpe import OptunaTPE


def _key(params: Mapping[str, Any], names: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(str(params.get(n)) for n in names)


def tpe_startup(max_trials: int) -> int:
    """Random trials before TPE models the history.

    hyperopt's default of 20 makes a 20-trial search pure random search; a fifth of the
    budget (at least 5, as in Bergstra et al. 2011's small-budget runs) lets TPE act.
    """
    return max(5, min(20, max_trials // 5))


def mtpe_startup(max_trials: int) -> int:
    """Random trials before Optuna's TPE models the history: its default of 10, or half a smaller budget.

    Measured against the 5 that hyperopt's TPE gets in a 20-trial search: accuracy at Optuna's
    spend 0.9758 against 0.9728, pooled over bench/efficiency.py's 15 searches (bench/README.md).
    Half a smaller budget so that TPE still acts in a short search (the demo's 10 trials).
    """
    return max(1, min(10, max_trials // 2))


def planned_trials(space: Space, algo: str, max_trials: int) -> int:
    """Trials a level will really run: a grid stops at its size, whatever max_trials says."""
    return min(max_trials, len(grid_points(space))) if algo == "grid" else max_trials


class Suggester:
    """Hands out the next trial's parameters and learns from finished trials."""

    def __init__(self, space: Space, algo: str, seed: int = 0, max_trials: int = 20):
        self.space, self.algo = space, algo
        self.rng = np.random.default_rng(seed)
        self._used: set[tuple[str, ...]] = set()
        self._names = space.names
        self._mtpe: OptunaTPE | None = None
        if algo == "grid":
            self._grid = grid_points(space)
            return
        if algo == "mtpe":
            self._mtpe = OptunaTPE(space, seed, mtpe_startup(max_trials))
            return
        from hyperopt import Domain, Trials, anneal, rand, tpe

        self._expr = space.to_hyperopt()
        self._domain = Domain(lambda _: 0.0, self._expr)
        self._trials = Trials()
        if algo == "tpe":
            startup = tpe_startup(max_trials)
            self._suggest: Any = lambda ids, d, t, s: tpe.suggest(ids, d, t, s, n_startup_jobs=startup)
        elif algo == "random":
            self._suggest = rand.suggest
        elif algo == "anneal":
            self._suggest = anneal.suggest
        else:
            raise ValueError(f"algo={algo!r} is not valid; choose one of: {', '.join(ALGOS)}.")

    @classmethod
    def fixed(cls, points: list[dict[str, Any]]) -> Suggester:
        """Hand out exactly `points`, in order (e.g. a final retrain of the best configurations)."""
        suggester = cls(Space(()), "grid")
        suggester._grid = [dict(p) for p in points]
        suggester._names = tuple(sorted({k for p in points for k in p}))
        return suggester

    @property
    def remaining(self) -> int | None:
        """Grid points not yet handed out (None: unbounded)."""
        return len(self._grid) - len(self._used) if self.algo == "grid" else None

    def ask(self, tid: int) -> dict[str, Any] | None:
        """Parameters for trial `tid`, or None when the grid is exhausted."""
        if self.algo == "grid":
            for point in self._grid:
                if _key(point, self._names) not in self._used:
                    self._used.add(_key(point, self._names))
                    return dict(point)
            return None
        if self._mtpe is not None:
            return self._mtpe.ask(tid)
        from hyperopt import space_eval

        docs = self._suggest([tid], self._domain, self._trials, int(self.rng.integers(2**31 - 1)))
        self._trials.insert_trial_docs(docs)
        self._trials.refresh()
        vals = {k: v[0] for k, v in docs[0]["misc"]["vals"].items() if v}
        return self.space.decode(space_eval(self._expr, vals))

    def tell(self, tid: int, loss: float | None, steps: int | None = None) -> None:
        """Record trial `tid`'s loss (lower is better); None marks it failed.

        `steps`: the epochs a pruned trial ran (hyperopt has no notion of it: its loss says enough).
        """
        if self.algo == "grid":
            return
        if self._mtpe is not None:
            self._mtpe.tell(tid, loss, steps)
            return
        from hyperopt import JOB_STATE_DONE, STATUS_FAIL, STATUS_OK

        for doc in self._trials._dynamic_trials:   # private; checked in tests/samplers/test_samplers.py
            if doc["tid"] == tid:
                ok = loss is not None and bool(np.isfinite(loss))
                doc["result"] = {"loss": float(loss or 0.0), "status": STATUS_OK} if ok else {"status": STATUS_FAIL}
                doc["state"] = JOB_STATE_DONE
        self._trials.refresh()

    def restore(self, tid: int, params: Mapping[str, Any], loss: float | None) -> None:
        """Add a trial that finished earlier (read back from MLflow on resume)."""
        if self.algo == "grid":
            self._used.add(_key(params, self._names))
            return
        self.learn(tid, params, loss)

    def skip(self, asked: int) -> None:
        """Pass over the seeds an interrupted run already drew for its first `asked` trial numbers.

        ask() draws one seed per trial number, in order. A resumed search must start after all of
        them, interrupted trials' included: skipping only the finished trials' draws made a resumed
        random search draw a finished trial's seed again whenever a later-numbered trial had
        finished first (parallel 2), and train that configuration twice.
        """
        if self._mtpe is not None:
            self._mtpe.skip(asked)
        elif self.algo != "grid" and asked > 0:
            self.rng.integers(2**31 - 1, size=asked)

    def learn(self, tid: int, params: Mapping[str, Any], loss: float | None) -> None:
        """Tell the sampler a point evaluated elsewhere (e.g. an earlier stage's trial, warm start)."""
        if self.algo == "grid":
            return
        if self._mtpe is not None:
            self._mtpe.learn(tid, params, loss)
            return
        from hyperopt import JOB_STATE_DONE, STATUS_FAIL, STATUS_OK

        ok = loss is not None and bool(np.isfinite(loss))
        result = {"loss": float(loss or 0.0), "status": STATUS_OK} if ok else {"status": STATUS_FAIL}
        misc = {"tid": tid, "cmd": self._domain.cmd, "workdir": None,
                "idxs": {name: [tid] for name in self.space.names},
                "vals": self.space.to_hyperopt_vals(params)}
        docs = self._trials.new_trial_docs([tid], [None], [result], [misc])
        for doc in docs:
            doc["state"] = JOB_STATE_DONE
        self._trials.insert_trial_docs(docs)
        self._trials.refresh()
