"""Repair rate: for every confirmed run the rules flag (any label but healthy), apply the first piece
of its advice that a config value carries out, retrain, and count the runs that come back healthy.

The figure the literature reports (AUTOTRAINER repairs about 98% of the problems it detects); ours
applies one change, once, with no search.  Runs come from wide.py's cache (real training again for
the repaired run, same data, split and seed).

    python bench/diagnostics/repair.py [--runs bench/diagnostics/wide_runs.jsonl] [--rounds 3] [--limit N]

Round 1 is the repair rate asked for (the first advice, applied once); rounds 2-3 re-diagnose the
retrained run and apply its first advice again (AUTOTRAINER also tries its solutions in turn).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter, defaultdict
from dataclasses import fields
from pathlib import Path
from typing import Any

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1]))
from families import load  # noqa: E402
from wide import Cfg, train  # noqa: E402

from mlflow_tune.diagnostics import Curves, Diagnosis, diagnose  # noqa: E402
from mlflow_tune.diagnostics.changes import first_change  # noqa: E402

CFG_FIELDS = {f.name for f in fields(Cfg)}


def diagnosis(curves: dict[str, list[float | None]], n_classes: int, params: dict[str, Any],
              majority: float | None) -> Diagnosis:
    c = Curves(**{k: [float("nan") if v is None else v for v in curves.get(k, [])]
                  for k in ("train_loss", "val_loss", "train_accuracy", "val_accuracy")})
    shown = {k: str(v) for k, v in params.items()}
    shown["model"] = "rnn" if shown.get("model") in ("gru", "lstm") else shown.get("model", "mlp")
    return diagnose(c, n_classes=n_classes, planned_epochs=int(params["epochs"]), params=shown,
                    majority_rate=majority)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", default=str(HERE / "wide_runs.jsonl"))
    ap.add_argument("--limit", type=int, default=0, help="at most this many flagged runs (0: all)")
    ap.add_argument("--rounds", type=int, default=3, help="apply the new first advice up to this many times")
    args = ap.parse_args()
    torch.set_num_threads(1)
    t0 = time.time()
    flagged = [r for r in load(Path(args.runs))
               if diagnosis(r["curves"], r["n_classes"], r["params"], r.get("majority_rate")).label != "healthy"]
    if args.limit:
        flagged = flagged[:args.limit]
    by: dict[str, Counter[str]] = defaultdict(Counter)
    for r in flagged:
        first = diagnosis(r["curves"], r["n_classes"], r["params"], r.get("majority_rate"))
        key = f"{first.label}/{first.detail}"
        params, before, steps, healed_at = dict(r["params"]), first, [], 0
        for round_ in range(1, args.rounds + 1):   # round 1 is the figure: the first advice, once
            found = first_change(before.advice)
            if found is None or not set(found[1]) <= CFG_FIELDS:
                steps.append(f"no config change for {before.label}/{before.detail}")
                break
            text, change = found
            params = {**params, **change}
            out = train(r["dataset"], r["seed"], Cfg(cause=r["label"], recipe=r["recipe"], **params))
            before = diagnosis(out["curves"], r["n_classes"], params, r.get("majority_rate"))  # type: ignore[arg-type]
            steps.append(f"{text[:50]} -> {before.label}/{before.detail}")
            if before.label == "healthy":
                healed_at = round_
                break
        for group in ("all", key, r["family"]):
            by[group]["flagged"] += 1
            for k in range(1, args.rounds + 1):
                by[group][f"round{k}"] += 0 < healed_at <= k
        print(f"{r['run_id']:45s} {key:26s} " + " | ".join(steps), flush=True)
    print(f"\nrepaired (healthy after the first advice; then within {args.rounds} rounds of first advice "
          f"applied in turn), {time.time() - t0:.0f}s")
    for group in sorted(by, key=lambda g: (g != "all", g)):
        c = by[group]
        cells = "  ".join(f"{c[f'round{k}']:4d}/{c['flagged']:<4d} = {100 * c[f'round{k}'] / c['flagged']:3.0f}%"
                          for k in range(1, args.rounds + 1))
        print(f"  {group:30s} {cells}")

if __name__ == "__main__":
    main()
