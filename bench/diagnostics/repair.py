"""Repair rate: for every confirmed run the rules flag (any label but healthy), apply the first piece
of its advice that a config value carries out, retrain, and count the runs that come back healthy.

The figure the literature reports (AUTOTRAINER repairs about 98% of the problems it detects).  Runs
come from wide.py's cache (real training again for the repaired run, same data, split and seed).

    python bench/diagnostics/repair.py [--runs bench/diagnostics/wide_runs.jsonl] [--rounds 3]
        [--labels overfit ...] [--skip ...] [--limit N]

Round 1 is the first advice, applied once (what `mlflow-tune fix` does); later rounds follow
`mlflow-tune fix --until-healthy` (mlflow_tune.diagnostics.repair.next_change, the same code): the
retrained run is re-diagnosed and its advice applied on top, a bigger step where the same step did not
cure, the next lever where overfitting persists, never a configuration already trained.
"""

from __future__ import annotations

import argparse
import json
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
from generate import confirm  # noqa: E402
from splits import val_rows  # noqa: E402
from wide import Cfg, train  # noqa: E402

from mlflow_tune.diagnostics import Curves, Diagnosis, diagnose  # noqa: E402
from mlflow_tune.diagnostics.repair import Round, at_floor, next_change  # noqa: E402

CFG_FIELDS = {f.name for f in fields(Cfg)}


def diagnosis(curves: dict[str, list[float | None]], n_classes: int, params: dict[str, Any],
              majority: float | None, dataset: str) -> Diagnosis:
    c = Curves(**{k: [float("nan") if v is None else v for v in curves.get(k, [])]
                  for k in ("train_loss", "val_loss", "train_accuracy", "val_accuracy")})
    shown = {k: str(v) for k, v in params.items()}
    shown["model"] = "rnn" if shown.get("model") in ("gru", "lstm") else shown.get("model", "mlp")
    return diagnose(c, n_classes=n_classes, planned_epochs=int(params["epochs"]), params=shown,
                    majority_rate=majority, n_val=val_rows(dataset))


def best_acc(curves: dict[str, Any]) -> float | None:
    accs = [a for a in curves.get("val_accuracy", []) if a is not None and a == a]
    return max(accs) if accs else None


def ref_key(r: dict[str, Any]) -> tuple[str, str, int]:
    return r["family"], r["dataset"], r["seed"]


def references(path: Path) -> dict[tuple[str, str, int], float]:
    """The oracle's reference per family, data set and seed: the best final val accuracy of the healthy
    recipes (every run of them, as wide.py's confirmation computed it)."""
    refs: dict[tuple[str, str, int], float] = {}
    for line in path.read_text().splitlines():
        r = json.loads(line)
        r.setdefault("family", r["params"].get("model", "mlp"))
        if r["label"] == "healthy" and r["curves"]["val_accuracy"]:
            refs[ref_key(r)] = max(refs.get(ref_key(r), 0.0), r["curves"]["val_accuracy"][-1] or 0.0)
    return refs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", default=str(HERE / "wide_runs.jsonl"))
    ap.add_argument("--limit", type=int, default=0, help="at most this many flagged runs (0: all)")
    ap.add_argument("--rounds", type=int, default=3, help="apply the new first advice up to this many times")
    ap.add_argument("--labels", nargs="+", default=[], help="only runs first labelled so (e.g. overfit)")
    ap.add_argument("--skip", nargs="+", default=[], help="not the runs first labelled so")
    args = ap.parse_args()
    torch.set_num_threads(1)
    t0 = time.time()
    refs = references(Path(args.runs))

    def first_of(r: dict[str, Any]) -> Diagnosis:
        return diagnosis(r["curves"], r["n_classes"], r["params"], r.get("majority_rate"), r["dataset"])

    flagged = [r for r in load(Path(args.runs)) if first_of(r).label not in ("healthy", *args.skip)]
    if args.labels:
        flagged = [r for r in flagged if first_of(r).label in args.labels]
    if args.limit:
        flagged = flagged[:args.limit]
    by: dict[str, Counter[str]] = defaultdict(Counter)
    for r in flagged:
        first = first_of(r)
        key = f"{first.label}/{first.detail}"
        params, before, steps, healed_at, out = dict(r["params"]), first, [], 0, None
        rounds = [Round(params, first.label, first.detail, first.advice, score=best_acc(r["curves"]))]
        floor = ""
        for round_ in range(1, args.rounds + 1):   # round 1 is the figure: the first advice, once
            found = next_change(rounds, allowed=CFG_FIELDS)
            if found is None:
                steps.append(f"no config change for {before.label}/{before.detail}")
                break
            text, change = found
            params = {**params, **change}
            out = train(r["dataset"], r["seed"], Cfg(cause=r["label"], recipe=r["recipe"], **params))
            before = diagnosis(out["curves"], r["n_classes"], params, r.get("majority_rate"), r["dataset"])  # type: ignore[arg-type]
            rounds.append(Round(params, before.label, before.detail, before.advice, change, best_acc(out["curves"])))
            steps.append(f"{text[:60]} -> {before.label}/{before.detail}")
            if before.label == "healthy":
                healed_at = round_
                break
            if floor := at_floor(rounds, val_rows(r["dataset"])):
                steps.append(floor[:40])
                break
        # the oracle's word on the last run (generate.confirm: val accuracy within 0.03 of the best healthy
        # recipe on the same data and seed, no overfitting turn): does "healthy" mean what it says?
        agreed, why = confirm({**out, "cause": "healthy"}, {"val_acc": refs[ref_key(r)], "train_acc": 1.0}) \
            if (healed_at > 0 or floor) and out is not None else (False, "")
        for group in ("all", key, r["family"]):
            by[group]["flagged"] += 1
            by[group]["oracle"] += agreed and healed_at > 0
            by[group]["floor"] += bool(floor)
            by[group]["floor_oracle"] += agreed and bool(floor)
            for k in range(1, args.rounds + 1):
                by[group][f"round{k}"] += 0 < healed_at <= k
        print(f"{r['run_id']:45s} {key:26s} " + " | ".join(steps) + (f" [oracle: {why}]" if why else ""), flush=True)
    print(f"\nrepaired (healthy after the first advice; then within {args.rounds} rounds of first advice "
          f"applied in turn), {time.time() - t0:.0f}s")
    for group in sorted(by, key=lambda g: (g != "all", g)):
        c = by[group]
        cells = "  ".join(f"{c[f'round{k}']:4d}/{c['flagged']:<4d} = {100 * c[f'round{k}'] / c['flagged']:3.0f}%"
                          for k in range(1, args.rounds + 1))
        print(f"  {group:30s} {cells}   oracle agrees {c['oracle']}/{c[f'round{args.rounds}']}; "
              f"stopped at the data's floor {c['floor']} (oracle: healthy {c['floor_oracle']})")

if __name__ == "__main__":
    main()
