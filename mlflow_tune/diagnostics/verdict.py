"""Label a training run from its per-epoch curves: healthy, underfit, overfit or nonconvergent.

Pure functions, importable without torch or mlflow.  ``diagnose`` reads finished curves and returns a
frozen :class:`Diagnosis` with the numbers that decided and ordered advice; ``early_verdict`` is the
cheap per-epoch check for the live guard.  The measurements and their sources are in
:mod:`mlflow_tune.diagnostics_rules`, the advice in :mod:`mlflow_tune.diagnostics_advice`.

The thresholds, each with its source, are in :mod:`mlflow_tune.diagnostics_rules`; they were checked
on the tuning half of ``bench/diagnostics`` (see its README for the figures).
Losses are read relative to the chance loss ln(C) when the number of classes C is known, otherwise
relative to the first logged loss (PRACTICE.md: "the initial loss should be near ln(number of classes)").
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping

from mlflow_tune.diagnostics import advice as adv
from mlflow_tune.diagnostics import rules, symptoms
from mlflow_tune.diagnostics.context import Ctx, context, nonconvergent
from mlflow_tune.diagnostics.context import conf as _conf
from mlflow_tune.diagnostics.curves import Curves, Diagnosis


def _check_nonfinite(ctx: Ctx) -> Diagnosis | None:
    c = ctx.c
    for name in ("train_loss", "val_loss", "train_accuracy", "val_accuracy"):
        xs: tuple[float, ...] = getattr(c, name)
        i = rules.first_nonfinite(xs)
        if i is not None:
            last = f"; last finite value {xs[i - 1]:.4g}" if i > 0 else ""
            return nonconvergent(ctx, "nan", 1.0, f"{name} is {xs[i]} at epoch {i}{last}")
    return None


def _check_diverged(ctx: Ctx) -> Diagnosis | None:
    if not ctx.loss:
        return None
    end = rules.tail_mean(ctx.loss, 2)
    if end >= rules.DIVERGE_FACTOR * ctx.ref:
        ratio = end / ctx.ref
        ev = f"{ctx.loss_name} ends at {end:.4g} = {ratio:.1f}x {ctx.ref_name} (>= {rules.DIVERGE_FACTOR:g}x)"
        return nonconvergent(
            ctx, "diverged", _conf(end / ctx.ref, rules.DIVERGE_FACTOR, rules.DIVERGE_FACTOR), ev
        )
    return None


def _check_stalled(ctx: Ctx) -> Diagnosis | None:
    loss, acc = ctx.loss, ctx.c.train_accuracy or ctx.c.val_accuracy
    if loss:
        if ctx.n_classes:
            # the train loss, not the better of train and val: tried after the first full benchmark
            # run (for heavy-dropout runs), it turned a stuck Adam lr 0.1 run (train 1.0x, val 0.88x
            # ln C) of the tuning half into 'underfit', so it was dropped
            end, name = rules.tail_mean(loss, 2), ctx.loss_name
            if end >= rules.STALL_CHANCE * ctx.ref:
                ev = (
                    f"{name} ends at {end:.4g} = {end / ctx.ref:.2f}x chance loss {ctx.ref_name} "
                    f"(>= {rules.STALL_CHANCE:g}x) after {len(loss)} epochs"
                )
                if symptoms.still_falling(ctx):
                    return symptoms.cut_short(ctx, ev)
                return nonconvergent(ctx, "stalled", _conf(end / ctx.ref, rules.STALL_CHANCE, 0.2), ev)
            return None
        drop = (loss[0] - min(loss)) / loss[0] if loss[0] > 0 else 0.0
        if drop < rules.STALL_DECREASE:
            ev = (
                f"{ctx.loss_name} fell only {100 * drop:.1f}% from its first value {loss[0]:.4g} over "
                f"{len(loss)} epochs (< {100 * rules.STALL_DECREASE:g}%)"
            )
            if symptoms.still_falling(ctx):
                return symptoms.cut_short(ctx, ev)
            return nonconvergent(
                ctx, "stalled", _conf(rules.STALL_DECREASE - drop, 0.0, rules.STALL_DECREASE), ev
            )
        return None
    # accuracy only: at chance when C is known, else AUTOTRAINER's slow-convergence rule (the largest
    # epoch-to-epoch rise < 0.01) on an accuracy that never got high
    if ctx.n_classes and rules.skill(max(acc), ctx.n_classes) < 0.1:
        ev = f"accuracy never above {max(acc):.3f} (chance {1 / ctx.n_classes:.3f}) in {len(acc)} epochs"
        return nonconvergent(ctx, "stalled", 0.8, ev)
    if not ctx.n_classes and rules.max_rise(acc) < 0.01 and max(acc) - min(acc) < 0.01 and max(acc) < 0.7:
        rise = rules.max_rise(acc)
        ev = f"accuracy constant at {acc[-1]:.3f} over {len(acc)} epochs (largest rise {rise:.3f})"
        return nonconvergent(ctx, "stalled", 0.6, ev)
    return None


def _check_oscillating(ctx: Ctx) -> Diagnosis | None:
    if ctx.loss:
        series, amp, what = ctx.loss, rules.OSC_LOSS_AMPLITUDE * ctx.ref, ctx.loss_name
    else:
        series, amp, what = ctx.c.train_accuracy or ctx.c.val_accuracy, rules.OSC_ACC_AMPLITUDE, "accuracy"
    count = rules.oscillations(series, amp)
    need = max(2.0, rules.OSC_RATE * len(series))
    # the run must also end away from its best: a curve that oscillated on the way down but ends at
    # its minimum has converged (AUTOTRAINER only reports 'unstable' for runs that are not converged)
    away = (series[-1] - min(series) >= amp) if ctx.loss else (max(series) - series[-1] >= amp)
    if count >= need and away:
        ev = (
            f"{what}: {count} peak/trough pairs of amplitude >= {amp:.3g} in {len(series)} epochs "
            f"(>= {need:.0f}); ends at {series[-1]:.4g}, best {min(series) if ctx.loss else max(series):.4g}"
        )
        return nonconvergent(ctx, "oscillating", _conf(count, need, need), ev)
    return None


def _check_overfit(ctx: Ctx) -> Diagnosis | None:
    c = ctx.c
    gl, best = rules.generalisation_loss(c.val_loss, rules.GL_FLOOR * ctx.ref) if c.val_loss else (0.0, None)
    gap = (
        rules.tail_mean(c.train_accuracy, 2) - rules.tail_mean(c.val_accuracy, 2)
        if c.train_accuracy and c.val_accuracy
        else None
    )
    if gap is not None:
        hit = ((gl >= rules.GL_OVERFIT and gap >= rules.GAP_OVERFIT) or gap >= rules.GAP_ALONE
               or symptoms.loss_only_overfit(ctx, gl, best or 0))
        conf = max(
            _conf(gap, rules.GAP_OVERFIT, 0.2),
            _conf(gl, rules.GL_OVERFIT, 100.0) if gl >= rules.GL_OVERFIT else 0.0,
        )
    elif c.val_loss:  # no accuracies: the val loss has to turn up clearly, and above the train loss
        above = not c.train_loss or rules.tail_mean(c.val_loss, 2) > rules.tail_mean(c.train_loss, 2)
        hit, conf = gl >= rules.GL_ONLY_OVERFIT and above, _conf(gl, rules.GL_ONLY_OVERFIT, 100.0)
    else:
        return None
    if not hit:
        return None
    parts = []
    if c.val_loss:
        parts.append(
            f"best val loss {c.val_loss[best or 0]:.4g} at epoch {best}, then GL {gl:+.0f}% (Prechelt)"
        )
    if gap is not None:
        parts.append(
            f"train/val accuracy gap {gap:.2f} ({rules.tail_mean(c.train_accuracy, 2):.3f} vs "
            f"{rules.tail_mean(c.val_accuracy, 2):.3f})"
        )
    return Diagnosis("overfit", "high_variance", conf, "; ".join(parts), adv.overfit_advice(ctx.params, best))


def _check_chance(ctx: Ctx, majority: float | None) -> Diagnosis | None:
    found = symptoms.check_chance(ctx, majority)
    falling = found and symptoms.still_falling(ctx, ctx.c.val_loss or ctx.c.train_loss)
    return symptoms.cut_short(ctx, found.evidence) if found and falling else found


def _check_majority(ctx: Ctx, majority: float | None) -> Diagnosis | None:
    """Never healthy when no better than always answering the majority class (rules.MAJORITY_MARGIN)."""
    accs = [a for a in ctx.c.val_accuracy if math.isfinite(a)]
    if majority is None or not math.isfinite(majority) or not accs:
        return None
    best, margin = max(accs), rules.MAJORITY_MARGIN
    if best >= majority + margin:
        return None
    ev = f"val accuracy {best:.3f} vs majority class {majority:.3f} (best of {len(accs)} epochs, margin {margin:g})"
    bal = [a for a in ctx.c.val_balanced_accuracy if math.isfinite(a)]
    if bal and ctx.n_classes:  # every class found, at the cost of majority hits (rules.MAJORITY_BALANCED_SKILL)
        if rules.skill(max(bal), ctx.n_classes) >= rules.MAJORITY_BALANCED_SKILL:
            return None
        ev += f"; balanced accuracy {max(bal):.3f} (chance {1 / ctx.n_classes:.3f})"
    conf, ev = _conf(majority + margin - best, 0.0, margin), f"no better than the majority class: {ev}"
    return Diagnosis("underfit", "majority_class", conf, ev, adv.majority_advice(ctx.params))


def _fit(ctx: Ctx) -> tuple[float, str] | None:
    """How much of the chance level the run still has: loss share of chance, or missing skill."""
    c = ctx.c
    if c.train_loss or c.val_loss:
        # with dropout the train-mode loss overstates the error: take the better of train and val
        ends = [rules.tail_mean(xs, 2) for xs in (c.train_loss, c.val_loss) if xs]
        share = min(ends) / ctx.ref
        return share / rules.UNDERFIT_LOSS, f"loss ends at {min(ends):.4g} = {share:.2f}x {ctx.ref_name}"
    accs = [rules.tail_mean(xs, 2) for xs in (c.train_accuracy, c.val_accuracy) if xs]
    if not accs:
        return None
    s = rules.skill(max(accs), ctx.n_classes)
    return (1 - s) / (1 - rules.UNDERFIT_SKILL), f"accuracy ends at {max(accs):.3f} (skill above chance {s:.2f})"


def _check_fit(ctx: Ctx, planned_epochs: int | None) -> Diagnosis:
    c = ctx.c
    fit = _fit(ctx)
    if fit is None:
        return Diagnosis("unknown", "missing_metrics", 0.0, "no loss or accuracy values")
    ratio, fit_ev = fit
    falling_series = c.train_loss or c.val_loss
    progress = rules.training_progress(falling_series) if falling_series else 0.0
    drop = (falling_series[-min(5, len(falling_series))] - falling_series[-1]) / ctx.ref if falling_series else 0.0
    falling = progress >= rules.PROGRESS_FALLING and drop >= rules.FALL_SHARE
    seen = len(falling_series or c.train_accuracy)
    # a run that early stopping ended is not "early" and not still improving: its val loss has turned,
    # and training longer stops at the same epoch again (bench/diagnostics/repair.py: label-noise runs
    # given early stopping were told "train longer: epochs 50 -> 100" and came back the same)
    stopped = symptoms.stopped_by_patience(ctx, planned_epochs)
    early = planned_epochs is not None and seen < rules.JUDGMENT_POINT * planned_epochs and not stopped
    falling = falling and not stopped
    # Prechelt's P5 in words: per mille above the strip's minimum is a tenth of a percent
    strip = min(5, len(falling_series)) if falling_series else 0
    prog_ev = (f"loss of the last {strip} epochs {progress / 10:.3g}% above their lowest" if falling_series
               else "no loss curve")
    epochs = adv.num(ctx.params, "epochs")
    if ratio >= 1.0 and (blown := symptoms.exploded(ctx)):
        return nonconvergent(ctx, "diverged", _conf(ratio, 1.0, 1.0), f"{blown}, and {fit_ev}: it never recovered "
                             "from the explosion (an unstable step size, not too small a model)")
    if ratio >= 1.0:
        detail = "still_improving" if falling or early else "high_bias"
        gap = (f"train/val accuracy gap {c.train_accuracy[-1] - c.val_accuracy[-1]:.2f}"
               if c.train_accuracy and c.val_accuracy else "no overfitting signs")
        ev = f"{fit_ev} (>= {rules.UNDERFIT_LOSS:g}x counts as poor fit); {prog_ev}; {gap}"
        return Diagnosis("underfit", detail, _conf(ratio, 1.0, 1.0), ev,
                         adv.underfit_advice(ctx.params, still_improving=detail == "still_improving"))
    val_best_last = (
        bool(c.val_loss) and min(range(len(c.val_loss)), key=lambda i: c.val_loss[i]) >= len(c.val_loss) - 2
    )
    if falling and (val_best_last or not c.val_loss):
        more = f"epochs {adv.fmt(epochs)} -> {adv.fmt(2 * epochs)}" if epochs else "more epochs"
        end = "val loss best at the end" if c.val_loss else "no validation curve"
        return Diagnosis("healthy", "still_improving", 0.7, f"{fit_ev}; {prog_ev}; {end}", (f"train longer: {more}",))
    note = "" if c.val_loss or c.val_accuracy else "; no validation curve, overfitting not checked"
    return Diagnosis("healthy", "converged", _conf(1.0 - ratio, 0.0, 1.0), f"{fit_ev}; {prog_ev}{note}")


def diagnose(curves: Curves, *, n_classes: int | None = None, planned_epochs: int | None = None,
             params: Mapping[str, object] | None = None, majority_rate: float | None = None,
             n_val: int | None = None) -> Diagnosis:
    """Label a run from its curves (see _diagnose); a flag raised near its rule's threshold says so."""
    found = _diagnose(curves, n_classes=n_classes, planned_epochs=planned_epochs, params=params,
                      majority_rate=majority_rate, n_val=n_val)
    if found.label in ("underfit", "overfit", "nonconvergent") and found.confidence < rules.WEAK:
        return dataclasses.replace(found, evidence=f"{found.evidence}; weak evidence (confidence "
                                   f"{found.confidence:.2f}: near the rule's threshold)")
    return found


