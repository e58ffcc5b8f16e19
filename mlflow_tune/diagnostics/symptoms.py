"""Checks added after runs from other families than the benchmark's MLPs fooled the first rules
(issue 13): a run that ends at chance level, validation curves that swing, a budget cut short while
the loss still falls, and overfitting that shows in the loss only.  Each names its threshold in
:mod:`mlflow_tune.diagnostics.rules` and says why."""

from __future__ import annotations

import math

from mlflow_tune.diagnostics import advice as adv
from mlflow_tune.diagnostics import rules
from mlflow_tune.diagnostics.context import Ctx, conf, nonconvergent
from mlflow_tune.diagnostics.curves import Diagnosis


def check_chance(ctx: Ctx, majority: float | None) -> Diagnosis | None:
    """The run ends where guessing the class prior ends: loss near ln(C) and accuracy near 1/C (or the
    majority rate).  Whatever its first loss: a spike to 30 nats that settles at ln(C) ended far below
    its start, yet learned nothing.  Needs C: without it ln(C) is unknown (the majority rule still
    flags an accuracy at the majority rate)."""
    c = ctx.c
    acc = c.val_accuracy or c.train_accuracy
    # the validation curves when logged: a heavy-dropout run's train-mode loss sits at chance while
    # its val loss is fine; a run that memorises its train split (train accuracy far above val) is
    # left to the overfit rule
    loss = c.val_loss or c.train_loss
    if not ctx.n_classes or not acc or not loss:
        return None
    if c.train_accuracy and c.val_accuracy and (
            rules.tail_mean(c.train_accuracy, 2) - rules.tail_mean(c.val_accuracy, 2) >= rules.GAP_ALONE):
        return None
    end_acc, end_loss = rules.tail_mean(acc, 2), rules.tail_mean(loss, 2)
    base = max(1.0 / ctx.n_classes, majority or 0.0)
    if end_acc > base + rules.CHANCE_ACC_MARGIN or end_loss < rules.STALL_CHANCE * ctx.ref:
        return None
    ev = (f"ends at chance level: loss {end_loss:.4g} = {end_loss / ctx.ref:.2f}x {ctx.ref_name}, accuracy "
          f"{end_acc:.3f} vs {base:.3f} for always answering one class")
    if ctx.loss and ctx.loss[0] > 2 * ctx.ref:
        ev += f" (first {ctx.loss_name} {ctx.loss[0]:.4g}: it fell back to chance, not below it)"
    return nonconvergent(ctx, "stalled", conf(end_loss / ctx.ref, rules.STALL_CHANCE, 0.2), ev)


def check_val_swings(ctx: Ctx) -> Diagnosis | None:
    """AUTOTRAINER's ol_judge on the validation curves, which the train loss hides (its per-epoch mean
    smooths the swings of the weights the epoch ends with): val accuracy swinging by >= 10 points (or
    by VAL_NOISE_Z standard errors of the validation set's own sampling noise, if larger), or
    val loss peaks >= 50% above the trough before them, in >= 20% of the epochs (at least 2 pairs)."""
    c, n = ctx.c, max(len(ctx.c.val_accuracy), len(ctx.c.val_loss))
    need = max(2.0, rules.OSC_RATE * n)
    found: list[str] = []
    if c.val_accuracy:
        finite = [a for a in c.val_accuracy if a == a]
        noise = rules.val_noise(sum(finite) / len(finite), ctx.n_val) if finite else 0.0
        amplitude = max(rules.OSC_VAL_ACC_AMPLITUDE, rules.VAL_NOISE_Z * noise)
        count = rules.oscillations(c.val_accuracy, amplitude)
        if count >= need:
            why = f" ({rules.VAL_NOISE_Z:g} standard errors on {ctx.n_val} val rows)" if amplitude > \
                rules.OSC_VAL_ACC_AMPLITUDE else ""
            found.append(f"val accuracy: {count} swings of >= {amplitude:.3g}{why} in {n} epochs")
    if c.val_loss:
        count = rules.relative_oscillations(c.val_loss, rules.OSC_VAL_LOSS_RELATIVE, rules.GL_FLOOR * ctx.ref)
        if count >= need:
            found.append(f"val loss: {count} peaks >= {100 * rules.OSC_VAL_LOSS_RELATIVE:.0f}% above the trough "
                         f"before them in {n} epochs")
    if not found:
        return None
    return nonconvergent(ctx, "oscillating", 0.8 if len(found) == 2 else 0.65, "; ".join(found) + f" (>= {need:.0f})")


