"""A trial judged against its siblings: the other trials of the same search, on the same data and budget.

A run's own curves can look converged while it ends far below what the task allows: a learning rate
a little small, too few units, heavy dropout.  On its own, nothing says where "far below" starts (the
loss share of ln C is a coarse bar; a task's achievable accuracy is unknown).  Inside a search the
siblings say it: the best completed sibling reached that accuracy on the same split, in the same
epochs.  A trial whose own rules say healthy and whose objective is far below that is underfit (Ng's
avoidable bias, with the best sibling standing in for the achievable error), and its advice is the
best sibling's values.

"Far" is judged at the measurement's noise, not below it: the difference of two accuracies on the
same n validation rows has a standard error of at most sqrt(2 p (1 - p) / n); retraining one
configuration with other seeds moved it 0.004-0.009 (bench/noise.py).  We ask for
SIBLING_Z = 4 such standard errors and at least SIBLING_GAP = 0.05 (five points: ten times the
retraining spread), so that seed noise and a 100-row validation set never make a trial "underfit".
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from mlflow_tune.diagnostics import advice as adv
from mlflow_tune.diagnostics.curves import Diagnosis

SIBLING_PREFIX = "as the best sibling"   # changes.advice_change reads "...: NAME OLD -> NEW" after it
SIBLING_GAP = 0.05
SIBLING_Z = 4.0
MIN_SIBLINGS = 3   # the best of fewer than 3 completed trials is too weak a reference
# objectives the check understands: accuracies and scores in [0, 1], higher is better
SCORE_WORDS = ("acc", "f1", "auc", "precision", "recall")
# the parameters whose difference is named as a change `fix` can apply (changes._ARROWS's wording)
_SAID = {"lr": "learning rate", "dropout": "dropout", "weight_decay": "weight decay (L2)", "epochs": "epochs",
         "hidden_units": "hidden_units", "layers": "layers", "momentum": "momentum", "batch_size": "batch size",
         "grad_clip": "grad_clip"}


@dataclass(frozen=True)
class Sibling:
    tid: int
    value: float                      # the objective, in its own units (a score: higher is better)
    params: Mapping[str, object]      # the searched values


def is_score(metric: str, mode: str) -> bool:
    """Whether the search's metric is a score in [0, 1] this check can judge (val_accuracy, val_f1, ...)."""
    return mode == "max" and any(word in metric.lower() for word in SCORE_WORDS)


def margin(best: float, n_val: int | None) -> float:
    """How far below the best sibling a trial must end to count as not fitting."""
    if not n_val or n_val <= 0:
        return SIBLING_GAP
    p = min(max(best, 0.0), 1.0)
    return max(SIBLING_GAP, SIBLING_Z * math.sqrt(2 * p * (1 - p) / n_val))


def below_siblings(trial: Sibling, siblings: Sequence[Sibling], metric: str,
                   n_val: int | None = None) -> Diagnosis | None:
    """underfit/below_siblings when `trial` ends far below the best of `siblings` (completed trials of
    the same search and budget, `trial` excluded), else None."""
    others = [s for s in siblings if s.tid != trial.tid and math.isfinite(s.value)]
    if len(others) < MIN_SIBLINGS or not math.isfinite(trial.value):
        return None
    best = max(others, key=lambda s: (s.value, -s.tid))
    need = margin(best.value, n_val)
    gap = best.value - trial.value
    if gap < need:
        return None
    rows = f" on {n_val} val rows" if n_val else ""
    evidence = (f"{metric} {trial.value:.4g} ends {gap:.3g} below the best of {len(others)} sibling trials "
                f"(trial {best.tid}: {best.value:.4g}; >= {need:.3g} counts{rows}), though its curves converged")
    confidence = max(0.5, min(0.99, 0.5 + 0.5 * (gap - need) / need))
    return Diagnosis("underfit", "below_siblings", confidence, evidence, _advice(trial, best, metric))


# PRACTICE.md: the learning rate matters most, then the optimizer and batch, capacity, regularisation
_ORDER = ("lr", "optimizer", "momentum", "batch_size", "hidden_units", "layers", "rnn_cell", "dropout",
          "weight_decay", "epochs")
BUDGET = ("epochs", "subsample")   # searched values that change what a trial could reach


def judge_all(trials: Sequence[tuple[Sibling, str]], metric: str, n_val: int | None = None
              ) -> dict[int, Diagnosis]:
    """The trials (each with its own label) that their siblings relabel: every healthy one far below the
    best of the others at its budget.  `trials`: the completed trials of one search level."""
    out = {}
    for trial, label in trials:
        if label != "healthy":
            continue
        siblings = [s for s, _ in trials if _same_budget(s, trial)]
        found = below_siblings(trial, siblings, metric, n_val)
        if found is not None:
            out[trial.tid] = found
    return out


def _same_budget(sibling: Sibling, trial: Sibling) -> bool:
    """A sibling trained with more epochs or rows than `trial` had is not at its budget."""
    for name in BUDGET:
        mine, theirs = adv.num(trial.params, name), adv.num(sibling.params, name)
        if mine is not None and theirs is not None and theirs > mine:
            return False
    return True


def _advice(trial: Sibling, best: Sibling, metric: str) -> tuple[str, ...]:
    """The best sibling's values where they differ, each worded as a change `fix` applies."""
    out = []
    for name, value in sorted(best.params.items(), key=lambda kv: (_ORDER.index(kv[0]) if kv[0] in _ORDER
                                                                   else len(_ORDER), kv[0])):
        mine = trial.params.get(name)
        if mine is None or str(mine) == str(value):
            continue
        a, b = adv.num(trial.params, name), adv.num(best.params, name)
        if name in _SAID and a is not None and b is not None:
            out.append(f"{SIBLING_PREFIX} (trial {best.tid}, {metric} {best.value:.4g}): "
                       f"{_SAID[name]} {adv.fmt(a)} -> {adv.fmt(b)}")
        else:
            out.append(f"{SIBLING_PREFIX} (trial {best.tid}): {name} {mine} -> {value}")
    return tuple(out) or (f"retrain with another seed: trial {best.tid} reached {best.value:.4g} with the same values",)