def _diagnose(curves: Curves, *, n_classes: int | None = None, planned_epochs: int | None = None,
              params: Mapping[str, object] | None = None, majority_rate: float | None = None,
              n_val: int | None = None) -> Diagnosis:
    """Label a run from its curves.  Order: non-finite, diverged, oscillating, stalled (nonconvergent
    first: a broken run's other numbers mean nothing), then overfit, then no better than the majority
    class (``majority_rate``: the share of the most frequent class in the validation split), then
    underfit vs healthy. ``n_val``: validation rows, for the noise its accuracy carries."""
    ctx = context(curves, n_classes, params, n_val)
    series = [curves.train_loss, curves.val_loss, curves.train_accuracy, curves.val_accuracy]
    n = max(len(xs) for xs in series)
    if n == 0:
        return Diagnosis("unknown", "missing_metrics", 0.0, "no train/val loss or accuracy logged (looked for "
                         "train_loss, val_loss, train_accuracy, val_accuracy)")
    for check in (_check_nonfinite, _check_diverged):
        found = check(ctx)
        if found:
            return found
    if n < rules.MIN_EPOCHS:
        return Diagnosis("unknown", "too_few_epochs", 0.0, f"only {n} epoch(s) logged; need {rules.MIN_EPOCHS}")
    # oscillating before stalled: a loss swinging around 2x ln(C) is unstable rather than stuck;
    # chance level before the val swings and overfitting: nothing else about such a run means much
    for check in (_check_oscillating, _check_stalled, lambda x: _check_chance(x, majority_rate),
                  symptoms.check_val_swings, _check_overfit):
        found = check(ctx)
        if found:
            return found
    return _check_majority(ctx, majority_rate) or _check_fit(ctx, planned_epochs)


