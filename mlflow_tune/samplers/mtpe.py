"""`algo: mtpe` (the default): Optuna's multivariate TPE behind the same ask/tell as hyperopt's.

Why a second library: hyperopt's TPE models every parameter on its own, so it cannot learn that
a learning rate is good only with a given optimizer; Optuna's TPE models them jointly. On
bench/efficiency.py (3 tasks x 5 seeds, median pruning) it closed the gap to Optuna's own study
at equal budget (README, "Which sampler and pruner"). Optuna is only the sampler here: MLflow
stays the history, our driver schedules and prunes, and resume tells it the finished trials back.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from mlflow_tune.config.space import INT_KINDS, LOG_KINDS, Param, Space


def _distribution(param: Param) -> Any:
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if param.kind == "choice":   # by index: Optuna's categories must be plain scalars, ours need not be
        return CategoricalDistribution(tuple(range(len(param.choices))))
    assert param.low is not None and param.high is not None
    if param.kind in INT_KINDS:
        return IntDistribution(int(param.low), int(param.high), log=param.kind in LOG_KINDS)
    # A q-step is applied by Param.decode_value: Optuna's own step cannot be combined with log.
    return FloatDistribution(param.low, param.high, log=param.kind in LOG_KINDS)


class OptunaTPE:
    """Multivariate TPE (Optuna's TPESampler) as a Suggester: ask, tell, learn, restore, skip."""

    def __init__(self, space: Space, seed: int, startup: int):
        import optuna  # here, not at the top: only a search with algo mtpe pays for the import

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.space, self.startup = space, startup
        self.rng = np.random.default_rng(seed)
        self._dists = {p.name: _distribution(p) for p in space.params}
        self._study = optuna.create_study(study_name="mlflow-tune", direction="minimize")
        self._asked: dict[int, Any] = {}

    def _sampler(self) -> Any:
        from optuna.exceptions import ExperimentalWarning
        from optuna.samplers import TPESampler

        # A fresh seed per trial number, drawn in order: a resumed search skips the seeds it used
        # (skip()), so its start-up trials do not repeat the first run's.
        with warnings.catch_warnings():   # Optuna before 5 calls multivariate experimental, on every trial
            warnings.simplefilter("ignore", ExperimentalWarning)
            # constant_liar: trials still training (parallel > 1) count as bad guesses, so the
            # next ask looks elsewhere; Optuna 5's default, off by default before it.
            return TPESampler(seed=int(self.rng.integers(2**31 - 1)), n_startup_trials=self.startup,
                              multivariate=True, constant_liar=True)

    def ask(self, tid: int) -> dict[str, Any]:
        self._study.sampler = self._sampler()
        trial = self._study.ask(self._dists)
        self._asked[tid] = trial
        return {p.name: self._value(p, trial.params[p.name]) for p in self.space.params}

    @staticmethod
    def _value(param: Param, raw: Any) -> Any:
        return param.choices[raw] if param.kind == "choice" else param.decode_value(raw)

    def tell(self, tid: int, loss: float | None, steps: int | None = None) -> None:
        """Trial `tid`'s loss; None marks it failed. `steps`: epochs a pruned trial ran."""
        from optuna.trial import TrialState

        trial = self._asked.pop(tid, None)
        if trial is None:
            return
        if loss is None or not np.isfinite(loss):
            self._study.tell(trial, state=TrialState.FAIL)
        elif steps is not None:   # pruned: Optuna ranks it below finished trials, later steps first
            trial.report(float(loss), steps)
            self._study.tell(trial, state=TrialState.PRUNED)
        else:
            self._study.tell(trial, float(loss))

    def learn(self, tid: int, params: Mapping[str, Any], loss: float | None) -> None:
        """A trial run elsewhere (an earlier stage's, or one finished before a resume)."""
        from optuna.trial import TrialState, create_trial

        # hyperopt's form of a finished trial (a choice's index, a decoded number) is Optuna's too
        vals = self.space.to_hyperopt_vals(params)
        values: dict[str, Any] = {}
        for p in self.space.params:
            (value,) = vals[p.name]
            if p.kind != "choice":
                assert p.low is not None and p.high is not None
                # decoding rounds to significant digits, which may step just past a bound
                value = min(max(value, p.low), p.high)
                value = round(value) if p.kind in INT_KINDS else value
            values[p.name] = value
        ok = loss is not None and bool(np.isfinite(loss))
        self._study.add_trial(create_trial(params=values, distributions=self._dists,
                                           value=loss if ok else None,
                                           state=TrialState.COMPLETE if ok else TrialState.FAIL))

    def skip(self, asked: int) -> None:
        if asked > 0:
            self.rng.integers(2**31 - 1, size=asked)
