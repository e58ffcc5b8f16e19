"""Generate the labelled diagnostics benchmark: training runs with KNOWN causes.

Each run trains a small PyTorch MLP on an sklearn dataset with a configuration chosen to produce one
cause (healthy, underfit, overfit, nonconvergent), records its per-epoch curves, and counts for the
score (``"confirmed": true``) only if its curves confirm the intended cause by the criteria in
``confirm()`` below.  Unconfirmed runs are written too (``"confirmed": false``, with the reason) so
that score.py can show how the rules read ambiguous runs; they are not scored. Those criteria are not
the rules of ``mlflow_tune.diagnostics``: they use an oracle the rules never see, namely reference
runs with sensible settings on the same data split and seed, the eval-mode accuracy on the training
set at the end, and the clean (un-noised) training labels.

The training loop is self-contained on purpose (no ``mlflow_tune.training``): we need label noise,
no live guard, no early stopping and no learning-rate decay, and the benchmark must not depend on
the module under test.

    python bench/diagnostics/generate.py [--out bench/diagnostics/runs.jsonl] [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from sklearn import datasets
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from torch import nn

DATASETS = ("digits", "wine", "breast_cancer", "synthetic")


@dataclass(frozen=True)
class Cfg:
    cause: str  # intended label
    recipe: str  # how the cause is produced (e.g. "heavy_l2")
    layers: int = 1
    hidden_units: int = 64
    dropout: float = 0.0
    weight_decay: float = 1e-4
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.0
    batch_size: int = 32
    epochs: int = 40
    subsample: int = 0  # training examples kept (0 = all)
    label_noise: float = 0.0  # share of training labels flipped to another class
    model: str = "mlp"
    grad_clip: float = 0.0


def load(name: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    if name == "digits":
        x, y = datasets.load_digits(return_X_y=True)
    elif name == "wine":
        x, y = datasets.load_wine(return_X_y=True)
    elif name == "breast_cancer":
        x, y = datasets.load_breast_cancer(return_X_y=True)
    else:  # fixed generator seed: the *data set* is the same for all seeds, the split differs
        x, y = datasets.make_classification(
            n_samples=1500,
            n_features=20,
            n_informative=10,
            n_redundant=4,
            n_classes=4,
            n_clusters_per_class=2,
            class_sep=1.5,
            flip_y=0.02,
            random_state=1234,
        )
    return x.astype(np.float32), y.astype(np.int64)


def configs(dataset: str) -> list[Cfg]:
    """Per-dataset recipes. Epoch counts are fixed per data set size so healthy runs converge."""
    small = dataset == "wine"
    bs = 16 if small else 32
    ep = 60 if small else 30
    base = Cfg(cause="healthy", recipe="", batch_size=bs, epochs=ep)
    h = [
        replace(base, recipe="adam_1x64", dropout=0.1),
        replace(base, recipe="adam_2x128", layers=2, hidden_units=128, dropout=0.3, lr=2e-3),
        replace(
            base,
            recipe="sgd_momentum",
            optimizer="momentum",
            lr=0.05,
            momentum=0.9,
            hidden_units=128,
            dropout=0.2,
        ),
        replace(base, recipe="rmsprop", optimizer="rmsprop", lr=5e-4, dropout=0.2),
        replace(
            base,
            recipe="adamw_wd",
            optimizer="adamw",
            lr=2e-3,
            layers=2,
            hidden_units=64,
            dropout=0.2,
            weight_decay=1e-2,
        ),
    ]
    u = [
        replace(
            base,
            cause="underfit",
            recipe="tiny_model",
            hidden_units=2 if dataset != "breast_cancer" else 1,
            weight_decay=0.0,
        ),
        replace(base, cause="underfit", recipe="heavy_l2", weight_decay=0.3),
        replace(base, cause="underfit", recipe="heavier_l2", weight_decay=1.0, optimizer="sgd", lr=0.05),
        replace(base, cause="underfit", recipe="heavy_dropout", dropout=0.9, hidden_units=32),
        replace(base, cause="underfit", recipe="tiny_dropout", dropout=0.7, hidden_units=8),
        replace(base, cause="underfit", recipe="l2_0.1", weight_decay=0.1),
        replace(base, cause="underfit", recipe="narrow_dropout", dropout=0.8, hidden_units=16, layers=2),
        replace(base, cause="underfit", recipe="slow_sgd", optimizer="sgd", lr=3e-3, weight_decay=0.0),
    ]
    n_small = 8 * (
        10 if dataset == "digits" else 4 if dataset == "synthetic" else 3 if dataset == "wine" else 2
    )
    o = [
        replace(
            base,
            cause="overfit",
            recipe="tiny_subset",
            subsample=n_small,
            layers=2,
            hidden_units=256,
            lr=3e-3,
            weight_decay=0.0,
            batch_size=8,
            epochs=2 * ep,
        ),
        replace(
            base,
            cause="overfit",
            recipe="label_noise",
            label_noise=0.4,
            layers=2,
            hidden_units=256,
            lr=3e-3,
            weight_decay=0.0,
            epochs=ep + 20,
        ),
        replace(
            base,
            cause="overfit",
            recipe="large_model_subset",
            subsample=3 * n_small,
            layers=3,
            hidden_units=512,
            lr=1e-3,
            weight_decay=0.0,
            batch_size=16,
        ),
        replace(
            base,
            cause="overfit",
            recipe="noise_subset",
            subsample=4 * n_small,
            label_noise=0.25,
            layers=2,
            hidden_units=256,
            lr=3e-3,
            weight_decay=0.0,
            batch_size=16,
        ),
    ]
    n = [
        replace(
            base, cause="nonconvergent", recipe="huge_lr_sgd", optimizer="sgd", lr=30.0, hidden_units=128
        ),
        replace(base, cause="nonconvergent", recipe="huge_lr_adam", lr=1.0, layers=2, hidden_units=128),
        replace(base, cause="nonconvergent", recipe="tiny_lr", optimizer="sgd", lr=1e-5),
        replace(base, cause="nonconvergent", recipe="tiny_lr_adam", lr=3e-7),
        replace(
            base,
            cause="nonconvergent",
            recipe="high_momentum",
            optimizer="momentum",
            lr=0.5,
            momentum=0.99,
            hidden_units=128,
        ),
        replace(
            base,
            cause="nonconvergent",
            recipe="tiny_batch",
            optimizer="momentum",
            lr=0.3,
            momentum=0.9,
            batch_size=2,
            hidden_units=128,
            epochs=15 if dataset == "digits" else ep // 2,
        ),
        # unstable but finite: confirmed only if the same recipe with lr x0.1 does reach the reference
        replace(
            base, cause="nonconvergent", recipe="unstable_sgd", optimizer="sgd", lr=2.0, hidden_units=128
        ),
        replace(base, cause="nonconvergent", recipe="unstable_adam", lr=0.1, layers=2, hidden_units=128),
        replace(
            base,
            cause="nonconvergent",
            recipe="unstable_adam_bs8",
            lr=0.03,
            batch_size=8,
            layers=2,
            hidden_units=128,
        ),
        replace(
            base,
            cause="nonconvergent",
            recipe="unstable_momentum_clip",
            optimizer="momentum",
            lr=0.1,
            momentum=0.99,
            grad_clip=1.0,
            hidden_units=128,
        ),
    ]
    return h + u + o + n


class MLP(nn.Module):
    def __init__(self, n_in: int, n_out: int, cfg: Cfg) -> None:
        super().__init__()
        mods: list[nn.Module] = []
        width = n_in
        for _ in range(cfg.layers):
            mods += [nn.Linear(width, cfg.hidden_units), nn.ReLU(), nn.Dropout(cfg.dropout)]
            width = cfg.hidden_units
        mods.append(nn.Linear(width, n_out))
        self.net = nn.Sequential(*mods)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def make_optimizer(cfg: Cfg, params: list[nn.Parameter]) -> torch.optim.Optimizer:
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    momentum = cfg.momentum if cfg.optimizer == "momentum" else 0.0
    return torch.optim.SGD(params, lr=cfg.lr, momentum=momentum, weight_decay=cfg.weight_decay)


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    model.eval()
    with torch.no_grad():
        out = model(x)
        loss = float(nn.functional.cross_entropy(out, y))
        acc = float((out.argmax(1) == y).float().mean())
    return loss, acc


def train(dataset: str, seed: int, cfg: Cfg) -> dict[str, object]:
    x, y = load(dataset, seed)
    n_classes = int(y.max()) + 1
    x_tr, x_va, y_tr, y_va = train_test_split(x, y, test_size=0.3, stratify=y, random_state=seed)
    rng = np.random.default_rng(seed)
    if cfg.subsample:
        idx, _ = train_test_split(
            np.arange(len(y_tr)), train_size=cfg.subsample, stratify=y_tr, random_state=seed
        )
        x_tr, y_tr = x_tr[idx], y_tr[idx]
    scaler = StandardScaler().fit(x_tr)
    x_tr, x_va = scaler.transform(x_tr).astype(np.float32), scaler.transform(x_va).astype(np.float32)
    y_clean = y_tr.copy()
    if cfg.label_noise:  # flip a share of the training labels to a different, random class
        flip = rng.random(len(y_tr)) < cfg.label_noise
        y_tr = y_tr.copy()
        y_tr[flip] = (y_tr[flip] + rng.integers(1, n_classes, flip.sum())) % n_classes
    torch.manual_seed(seed)
    xt, yt, yc = torch.from_numpy(x_tr), torch.from_numpy(y_tr), torch.from_numpy(y_clean)
    xv, yv = torch.from_numpy(x_va), torch.from_numpy(y_va)
    model = MLP(x.shape[1], n_classes, cfg)
    opt = make_optimizer(cfg, list(model.parameters()))
    gen = torch.Generator().manual_seed(seed)
    curves: dict[str, list[float]] = {
        k: [] for k in ("train_loss", "val_loss", "train_accuracy", "val_accuracy", "lr", "grad_norm")
    }
    for _ in range(cfg.epochs):
        model.train()
        perm = torch.randperm(len(yt), generator=gen)
        tot_loss = tot_correct = tot_norm = 0.0
        steps = 0
        for i in range(0, len(yt), cfg.batch_size):
            b = perm[i : i + cfg.batch_size]
            out = model(xt[b])
            loss = nn.functional.cross_entropy(out, yt[b])
            opt.zero_grad()
            loss.backward()
            norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip or float("inf")))
            opt.step()
            tot_loss += float(loss.detach()) * len(b)
            tot_correct += float((out.argmax(1) == yt[b]).sum())
            tot_norm += norm
            steps += 1
        # train_loss / train_accuracy: running means over the epoch's mini-batches in train mode,
        # as Keras, Lightning and most training loops log them
        curves["train_loss"].append(tot_loss / len(yt))
        curves["train_accuracy"].append(tot_correct / len(yt))
        vl, va = evaluate(model, xv, yv)
        curves["val_loss"].append(vl)
        curves["val_accuracy"].append(va)
        curves["lr"].append(cfg.lr)
        curves["grad_norm"].append(tot_norm / steps)
        if not all(math.isfinite(v[-1]) for v in curves.values()):
            break  # non-finite: the run is dead; further epochs only repeat NaN
    _, train_eval_acc = evaluate(model, xt, yc)  # eval mode, clean labels: an oracle the rules never see
    return {
        "curves": curves,
        "n_classes": n_classes,
        "train_eval_accuracy": train_eval_acc,
        "n_train": len(yt),
        "n_val": len(yv),
    }


def _finite(xs: list[float]) -> bool:
    return all(math.isfinite(v) for v in xs)


def confirm(
    run: dict[str, object], ref: dict[str, float], lower_lr_val_acc: float | None = None
) -> tuple[bool, str]:
    """Does the run show its intended cause?  ``ref`` holds the best val accuracy and eval-mode train
    accuracy of the *healthy* recipes on the same data set and seed (the oracle).

    healthy:       finite; final val accuracy >= best healthy val accuracy - 0.03 (about 1-2 val examples on
                   wine) and final val loss <= 1.15 x its minimum + 0.02 ln C (no overfitting turn).
    underfit:      finite; learned something (final train loss < 0.9 ln C), yet final val accuracy
                   <= reference - 0.05 AND eval-mode train accuracy (clean labels) <= reference - 0.05,
                   and no variance problem (eval train acc - val acc < 0.1).
    overfit:       finite; final val loss >= 1.3 x min val loss AND final train acc - val acc >= 0.15.
    nonconvergent: non-finite loss; or final train loss >= 0.9 x min(ln C, first-epoch train loss) (no
                   meaningful decrease, or stuck at chance); or the train loss exceeded 3 x ln C at some epoch
                   (exploded) and final val accuracy <= reference - 0.2; or (counterfactual, for the
                   'unstable_*' recipes) final val accuracy <= reference - 0.1 while the same recipe with
                   the learning rate x0.1 reaches >= reference - 0.05 (the learning rate is confirmed as
                   the cause).
    """
    c = run["curves"]
    assert isinstance(c, dict)
    tl, vl, ta, va = c["train_loss"], c["val_loss"], c["train_accuracy"], c["val_accuracy"]
    n_classes = run["n_classes"]
    assert isinstance(n_classes, int)
    ln_c = math.log(n_classes)
    finite = _finite(tl) and _finite(vl)
    cause = run["cause"]
    if cause == "nonconvergent":
        if not finite:
            return True, "non-finite loss"
        if tl[-1] >= 0.9 * min(ln_c, tl[0]):
            return (
                True,
                f"final train loss {tl[-1]:.3g} >= 0.9 x min(ln C, first) = {0.9 * min(ln_c, tl[0]):.3g}",
            )
        if max(tl) >= 3 * ln_c and va[-1] <= ref["val_acc"] - 0.2:
            return True, f"train loss peaked at {max(tl):.3g} >= 3 ln C, final val acc {va[-1]:.3f}"
        if (
            lower_lr_val_acc is not None
            and va[-1] <= ref["val_acc"] - 0.1
            and lower_lr_val_acc >= ref["val_acc"] - 0.05
        ):
            return (
                True,
                f"val acc {va[-1]:.3f} vs ref {ref['val_acc']:.3f}; with lr x0.1: {lower_lr_val_acc:.3f}",
            )
        return False, f"converged anyway (train loss {tl[0]:.3g} -> {tl[-1]:.3g}, val acc {va[-1]:.3f})"
    if not finite:
        return False, "non-finite loss"
    if cause == "healthy":
        # the absolute slack (0.02 ln C) keeps a near-zero minimum (1e-3 on wine) from making any wiggle count
        ok = va[-1] >= ref["val_acc"] - 0.03 and vl[-1] <= 1.15 * min(vl) + 0.02 * ln_c
        return (
            ok,
            f"val acc {va[-1]:.3f} vs best {ref['val_acc']:.3f}; val loss {vl[-1]:.3g} vs min {min(vl):.3g}",
        )
    if cause == "underfit":
        tea = run["train_eval_accuracy"]
        assert isinstance(tea, float)
        ok = (
            tl[-1] < 0.9 * ln_c
            and va[-1] <= ref["val_acc"] - 0.05
            and tea <= ref["train_acc"] - 0.05
            and tea - va[-1] < 0.1
        )
        return ok, (
            f"val acc {va[-1]:.3f} (ref {ref['val_acc']:.3f}), eval train acc {tea:.3f} "
            f"(ref {ref['train_acc']:.3f}), train loss {tl[-1]:.3g} vs ln C {ln_c:.3g}"
        )
    best_epoch = int(np.argmin(vl))
    ok = vl[-1] >= 1.3 * min(vl) and ta[-1] - va[-1] >= 0.15
    return ok, f"val loss {vl[-1]:.3g} vs min {min(vl):.3g} at epoch {best_epoch}; gap {ta[-1] - va[-1]:.3f}"


def _round(v: float) -> float | None:
    return float(f"{v:.5g}") if math.isfinite(v) else None  # null = non-finite (NaN/inf) in the JSON


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(Path(__file__).with_name("runs.jsonl")))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--datasets", nargs="+", default=list(DATASETS))
    args = ap.parse_args()
    torch.set_num_threads(1)
    t0 = time.time()
    kept = total = 0
    counts: dict[str, list[int]] = {}
    with open(args.out, "w") as fh:
        for dataset in args.datasets:
            for seed in args.seeds:
                runs = [(cfg, train(dataset, seed, cfg)) for cfg in configs(dataset)]
                healthy = [r for cfg, r in runs if cfg.cause == "healthy"]
                ref = {
                    "val_acc": max(r["curves"]["val_accuracy"][-1] for r in healthy),  # type: ignore[index]
                    "train_acc": max(float(r["train_eval_accuracy"]) for r in healthy),
                }  # type: ignore[arg-type]
                for cfg, r in runs:
                    r["cause"] = cfg.cause
                    lower = None
                    if cfg.recipe.startswith("unstable"):
                        cf = train(dataset, seed, replace(cfg, lr=cfg.lr / 10))
                        lower = float(cf["curves"]["val_accuracy"][-1])  # type: ignore[index]
                    ok, why = confirm(r, ref, lower)
                    total += 1
                    counts.setdefault(cfg.cause, [0, 0])[1] += 1
                    print(
                        f"{dataset:13s} s{seed} {cfg.cause:13s} {cfg.recipe:22s} {'KEEP' if ok else 'drop'}",
                        why,
                        flush=True,
                    )
                    kept += ok
                    counts[cfg.cause][0] += ok
                    params = {k: v for k, v in asdict(cfg).items() if k not in ("cause", "recipe")}
                    # the lr curve is left out: it is constant (no decay) and equals params["lr"]
                    curves = {k: [_round(v) for v in vs] for k, vs in r["curves"].items() if k != "lr"}  # type: ignore[union-attr]
                    rec = {
                        "run_id": f"{dataset}-s{seed}-{cfg.recipe}",
                        "label": cfg.cause,
                        "recipe": cfg.recipe,
                        "dataset": dataset,
                        "seed": seed,
                        "n_classes": r["n_classes"],
                        "params": params,
                        "curves": curves,
                        "confirmed": ok,
                        "confirmation": why,
                    }
                    fh.write(json.dumps(rec) + "\n")
    print(f"kept {kept}/{total} runs in {time.time() - t0:.0f}s -> {args.out}")
    for cause, (k, n) in counts.items():
        print(f"  {cause:13s} kept {k}/{n}")


if __name__ == "__main__":
    main()
