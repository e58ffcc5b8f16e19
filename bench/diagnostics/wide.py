"""The wider diagnostics benchmark: runs of other model families, data, optimisers and schedules.

generate.py holds MLPs on four tabular sets only, so the rules were checked on runs much like the
ones they were written from.  This adds, trained for real (self-contained loop, as generate.py):

- model families: ``mlp``, ``gru`` and ``lstm`` (the recurrent ones on sequence data; the MLP on the
  same sequences flattened, so that a data set is shared across families);
- data sets: tabular (digits, breast_cancer, synthetic), small two-dimensional tasks (moons, circles,
  spirals), sequences (trend: rising/falling/flat noisy series; freq: sinusoids of four frequencies);
- optimisers SGD, SGD with momentum, Adam, AdamW, RMSprop; step and cosine learning-rate schedules
  (emulated in this loop: TrainConfig has plateau decay only); learning rates far above and below
  the good one; very small batches with high momentum; budgets cut short; label noise.

Each run is confirmed by generate.py's oracle (reference runs of the healthy recipes on the same data
and seed, clean labels, eval-mode train accuracy), plus a counterfactual for a budget cut short: it
counts as underfit only if the same recipe with 6x the epochs reaches the reference.  The runs are
cached in ``wide_runs.jsonl`` (generation takes ~10-20 min on two cores); regenerate with

    python bench/diagnostics/wide.py [--out bench/diagnostics/wide_runs.jsonl] [--seeds 0 1]

and score with ``python bench/diagnostics/families.py``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from sklearn import datasets
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate import _round, confirm
from generate import load as load_tabular

TABULAR, PLANE, SEQUENCES = ("digits", "breast_cancer", "synthetic"), ("moons", "circles", "spirals"), ("trend", "freq")
FAMILIES = {"mlp": TABULAR + PLANE + SEQUENCES, "gru": SEQUENCES, "lstm": SEQUENCES}
SEQ_LEN = 20


@dataclass(frozen=True)
class Cfg:
    cause: str
    recipe: str
    hidden_units: int = 64
    layers: int = 1
    dropout: float = 0.0
    weight_decay: float = 1e-4
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.0
    batch_size: int = 32
    epochs: int = 30
    schedule: str = "none"   # none | step (x0.5 every third of the epochs) | cosine (to 0 at the end)
    subsample: int = 0
    label_noise: float = 0.0
    model: str = "mlp"
    grad_clip: float = 0.0
    early_stopping_patience: int = 0   # 0 = off; used by repair.py when the advice is early stopping


def load(name: str) -> tuple[np.ndarray, np.ndarray]:
    """Rows (n, features) or sequences (n, SEQ_LEN, 1); the data set is fixed, seeds change the split."""
    rng = np.random.default_rng(1234)
    if name in TABULAR:
        return load_tabular(name, 0)
    if name == "moons":
        x, y = datasets.make_moons(800, noise=0.25, random_state=1234)
    elif name == "circles":
        x, y = datasets.make_circles(800, noise=0.1, factor=0.5, random_state=1234)
    elif name == "spirals":
        n, k = 900, 3
        y = np.repeat(np.arange(k), n // k)
        t = rng.uniform(0.3, 1.0, n)
        angle = 4.0 * t + 2 * np.pi * y / k
        x = np.stack([t * np.cos(angle), t * np.sin(angle)], 1) + rng.normal(0, 0.04, (n, 2))
    else:
        n = 900
        steps = np.arange(SEQ_LEN) / SEQ_LEN
        if name == "trend":   # rising, falling or flat, under noise of the slope's size
            y = rng.integers(0, 3, n)
            slope = np.choose(y, [1.0, -1.0, 0.0])[:, None]
            x = slope * steps + rng.normal(0, 0.8, (n, SEQ_LEN))
        else:                 # which of four frequencies, random phase and noise
            y = rng.integers(0, 4, n)
            phase = rng.uniform(0, 2 * np.pi, (n, 1))
            x = np.sin(2 * np.pi * (1 + y)[:, None] * steps + phase) + rng.normal(0, 0.5, (n, SEQ_LEN))
        x = x[:, :, None]
    return x.astype(np.float32), y.astype(np.int64)


def recipes(family: str, dataset: str) -> list[Cfg]:
    rnn = family != "mlp"
    base = Cfg("healthy", "", model=family, lr=3e-3 if rnn else 1e-3, epochs=25 if rnn else 30,
               hidden_units=32 if rnn else 64)
    h = [replace(base, recipe="adam"),
         replace(base, recipe="momentum_cosine", optimizer="momentum", lr=0.05, momentum=0.9, schedule="cosine"),
         replace(base, recipe="rmsprop_step", optimizer="rmsprop", lr=2e-3 if rnn else 1e-3, schedule="step"),
         replace(base, recipe="adamw_dropout", optimizer="adamw", dropout=0.2, weight_decay=1e-2)]
    u = [replace(base, cause="underfit", recipe="tiny_model", hidden_units=1, weight_decay=0.0),
         replace(base, cause="underfit", recipe="heavy_l2", weight_decay=0.5),
         replace(base, cause="underfit", recipe="cut_short", optimizer="sgd", lr=0.02 if rnn else 0.01, epochs=4)]
    o = [replace(base, cause="overfit", recipe="tiny_subset", subsample=40, hidden_units=256 if not rnn else 64,
                 layers=2, weight_decay=0.0, batch_size=8, epochs=60, lr=3e-3),
         replace(base, cause="overfit", recipe="label_noise", label_noise=0.4, hidden_units=256 if not rnn else 64,
                 layers=2 if not rnn else 1, weight_decay=0.0, epochs=50 if not rnn else 40, lr=3e-3)]
    n = [replace(base, cause="nonconvergent", recipe="lr_far_above_sgd", optimizer="sgd", lr=30.0),
         replace(base, cause="nonconvergent", recipe="lr_far_above_adam", lr=1.0),
         replace(base, cause="nonconvergent", recipe="lr_far_below_sgd", optimizer="sgd", lr=1e-5),
         replace(base, cause="nonconvergent", recipe="lr_far_below_momentum", optimizer="momentum", lr=3e-5,
                 momentum=0.9),
         replace(base, cause="nonconvergent", recipe="tiny_batch_momentum", optimizer="momentum", lr=0.3,
                 momentum=0.99, batch_size=2, epochs=8),
         # unstable but finite (swinging curves): confirmed only by the counterfactual, lr x0.1 reaching
         # the reference (generate.py's rule for its unstable_* recipes)
         replace(base, cause="nonconvergent", recipe="unstable_sgd", optimizer="sgd", lr=2.0),
         replace(base, cause="nonconvergent", recipe="unstable_momentum_bs8", optimizer="momentum", lr=0.3,
                 momentum=0.9, batch_size=8),
         replace(base, cause="nonconvergent", recipe="unstable_adam_bs8", lr=0.05, batch_size=8)]
    return h + u + o + n


class Net(nn.Module):
    def __init__(self, n_in: int, n_out: int, cfg: Cfg, seq: bool) -> None:
        super().__init__()
        self.kind, self.drop = cfg.model, nn.Dropout(cfg.dropout)
        if cfg.model == "mlp":
            mods: list[nn.Module] = [nn.Flatten()]
            width = n_in * (SEQ_LEN if seq else 1)
            for _ in range(cfg.layers):
                mods += [nn.Linear(width, cfg.hidden_units), nn.ReLU(), nn.Dropout(cfg.dropout)]
                width = cfg.hidden_units
            self.body: nn.Module = nn.Sequential(*mods)
        else:
            cell = nn.GRU if cfg.model == "gru" else nn.LSTM
            self.body = cell(n_in, cfg.hidden_units, num_layers=cfg.layers, batch_first=True)
            width = cfg.hidden_units
        self.head = nn.Linear(width, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "mlp":
            return self.head(self.body(x))
        out, _ = self.body(x)
        return self.head(self.drop(out[:, -1]))


def _optimizer(cfg: Cfg, params: list[nn.Parameter]) -> torch.optim.Optimizer:
    kinds = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "rmsprop": torch.optim.RMSprop}
    if cfg.optimizer in kinds:
        return kinds[cfg.optimizer](params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    momentum = cfg.momentum if cfg.optimizer == "momentum" else 0.0
    return torch.optim.SGD(params, lr=cfg.lr, momentum=momentum, weight_decay=cfg.weight_decay)


def _lr_at(cfg: Cfg, epoch: int) -> float:
    if cfg.schedule == "step":
        return cfg.lr * 0.5 ** (epoch // max(1, cfg.epochs // 3))
    if cfg.schedule == "cosine":
        return cfg.lr * 0.5 * (1 + math.cos(math.pi * epoch / cfg.epochs))
    return cfg.lr


def _evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    model.eval()
    with torch.no_grad():
        out = model(x)
        return float(nn.functional.cross_entropy(out, y)), float((out.argmax(1) == y).float().mean())


def train(dataset: str, seed: int, cfg: Cfg) -> dict[str, object]:
    x, y = load(dataset)
    seq = x.ndim == 3
    n_classes = int(y.max()) + 1
    x_tr, x_va, y_tr, y_va = train_test_split(x, y, test_size=0.3, stratify=y, random_state=seed)
    if cfg.subsample:
        keep, _ = train_test_split(np.arange(len(y_tr)), train_size=cfg.subsample, stratify=y_tr, random_state=seed)
        x_tr, y_tr = x_tr[keep], y_tr[keep]
    flat = x_tr.reshape(len(x_tr), -1)
    scaler = StandardScaler().fit(flat)
    x_tr = scaler.transform(flat).reshape(x_tr.shape).astype(np.float32)
    x_va = scaler.transform(x_va.reshape(len(x_va), -1)).reshape(x_va.shape).astype(np.float32)
    rng, y_clean = np.random.default_rng(seed), y_tr.copy()
    if cfg.label_noise:
        flip = rng.random(len(y_tr)) < cfg.label_noise
        y_tr = y_tr.copy()
        y_tr[flip] = (y_tr[flip] + rng.integers(1, n_classes, flip.sum())) % n_classes
    torch.manual_seed(seed)
    xt, yt, yc = torch.from_numpy(x_tr), torch.from_numpy(y_tr), torch.from_numpy(y_clean)
    xv, yv = torch.from_numpy(x_va), torch.from_numpy(y_va)
    model = Net(x.shape[-1], n_classes, cfg, seq)
    opt = _optimizer(cfg, list(model.parameters()))
    gen = torch.Generator().manual_seed(seed)
    curves: dict[str, list[float]] = {k: [] for k in ("train_loss", "val_loss", "train_accuracy", "val_accuracy",
                                                      "lr", "grad_norm")}
    for epoch in range(cfg.epochs):
        for group in opt.param_groups:
            group["lr"] = _lr_at(cfg, epoch)
        model.train()
        perm = torch.randperm(len(yt), generator=gen)
        tot_loss = tot_correct = tot_norm = 0.0
        steps = 0
        for i in range(0, len(yt), cfg.batch_size):
            b = perm[i:i + cfg.batch_size]
            out = model(xt[b])
            loss = nn.functional.cross_entropy(out, yt[b])
            opt.zero_grad()
            loss.backward()
            tot_norm += float(torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip or float("inf")))
            opt.step()
            tot_loss += float(loss.detach()) * len(b)
            tot_correct += float((out.argmax(1) == yt[b]).sum())
            steps += 1
        curves["train_loss"].append(tot_loss / len(yt))
        curves["train_accuracy"].append(tot_correct / len(yt))
        vl, va = _evaluate(model, xv, yv)
        curves["val_loss"].append(vl)
        curves["val_accuracy"].append(va)
        curves["lr"].append(_lr_at(cfg, epoch))
        curves["grad_norm"].append(tot_norm / steps)
        if not all(math.isfinite(v[-1]) for v in curves.values()):
            break
        best = int(np.argmin(curves["val_loss"]))
        if cfg.early_stopping_patience and epoch - best >= cfg.early_stopping_patience:
            break
    _, train_eval_acc = _evaluate(model, xt, yc)
    return {"curves": curves, "n_classes": n_classes, "train_eval_accuracy": train_eval_acc,
            "majority_rate": float(np.bincount(y_va).max() / len(y_va))}


def _confirm(dataset: str, seed: int, cfg: Cfg, run: dict[str, object], ref: dict[str, float]) -> tuple[bool, str]:
    if cfg.recipe == "cut_short":   # counterfactual: given 6x the epochs the same recipe reaches the reference
        va = run["curves"]["val_accuracy"][-1]  # type: ignore[index]
        longer = train(dataset, seed, replace(cfg, epochs=6 * cfg.epochs))
        late = longer["curves"]["val_accuracy"][-1]  # type: ignore[index]
        ok = va <= ref["val_acc"] - 0.05 and late >= ref["val_acc"] - 0.05
        return ok, (f"val acc {va:.3f} after {cfg.epochs} epochs, {late:.3f} after {6 * cfg.epochs} "
                    f"(ref {ref['val_acc']:.3f})")
    if cfg.recipe.startswith("unstable"):
        lower = train(dataset, seed, replace(cfg, lr=cfg.lr / 10))
        return confirm(run, ref, float(lower["curves"]["val_accuracy"][-1]))  # type: ignore[index]
    return confirm(run, ref)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(Path(__file__).with_name("wide_runs.jsonl")))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--families", nargs="+", default=list(FAMILIES))
    ap.add_argument("--only", nargs="+", default=[], help="only these recipes besides the healthy ones (appended)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    t0, kept, total = time.time(), 0, 0
    with open(args.out, "a" if args.only else "w") as fh:
        for family in args.families:
            for dataset in FAMILIES[family]:
                for seed in args.seeds:
                    runs = [(cfg, train(dataset, seed, cfg)) for cfg in recipes(family, dataset)
                            if not args.only or cfg.cause == "healthy" or cfg.recipe in args.only]
                    healthy = [r for cfg, r in runs if cfg.cause == "healthy"]
                    ref = {"val_acc": max(r["curves"]["val_accuracy"][-1] for r in healthy),  # type: ignore[index]
                           "train_acc": max(float(r["train_eval_accuracy"]) for r in healthy)}  # type: ignore[arg-type]
                    for cfg, r in runs:
                        if args.only and cfg.recipe not in args.only:
                            continue   # the healthy runs were trained for the reference only
                        r["cause"] = cfg.cause
                        ok, why = _confirm(dataset, seed, cfg, r, ref)
                        total, kept = total + 1, kept + ok
                        print(f"{family:4s} {dataset:13s} s{seed} {cfg.cause:13s} {cfg.recipe:22s} "
                              f"{'KEEP' if ok else 'drop'} {why}", flush=True)
                        params = {k: v for k, v in asdict(cfg).items() if k not in ("cause", "recipe")}
                        curves = {k: [_round(v) for v in vs] for k, vs in r["curves"].items()}  # type: ignore[union-attr]
                        fh.write(json.dumps({
                            "run_id": f"{family}-{dataset}-s{seed}-{cfg.recipe}", "label": cfg.cause,
                            "recipe": cfg.recipe, "family": family, "dataset": dataset, "seed": seed,
                            "n_classes": r["n_classes"], "majority_rate": r["majority_rate"], "params": params,
                            "curves": curves, "confirmed": ok, "confirmation": why}) + "\n")
    print(f"kept {kept}/{total} runs in {time.time() - t0:.0f}s -> {args.out}")


if __name__ == "__main__":
    main()