def still_falling(ctx: Ctx, series: tuple[float, ...] | None = None) -> bool:
    """The loss (`series`, default the one the stall rule read) is at its lowest at the end and fell
    by >= CUT_FALL of the chance loss over the last epochs (up to 5): a run cut short, not one that
    cannot move. With C known the fall counts from ln(C) at most: a first epoch that exploded above
    chance (an lr far too high) and settled back at chance has learned nothing (seen on a Lightning
    CNN, Adam lr 0.15: train loss 2.77 -> 2.31 = ln 10, val accuracy 0.10, called "train longer")."""
    loss = series or ctx.loss
    if len(loss) < 2 or loss[-1] > min(loss):
        return False
    start = loss[-min(5, len(loss))]
    if ctx.n_classes:   # a fall from above chance down to it is recovery from a bad start, not learning
        start = min(start, ctx.ref)
    return (start - loss[-1]) >= rules.CUT_FALL * ctx.ref


def cut_short(ctx: Ctx, evidence: str) -> Diagnosis:
    """Near chance but still falling: the budget ended, not the learning; train longer."""
    ev = f"{evidence}; but still falling: {ctx.loss_name} {ctx.loss[-min(5, len(ctx.loss))]:.4g} -> {ctx.loss[-1]:.4g}"
    return Diagnosis("underfit", "still_improving", 0.7, ev, adv.underfit_advice(ctx.params, still_improving=True))


def loss_only_overfit(ctx: Ctx, gl: float, best: int) -> bool:
    """Validation loss far above its minimum (GL >= GL_LOSS_OVERFIT) while the training loss kept
    falling (ends at <= TRAIN_FELL of its value at the best val epoch) and lies below the val loss:
    overconfident wrong answers grow the val loss before the accuracy moves, so it is overfitting
    even with the val accuracy holding (Prechelt reads the loss alone)."""
    c = ctx.c
    if not c.train_loss or not c.val_loss or gl < rules.GL_LOSS_OVERFIT or best >= len(c.train_loss):
        return False
    train_end, val_end = rules.tail_mean(c.train_loss, 2), rules.tail_mean(c.val_loss, 2)
    return train_end <= rules.TRAIN_FELL * c.train_loss[best] and train_end < val_end


def exploded(ctx: Ctx) -> str:
    """The train loss went to DIVERGE_FACTOR x chance at some epoch (C known): how it did, else ''.  Named
    by the issue (early divergence that settles): with a poor fit at the end such a run was unstable,
    and "more units" or "train longer" cannot help it (bench/diagnostics/README, practitioner faults:
    Adagrad lr 10 peaking at 244 nats, one-cycle peaking at 5928)."""
    loss = [x for x in ctx.c.train_loss if math.isfinite(x)]
    if not ctx.n_classes or not loss or max(loss) < rules.DIVERGE_FACTOR * ctx.ref:
        return ""
    peak = max(range(len(loss)), key=lambda i: loss[i])
    return (f"train loss exploded to {loss[peak]:.4g} = {loss[peak] / ctx.ref:.3g}x {ctx.ref_name} at epoch {peak} "
            f"(>= {rules.DIVERGE_FACTOR:g}x)")


def stopped_by_patience(ctx: Ctx, planned_epochs: int | None) -> bool:
    """Early stopping ended the run: fewer epochs than planned, the best val loss `patience` epochs back."""
    patience, c = adv.num(ctx.params, "early_stopping_patience"), ctx.c
    if not patience or not c.val_loss or planned_epochs is None or len(c.val_loss) >= planned_epochs:
        return False
    best = min(range(len(c.val_loss)), key=lambda i: c.val_loss[i])
    return len(c.val_loss) - 1 - best >= patience
