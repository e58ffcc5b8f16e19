"""Curve measurements behind :mod:`mlflow_tune.diagnostics`, each with the source of its idea.

Pure python on sequences of floats; no torch, no mlflow, no numpy. Every function tolerates short
series (0 or 1 values) and returns a neutral value there instead of raising.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

# Thresholds.  Each names its source; values were set from those sources before the benchmark and
# checked on its tuning half (bench/diagnostics/README.md).
MIN_EPOCHS = 3  # fewer epochs than this: only nan/diverged can be told; anything else is 'unknown'
# diverged: the loss at the end is >= 3x the chance loss, i.e. far worse than predicting the class
# prior (cf. AUTOTRAINER's 'explode' on a val loss >= 1e5; ours is relative so it works for any C)
DIVERGE_FACTOR = 3.0
# stalled: the train loss ends at >= 90% of ln(C) (no better than guessing, PRACTICE.md "not moving");
# without C: it fell by less than 10% of its first value over the whole run
STALL_CHANCE = 0.9
STALL_DECREASE = 0.10
# oscillating: AUTOTRAINER ol_judge; a peak/trough pair counts when its amplitude is >= 10% of the
# chance loss (or >= 0.05 accuracy, AUTOTRAINER's unstable_threshold), and the run is unstable when
# such pairs number >= 20% of the epochs (AUTOTRAINER eta = 0.2) and at least 2
OSC_LOSS_AMPLITUDE = 0.10
OSC_ACC_AMPLITUDE = 0.05
OSC_RATE = 0.2
# overfit: Prechelt's generalisation loss GL >= 20 % at the end (Prechelt stops at GL > 1..5 %; a run
# whose val loss ends 20 % above its best has clearly turned), together with a train-val accuracy gap
# >= 0.07 (AUTOTRAINER 'test_not_well': 0.07 when train acc > 0.9, 0.1 otherwise; Ng, Machine Learning
# Yearning ch. 20-22: variance = dev error - training error).  A gap >= 0.15 alone also counts (large
# variance even when the val loss has not turned yet).  E_opt is floored at 5% of the chance loss.
GL_OVERFIT = 20.0
GAP_OVERFIT = 0.07
GAP_ALONE = 0.15
GL_FLOOR = 0.05
GL_ONLY_OVERFIT = 50.0  # val loss only (no train accuracy): GL alone must be larger
# underfit (high bias): the final train loss keeps >= 25% of the chance loss (or, accuracy only, the
# train accuracy has < 75% of the skill above chance) and there is no variance problem (Ng: high
# training error, small train-val gap).  Not one accuracy threshold: it is relative to chance, gated by
# the gap, and a run whose train loss still falls (Prechelt progress P_5 >= PROGRESS_FALLING per mille)
# is 'still_improving' rather than 'high_bias'.
UNDERFIT_LOSS = 0.25
UNDERFIT_SKILL = 0.75
PROGRESS_FALLING = 30.0
# ... and the absolute drop over those 5 epochs is >= 3% of the chance loss: at tiny loss levels P_k
# stays large (0.010 -> 0.008 is 25% relative) although nothing useful is left to gain
FALL_SHARE = 0.03
JUDGMENT_POINT = 0.3  # AUTOTRAINER judges a run only after 30% of its planned epochs
# majority class: the best val accuracy must beat the share of the most frequent val class by at least
# 1 point, else the model may just be answering that class (a 95:5 split gives 0.95 for nothing, and
# its loss, the class entropy 0.2 nats, is far below ln(2), so the loss rules call it a fit).  1 point
# is about one standard error of an accuracy near 0.95 on 400 validation rows (sqrt(.95 * .05 / 400)
# = 0.011): less than that above the majority rate cannot be told from it on typical splits.
MAJORITY_MARGIN = 0.01
# ... unless the balanced accuracy has skill above chance (rules.skill >= 0.1, the share the accuracy-only
# stall rule uses): class weights and oversampling trade majority hits for minority ones, so such a run's
# accuracy may end below the majority rate while every class is found.  A constant answer scores 1/C.
MAJORITY_BALANCED_SKILL = 0.1
# --- added for issue 13, for runs of other families (recurrent, 2-D toy tasks, other optimisers):
# chance level: accuracy within 2 points of always answering one class (about 1.5 standard errors
# of an accuracy near 0.1 on 400 rows) together with a loss >= STALL_CHANCE x ln(C)
CHANCE_ACC_MARGIN = 0.02
# validation swings (AUTOTRAINER ol_judge on the val curves): accuracy pairs of >= 10 points (twice
# AUTOTRAINER's 0.05: a val split of a few hundred rows moves ~2-3 points by sampling alone), loss
# peaks >= 50% above the trough before them and above GL_FLOOR x chance in absolute terms
OSC_VAL_ACC_AMPLITUDE = 0.10
# ... or, when the validation set's size n is known, VAL_NOISE_Z standard errors of an accuracy p on
# it, sqrt(p (1 - p) / n), if that is larger: on 60 rows at p = 0.8 (SE 0.052) a 10-point swing is
# two standard errors, the set's own noise, not instability (a 100-row set moves in 1-point steps)
VAL_NOISE_Z = 4.0
OSC_VAL_LOSS_RELATIVE = 0.5
# cut short: still at chance level but the loss fell >= 5% of ln(C) over its last (up to 5) epochs
# and is at its lowest at the end (a tiny learning rate moves it ~1%/epoch or less near chance)
CUT_FALL = 0.05
# overfit in the loss alone: Prechelt GL >= 50% (the no-accuracy rule's bar) while the train loss
# ends at <= 70% of its value at the best val epoch
GL_LOSS_OVERFIT = 50.0
TRAIN_FELL = 0.7


def first_nonfinite(xs: Sequence[float]) -> int | None:
    """Index of the first NaN/inf value, or None.  AUTOTRAINER (Zhang et al., ICSE 2021) ``has_NaN``:
    a NaN or infinite loss is the 'explode' symptom and ends the diagnosis at once."""
    for i, x in enumerate(xs):
        if not math.isfinite(x):
            return i
    return None


def tail_mean(xs: Sequence[float], k: int) -> float:
    """Mean of the last ``k`` values: one noisy epoch must not decide a label."""
    tail = xs[-k:] if xs else [math.nan]
    return sum(tail) / len(tail)


def generalisation_loss(val: Sequence[float], floor: float, k: int = 2) -> tuple[float, int]:
    """Prechelt 1998, "Early stopping - but when?", GL(t) = 100 * (E_va(t) / E_opt(t) - 1): how far (in %)
    the validation error at the end lies above the best seen so far.  Returns (GL at the end, epoch of
    E_opt).  Two deviations, both for short noisy epoch curves: E_va(t) is the mean of the last ``k``
    epochs, and E_opt is floored at ``floor`` (a small share of the chance loss) so that a rise from
    0.003 to 0.006 nats on an easy data set does not count as 100 % generalisation loss."""
    if not val:
        return 0.0, 0
    best = min(range(len(val)), key=lambda i: val[i])
    opt = max(val[best], floor)
    return 100.0 * (tail_mean(val, k) / opt - 1.0), best


def training_progress(train: Sequence[float], k: int = 5) -> float:
    """Prechelt 1998, training progress P_k(t) = 1000 * (sum of the last k training errors /
    (k * their minimum) - 1), in per mille: how much the training error still moves inside the strip.
    Prechelt stops training once P_k < 0.1; large values mean training is still making progress
    (or is unstable).  0.0 for fewer than 2 values."""
    strip = train[-k:]
    if len(strip) < 2:
        return 0.0
    low = min(strip)
    if low <= 0.0:
        return 0.0 if max(strip) <= 0.0 else math.inf
    return 1000.0 * (sum(strip) / (len(strip) * low) - 1.0)


def recent_decrease(xs: Sequence[float], k: int = 5) -> float:
    """Relative decrease of the curve over its last ``k`` epochs, (x[-k] - x[-1]) / x[-k]; the sign
    says whether training loss is still falling (positive) at the end."""
    if len(xs) < 2:
        return 0.0
    start = xs[-min(k, len(xs))]
    return (start - xs[-1]) / start if start > 0 else 0.0


def oscillations(xs: Sequence[float], amplitude: float) -> int:
    """AUTOTRAINER (Zhang et al., ICSE 2021) ``ol_judge``: collect the local maxima and local minima of
    a curve over epochs, pair the i-th peak with the i-th trough and count the pairs whose difference
    is at least ``amplitude``.  AUTOTRAINER flags 'unstable' training when the count reaches a share
    (0.2-0.25) of the epochs; it uses accuracy with amplitude 0.03-0.05, we also apply it to loss
    with an amplitude scaled by the chance loss (see diagnostics.OSC_*)."""
    peaks: list[float] = []
    troughs: list[float] = []
    for i in range(1, len(xs) - 1):
        if xs[i] >= xs[i - 1] and xs[i] >= xs[i + 1]:
            peaks.append(xs[i])
        if xs[i] <= xs[i - 1] and xs[i] <= xs[i + 1]:
            troughs.append(xs[i])
    return sum(1 for p, t in zip(peaks, troughs, strict=False) if p - t >= amplitude)


def relative_oscillations(xs: Sequence[float], relative: float, floor: float) -> int:
    """:func:`oscillations` with the amplitude relative to the level: a peak counts when it lies
    >= ``relative`` above the trough before it (and >= ``floor`` in absolute terms).  A val loss
    swinging 0.08 <-> 0.22 is a large swing although 0.14 nats is small next to ln(C)."""
    count, trough = 0, None
    for i in range(1, len(xs) - 1):
        if xs[i] <= xs[i - 1] and xs[i] <= xs[i + 1]:
            trough = xs[i]
        elif trough is not None and xs[i] >= xs[i - 1] and xs[i] >= xs[i + 1]:
            if xs[i] - trough >= max(relative * trough, floor):
                count += 1
            trough = None
    return count


def max_rise(xs: Sequence[float]) -> float:
    """AUTOTRAINER ``max_delta_acc``: the largest epoch-to-epoch increase of a curve.  Below 0.01 in
    accuracy AUTOTRAINER reports 'slow convergence' (sc_accuracy)."""
    return max((b - a for a, b in itertools.pairwise(xs)), default=0.0)


def skill(acc: float, n_classes: int | None) -> float:
    """Accuracy rescaled so that chance (1/C) is 0 and perfect is 1 (Cohen-kappa-like normalisation);
    with C unknown the raw accuracy."""
    if not n_classes or n_classes < 2:
        return acc
    chance = 1.0 / n_classes
    return (acc - chance) / (1.0 - chance)


def val_noise(acc: float, n_val: int | None) -> float:
    """The sampling standard error of an accuracy `acc` measured on `n_val` rows (0 when unknown)."""
    if not n_val or n_val <= 0 or not math.isfinite(acc):
        return 0.0
    p = min(max(acc, 0.0), 1.0)
    return math.sqrt(p * (1.0 - p) / n_val)


# A flag whose confidence is below this was raised within a fifth of its rule's threshold (context.conf
# is 0.5 at the threshold, rising with the margin): its evidence says so.  Measured (session 17): on
# runs.jsonl and wide_runs.jsonl such flags were 14/14 right, on the practitioner-fault runs 14/38 (the
# moons runs whose loss floor sits at the underfit bar): the place where a reference (siblings, a
# bigger model) has to decide.
WEAK = 0.6
