"""Practitioner faults and new families: a benchmark scored only on what the rules were never tuned on.

Runs are trained for real (fault_train.py: one torch thread, its own loop) for two model families the
rules were not checked on, ``cnn`` (digits as 8x8 images) and ``bnmlp`` (batch-norm MLP on digits,
breast_cancer, wine, synthetic, moons), with optimisers Adadelta, Adagrad, AdamW, SGD+Nesterov and
schedules one-cycle, exponential, linear warm-up and cosine, and the bugs practitioners make.  Half of
the runs (by a hash of the run id) are written with Keras metric names (``loss``, ``accuracy``,
``val_loss``, ``val_accuracy``), half with ours; families.py reads both through the product's
``pick_keys``.

The label of each run is decided by an oracle the rules never see (generate.py's ``confirm()``:
reference = the best of the five healthy recipes on the same data and seed, eval-mode accuracy on the
clean training labels; plus the measurements below).  A fault may have several possible true labels:
they are tried in the order given and the first that the oracle confirms is the run's label; a run
none confirms is written unconfirmed and not scored.

- healthy set-ups (fault ``none``): confirm()'s healthy criterion.
- ``lr_far_above`` (Adagrad lr 10), ``lr_far_below`` (Adadelta lr 1e-4): nonconvergent by confirm()'s
  curve criteria only (non-finite, stuck at >= 0.9 min(ln C, first loss), or exploded and >= 0.2 below
  the reference).  ``unstable_schedule`` (one-cycle, Nesterov, peak lr 5): the same, or the
  counterfactual (val acc <= ref - 0.1 while the same run with lr x0.1 reaches ref - 0.05).
- ``tiny_model`` (one unit / channel): confirm()'s underfit, or nonconvergent by the curve criteria
  when it never leaves chance (README: such a run's curves are those of a stalled run, whatever the
  cause).  ``tiny_subset`` (40 rows, large model, exponential decay): confirm()'s overfit.
- ``unscaled_inputs`` (raw features; digits as 0..255, synthetic and moons x100; on the healthy
  Nesterov set-up, whose scaled run is among the references): nonconvergent by the
  curve criteria (no counterfactual: scaling is the cause, not the learning rate), else underfit, else
  overfit, else healthy: batch norm after the first layer undoes most of the scale, so what the curves
  show decides, and a run the bug did not hurt is healthy.
- ``shuffled_labels`` (training labels permuted against the inputs): the model can only memorise.
  Only if the final val accuracy is at chance (<= majority rate + 0.1): overfit if confirm()'s overfit
  holds (train acc >= val acc + 0.15, val loss >= 1.3 x its minimum), nonconvergent if the train loss
  stays >= 0.9 min(ln C, first); a run in between (a little memorised) is not scored.
- ``heavy_label_noise`` (80 % of the way to uniform: 40 % flipped on two classes, 72 % on ten): overfit
  by confirm() only.  A run that does not memorise keeps a train loss near ln C while its clean val
  accuracy can be fine: a practitioner would not call that model nonconvergent, so it is not scored.
- ``missing_nonlinearity`` (ReLU left out: a bnmlp becomes linear; the cnn keeps its max pooling):
  underfit by confirm(), else healthy (a linear model is enough on digits, wine, breast_cancer).
- ``dropout_at_eval`` (dropout 0.5, validation measured without ``model.eval()``): the model's state is
  judged on its true, eval-mode validation curves (kept hidden): healthy, underfit or overfit by
  confirm() on those; the logged curves are the train-mode ones the bug produces.
- ``batch1_sgd`` (cnn only: batch norm cannot train on batches of one): nonconvergent by the curve
  criteria or the lr x0.1 counterfactual, else healthy.
- ``extreme_imbalance`` (every class but the largest cut to 2 % of it, before the split): underfit
  (majority_class) when the model answers the majority: final val accuracy <= majority rate + 0.01 and
  eval-mode val balanced accuracy <= 1/C + 0.1; a run that found the minority is not scored.
- ``leaked_validation`` (validation rows also trained on): not scored.  The curves cannot show it: val
  loss and accuracy track the training ones because they are partly the same rows, so a leaked run
  looks healthy or better.  Written unconfirmed to show how the rules read it.

    python bench/diagnostics/faults.py [--out bench/diagnostics/fault_runs.jsonl] [--seeds 0 1 2 3]

(412 runs, ~18 min wall / 10 CPU-minutes on two shared cores); score with
``python bench/diagnostics/families.py --runs bench/diagnostics/fault_runs.jsonl``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from functools import partial
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fault_train import Cfg, train
from generate import _round, confirm

FAMILIES = {"cnn": ("digits",), "bnmlp": ("digits", "breast_cancer", "wine", "synthetic", "moons")}
KERAS = {"train_loss": "loss", "train_accuracy": "accuracy", "val_loss": "val_loss",
         "val_accuracy": "val_accuracy", "lr": "lr"}
Run = dict[str, object]


def recipes(family: str, dataset: str) -> list[tuple[Cfg, tuple[str, ...]]]:
    """(config, the true labels the oracle may confirm, in order) per recipe."""
    small = dataset == "wine"
    base = Cfg("adam", model=family, hidden_units=16 if family == "cnn" else 64, epochs=60 if small else 30,
               batch_size=16 if small else 32)
    big: dict[str, Any] = {"hidden_units": 32 if family == "cnn" else 256, "weight_decay": 0.0}
    h = ("healthy",)
    out = [(base, h),
           (replace(base, recipe="adamw_onecycle", optimizer="adamw", lr=3e-3, weight_decay=1e-2,
                    schedule="onecycle"), h),
           (replace(base, recipe="nesterov_cosine", optimizer="nesterov", lr=0.05, momentum=0.9, schedule="cosine"), h),
           (replace(base, recipe="adagrad_exp", optimizer="adagrad", lr=0.03, schedule="exponential"), h),
           (replace(base, recipe="adadelta_warmup", optimizer="adadelta", lr=1.0, schedule="warmup"), h),
           (replace(base, recipe="adagrad_lr_10", fault="lr_far_above", optimizer="adagrad", lr=10.0),
            ("nonconvergent",)),
           (replace(base, recipe="adadelta_lr_1e-4", fault="lr_far_below", optimizer="adadelta", lr=1e-4),
            ("nonconvergent",)),
           (replace(base, recipe="onecycle_peak_5", fault="unstable_schedule", optimizer="nesterov", lr=5.0,
                    momentum=0.9, schedule="onecycle"), ("nonconvergent",)),
           (replace(base, recipe="tiny_model", fault="tiny_model", hidden_units=1, optimizer="adamw",
                    schedule="cosine", weight_decay=0.0), ("underfit", "nonconvergent")),
           (replace(base, recipe="tiny_subset", fault="tiny_subset", subsample=40, batch_size=8, epochs=60,
                    lr=3e-3, schedule="exponential", **big), ("overfit",))]
    bugs: list[tuple[str, dict[str, object], tuple[str, ...]]] = [
        # on the Nesterov set-up: an adaptive optimiser (Adam) shrugs the scale off, SGD does not
        ("unscaled_inputs", {"optimizer": "nesterov", "lr": 0.05, "momentum": 0.9, "schedule": "cosine"},
         ("nonconvergent", "underfit", "overfit", "healthy")),
        ("shuffled_labels", {"epochs": 2 * base.epochs, **big}, ("overfit", "nonconvergent")),
        ("heavy_label_noise", {"epochs": 2 * base.epochs, **big}, ("overfit",)),
        ("missing_nonlinearity", {}, ("underfit", "healthy")),
        ("dropout_at_eval", {"dropout": 0.5}, ("healthy", "underfit", "overfit")),
        ("extreme_imbalance", {}, ("underfit",)),
        ("leaked_validation", {}, ())]
    if family == "cnn":
        bugs.append(("batch1_sgd", {"optimizer": "sgd", "lr": 0.1, "batch_size": 1, "epochs": 8},
                     ("nonconvergent", "healthy")))
    for bug, changes, labels in bugs:
        cfg = replace(base, recipe=bug, fault=bug, bug=bug, **changes)  # type: ignore[arg-type]
        if bug == "heavy_label_noise":
            n_classes = {"digits": 10, "synthetic": 4, "wine": 3}.get(dataset, 2)
            cfg = replace(cfg, label_noise=round(0.8 * (1 - 1 / n_classes), 2))
        out.append((cfg, labels))
    return out


def _curves(run: Run) -> dict[str, list[float]]:
    return run["curves"]  # type: ignore[return-value]


def _strict_nonconvergent(run: Run, ref: dict[str, float]) -> tuple[bool, str]:
    return confirm({**run, "cause": "nonconvergent"}, ref)


def _at_chance(run: Run) -> bool:
    return _curves(run)["val_accuracy"][-1] <= float(run["majority_rate"]) + 0.1  # type: ignore[arg-type]


def oracle(cfg: Cfg, label: str, run: Run, ref: dict[str, float], retrain: Callable[[Cfg], Run]) -> tuple[bool, str]:
    """Does the oracle confirm `label` for this run?  (The module docstring says why per fault.)"""
    if cfg.fault == "shuffled_labels" and not _at_chance(run):
        return False, f"val acc {_curves(run)['val_accuracy'][-1]:.3f} above chance: labels not shuffled apart?"
    if cfg.fault == "extreme_imbalance":
        va, bal = _curves(run)["val_accuracy"][-1], float(run["val_balanced_accuracy"])  # type: ignore[arg-type]
        n_c, majority = int(run["n_classes"]), float(run["majority_rate"])  # type: ignore[arg-type, call-overload]
        ok = va <= majority + 0.01 and bal <= 1 / n_c + 0.1
        return ok, f"val acc {va:.3f} vs majority {majority:.3f}, balanced acc {bal:.3f} (1/C {1 / n_c:.3f})"
    if cfg.fault == "dropout_at_eval":   # the model as it is: its eval-mode validation curves
        run = {**run, "curves": {**_curves(run), **run["true_val"]}}  # type: ignore[dict-item]
    if label == "nonconvergent":
        ok, why = _strict_nonconvergent(run, ref)
        if ok or cfg.fault not in ("unstable_schedule", "batch1_sgd"):
            return ok, why
        lower = retrain(replace(cfg, lr=cfg.lr / 10))
        return confirm({**run, "cause": label}, ref, _curves(lower)["val_accuracy"][-1])
    return confirm({**run, "cause": label}, ref)


def decide(cfg: Cfg, labels: tuple[str, ...], run: Run, ref: dict[str, float],
           retrain: Callable[[Cfg], Run]) -> tuple[str | None, str]:
    if not labels:
        return None, "not scored: leaked validation rows cannot be seen in the curves"
    reasons = []
    for label in labels:
        ok, why = oracle(cfg, label, run, ref, retrain)
        if ok:
            return label, why
        reasons.append(f"not {label}: {why}")
    return None, "; ".join(reasons)


def names_of(run_id: str) -> str:
    """Half the runs in Keras' metric names, half in ours: the first byte of sha256(run id)."""
    return "keras" if hashlib.sha256(run_id.encode()).digest()[0] % 2 else "ours"