def early_verdict(curves: Curves, *, n_classes: int | None = None, stop_stalled: bool = False) -> Diagnosis | None:
    """For the live guard, called after every epoch: a nonconvergent Diagnosis once the run is clearly
    lost, else None.  Conservative: non-finite values at once; divergence only when the loss is >= 3x
    both its start and the chance loss for 2 epochs in a row (one bad SGD epoch is not enough); a stall
    only if asked, with C known, after 5 epochs of train AND val loss at >= 95% of ln(C), falling < 1%."""
    ctx = context(curves, n_classes, None)
    found = _check_nonfinite(ctx)
    if found or len(ctx.loss) < 2:
        return found
    base = max(ctx.loss[0], math.log(n_classes) if n_classes and n_classes >= 2 else 0.0)
    last2 = ctx.loss[-2:]
    if min(last2) >= rules.DIVERGE_FACTOR * base and len(ctx.loss) >= 3:
        ev = (
            f"{ctx.loss_name} {last2[0]:.4g}, {last2[1]:.4g} in the last 2 epochs"
            f" >= {rules.DIVERGE_FACTOR:g}x {base:.4g} (its start or ln(C))"
        )
        return nonconvergent(ctx, "diverged", 0.95, ev)
    if stop_stalled and n_classes and n_classes >= 2 and _stalled_live(ctx):
        ev = f"{ctx.loss_name} within 5% of chance {ctx.ref_name} for 5 epochs (last {ctx.loss[-1]:.4g})"
        return nonconvergent(ctx, "stalled", 0.9, ev)
    return None


def _stalled_live(ctx: Ctx) -> bool:
    """Every logged loss (train and val) has sat at >= 95% of ln(C) for 5 epochs without ever dropping
    1% below where the window started.  Both curves, because a heavy-dropout run's train-mode loss
    can hover at chance while its val loss is already falling (seen in the benchmark replay)."""
    curves = [xs for xs in (ctx.c.train_loss, ctx.c.val_loss) if xs]
    for xs in curves:
        tail = xs[-5:]
        if len(tail) < 5 or min(tail) < 0.95 * ctx.ref or min(tail) < 0.99 * tail[0]:
            return False
    return bool(curves)
