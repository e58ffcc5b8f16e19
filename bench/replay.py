"""Replay pruners on recorded curves: how early each would reach plain TPE's best on the same trials.

Reads the per-trial val_accuracy curves that `bench/efficiency.py --curves DIR` wrote for plain TPE
(`TASK-tpe-SEED.json`) and runs each pruner over them in the order the search ran its trials, as
a parallel-1 search would ask it after every epoch. A pruned trial's curve is cut there. Cost is
epochs; `of total` is the epochs until an epoch reached TPE's best - 0.002, over TPE's total.

This is for choosing a pruner's settings in seconds, not for the claims: a real pruned search
tells TPE other losses, so from its first TPE (non-random) trial on it draws other settings.
Claims come from `bench/efficiency.py`, which runs the searches.

Run: `python bench/replay.py DIR [--task tabular] [--pruners median asha hyperband curve ...]`.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from pathlib import Path

from mlflow_tune.pruners.asha import AshaPruner, HyperbandPruner
from mlflow_tune.pruners.curve import CurvePruner
from mlflow_tune.pruners.make import Pruner, make_pruner
from mlflow_tune.pruners.median import MedianPruner

CLASSES = {"median": MedianPruner, "asha": AshaPruner, "curve": CurvePruner,
           "hyperband": HyperbandPruner}


def build(spec: str, epochs: int) -> Pruner:
    """`name` as the search makes it, or `name:field=value,...` for other settings of that pruner."""
    name, _, fields = spec.partition(":")
    if not fields:
        return make_pruner(name, horizon=epochs)
    values = {k: float(v) if "." in v else int(v) for k, v in (f.split("=") for f in fields.split(","))}
    if name == "curve":
        values.setdefault("horizon", epochs)
    if name == "hyperband":
        values.setdefault("max_epochs", epochs)
    return CLASSES[name](**values)  # type: ignore[arg-type]


def replay(pruner: Pruner, curves: list[list[float]], target: float) -> tuple[float, float, int]:
    """(epochs until TPE's best - 0.002, epochs in all, trials pruned) of `pruner` on these trials."""
    board: dict[int, list[float]] = {}
    spent, reached, pruned = 0.0, math.inf, 0
    for tid, curve in enumerate(curves):
        board[tid] = []
        for epoch, value in enumerate(curve):
            spent += 1
            board[tid].append(-value if math.isfinite(value) else math.inf)
            if value >= target and math.isinf(reached):
                reached = spent
            if pruner.decides_at(epoch) and pruner.prune(tid, epoch, board):
                pruned += 1
                break
    return reached, spent, pruned


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--task", default="tabular")
    parser.add_argument("--pruners", nargs="+", default=["none", "median", "asha", "hyperband", "curve"])
    args = parser.parse_args()
    runs = sorted(args.directory.glob(f"{args.task}-tpe-*.json"))
    if not runs:
        raise SystemExit(f"no {args.task}-tpe-SEED.json under {args.directory}: run bench/efficiency.py --curves")
    print("| pruner | to TPE's best (x TPE's total), per seed | median | trials pruned | total (x TPE's) |")
    print("|---|---|---|---|---|")
    for name in args.pruners:
        ratios, totals, pruned_counts = [], [], []
        for path in runs:
            curves = [t["val_accuracy"] for t in json.loads(path.read_text())]
            epochs = max(len(c) for c in curves)
            target = max(v for c in curves for v in c if math.isfinite(v)) - 0.002
            total = float(sum(len(c) for c in curves))
            reached, spent, pruned = replay(build(name, epochs), curves, target)
            ratios.append(reached / total)
            totals.append(spent / total)
            pruned_counts.append(pruned)
        shown = " ".join("-" if math.isinf(r) else f"{r:.2f}" for r in ratios)
        print(f"| {name} | {shown} | {statistics.median(ratios):.2f} | "
              f"{statistics.median(pruned_counts):.0f} | {statistics.median(totals):.2f} |")


if __name__ == "__main__":
    main()