def record(family: str, dataset: str, seed: int, cfg: Cfg, run: Run, label: str | None, intended: tuple[str, ...],
           why: str) -> dict[str, object]:
    run_id = f"{family}-{dataset}-s{seed}-{cfg.recipe}"
    names = names_of(run_id)
    keys = KERAS if names == "keras" else {k: k for k in _curves(run)}
    params = {k: v for k, v in asdict(cfg).items() if k not in ("recipe", "fault", "bug")}
    return {"run_id": run_id, "label": label or (intended[0] if intended else "healthy"), "recipe": cfg.recipe,
            "fault": cfg.fault, "family": family, "dataset": dataset, "seed": seed, "names": names,
            "n_classes": run["n_classes"], "majority_rate": run["majority_rate"], "val_rows": run["val_rows"],
            "params": params,
            "curves": {keys[k]: [_round(v) for v in vs] for k, vs in _curves(run).items() if k in keys},
            "confirmed": label is not None, "confirmation": why, "intended": list(intended)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(Path(__file__).with_name("fault_runs.jsonl")))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    ap.add_argument("--families", nargs="+", default=list(FAMILIES))
    args = ap.parse_args()
    torch.set_num_threads(1)
    t0, kept, total = time.time(), 0, 0
    with open(args.out, "w") as fh:
        for family in args.families:
            for dataset in FAMILIES[family]:
                for seed in args.seeds:
                    runs = [(cfg, labels, train(dataset, seed, cfg)) for cfg, labels in recipes(family, dataset)]
                    healthy = [r for cfg, _, r in runs if cfg.fault == "none"]
                    ref = {"val_acc": max(_curves(r)["val_accuracy"][-1] for r in healthy),
                           "train_acc": max(float(r["train_eval_accuracy"]) for r in healthy)}  # type: ignore[arg-type]
                    ref = {k: v if math.isfinite(v) else 0.0 for k, v in ref.items()}
                    for cfg, labels, r in runs:
                        label, why = decide(cfg, labels, r, ref, partial(train, dataset, seed))
                        total, kept = total + 1, kept + (label is not None)
                        print(f"{family:5s} {dataset:13s} s{seed} {cfg.recipe:22s} {label or 'drop':13s} {why}",
                              flush=True)
                        fh.write(json.dumps(record(family, dataset, seed, cfg, r, label, labels, why)) + "\n")
    print(f"kept {kept}/{total} runs in {time.time() - t0:.0f}s -> {args.out}")


if __name__ == "__main__":
    main()
