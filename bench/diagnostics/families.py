"""Score mlflow_tune.diagnostics on held-out families: leave one data set, model family or fault kind out.

The rules have no fitted parameters: their thresholds were set from their sources and from
generate.py's MLP runs, and the issue-13 additions (diagnostics/symptoms.py, advice directions) were
written from the issue's descriptions *before* wide.py's runs existed.  So holding a family out means
scoring the rules on a family they were never checked on; no threshold was changed after seeing
these scores.  For every fold: macro-F1 over the four labels and the share of healthy runs flagged.
The pooled line is the macro-F1 over all folds' held-out runs together (each run is held out once).
Then each fault kind alone (a recipe, or faults.py's ``fault``), the calibration table (confidence of
the label vs share right) and the confusion matrix.  Curves are read through the product's metric-name
resolution (``mlflow_tune.diagnostics.runs.pick_keys``), so faults.py's Keras-named runs (``loss``,
``accuracy``) go through the same path as a run the product did not train.

    python bench/diagnostics/families.py [--runs FILE ...] [--with-mlp-bench] [--with-fault-bench]
        [--show-errors] [--unconfirmed]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from mlflow_tune.diagnostics import LABELS, Curves, diagnose
from mlflow_tune.diagnostics.runs import pick_keys

sys.path.insert(0, str(Path(__file__).resolve().parent))
from splits import val_rows

HERE = Path(__file__).resolve().parent


def load(path: Path, family: str | None = None, confirmed: bool = True) -> list[dict[str, Any]]:
    runs = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    for r in runs:
        r.setdefault("family", family or r["params"].get("model", "mlp"))
        r.setdefault("fault", r["recipe"])   # generate.py / wide.py: every recipe is its own fault kind
        r.setdefault("names", "ours")
    return [r for r in runs if bool(r.get("confirmed")) == confirmed]


def predict(run: dict[str, Any]) -> str:
    return judge(run).label


def judge(run: dict[str, Any]) -> Any:
    c = run["curves"]   # logged names (ours or Keras'), resolved as for any MLflow run: runs.pick_keys
    curves = Curves(**{curve: [float("nan") if v is None else v for v in c[key]]
                       for curve, key in pick_keys(set(c), {}).items()})
    params = {k: str(v) for k, v in run["params"].items()}
    params["model"] = "rnn" if params.get("model") in ("gru", "lstm") else params.get("model", "mlp")
    return diagnose(curves, n_classes=run["n_classes"], planned_epochs=int(run["params"]["epochs"]), params=params,
                    majority_rate=run.get("majority_rate"), n_val=run.get("val_rows") or val_rows(run["dataset"]))


def macro_f1(pairs: list[tuple[str, str]]) -> float:
    scores = []
    for label in LABELS:
        tp = sum(1 for t, p in pairs if t == label and p == label)
        fp = sum(1 for t, p in pairs if t != label and p == label)
        fn = sum(1 for t, p in pairs if t == label and p != label)
        if tp + fp + fn == 0:
            continue   # a label absent from the fold and never predicted does not count
        scores.append(2 * tp / (2 * tp + fp + fn))
    return sum(scores) / len(scores) if scores else float("nan")


def flagged(pairs: list[tuple[str, str]]) -> tuple[int, int]:
    healthy = [p for t, p in pairs if t == "healthy"]
    return sum(1 for p in healthy if p != "healthy"), len(healthy)


def fold_table(title: str, key: str, runs: list[dict[str, Any]], preds: dict[str, str]) -> tuple[float, float]:
    print(f"\n== {title} ==")
    print(f"{'held out':16s} {'runs':>5s} {'macro-F1':>9s} {'healthy flagged':>16s}  labels")
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in runs:
        groups[r[key]].append(r)
    pooled: list[tuple[str, str]] = []
    for name in sorted(groups):
        pairs = [(r["label"], preds[r["run_id"]]) for r in groups[name]]
        pooled += pairs
        bad, n = flagged(pairs)
        labels = Counter(t for t, _ in pairs)
        rate = f"{bad}/{n} = {100 * bad / n:.0f}%" if n else "-"
        print(f"{name:16s} {len(pairs):5d} {macro_f1(pairs):9.3f} {rate:>16s}  "
              + ", ".join(f"{k} {labels[k]}" for k in LABELS if labels[k]))
    bad, n = flagged(pooled)
    print(f"{'pooled':16s} {len(pooled):5d} {macro_f1(pooled):9.3f} {f'{bad}/{n} = {100 * bad / max(n, 1):.1f}%':>16s}")
    return macro_f1(pooled), bad / max(n, 1)


def fault_table(runs: list[dict[str, Any]], preds: dict[str, str]) -> None:
    """Each fault kind (a recipe, or faults.py's fault) scored on its own, per true label (a practitioner
    bug may have several, decided by the oracle): the share labelled right, with the labels given."""
    print("\n== each fault kind alone, per true label ==")
    print(f"{'fault kind':24s} {'true':14s} {'runs':>5s} {'right':>7s}  labels given")
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in runs:
        groups[(r["fault"], r["label"])].append(r)
    for name, label in sorted(groups, key=lambda k: (groups[k][0]["label"], k)):
        rs = groups[(name, label)]
        given = Counter(preds[r["run_id"]] for r in rs)
        right = sum(1 for r in rs if preds[r["run_id"]] == r["label"])
        print(f"{name:24s} {label:14s} {len(rs):5d} {right / len(rs):7.0%}  "
              + ", ".join(f"{k} {v}" for k, v in given.most_common()))
    noncon = [r for r in runs if r["label"] == "nonconvergent"]
    hit = sum(1 for r in noncon if preds[r["run_id"]] == "nonconvergent")
    print(f"nonconvergent recall: {hit}/{len(noncon)} = {hit / max(len(noncon), 1):.3f}")


BINS = ((0.5, 0.7), (0.7, 0.9), (0.9, 1.01))


def calibration(runs: list[dict[str, Any]], judged: dict[str, Any]) -> None:
    """The reliability table: of the runs labelled with a confidence in each bin, how many are right."""
    print("\n== calibration: confidence of the label given vs the share right ==")
    print(f"{'confidence':12s} {'runs':>5s} {'right':>7s}  {'mean confidence':>15s}")
    for low, high in (*BINS, (0.0, 0.5)):
        rs = [r for r in runs if low <= judged[r["run_id"]].confidence < high]
        if not rs:
            continue
        right = sum(1 for r in rs if judged[r["run_id"]].label == r["label"])
        mean = sum(judged[r["run_id"]].confidence for r in rs) / len(rs)
        span = f"[{low:.1f}, {min(high, 1.0):.1f}{']' if high > 1 else ')'}"
        print(f"{span:12s} {len(rs):5d} {right / len(rs):7.1%}  {mean:15.2f}")


def confusion(runs: list[dict[str, Any]], preds: dict[str, str], title: str) -> None:
    print(f"\n== {title} (rows: true label, columns: label given) ==")
    print(f"{'true / given':16s}" + "".join(f"{p:>15s}" for p in (*LABELS, "unknown")))
    for t in LABELS:
        row = Counter(preds[r["run_id"]] for r in runs if r["label"] == t)
        print(f"{t:16s}" + "".join(f"{row[p]:15d}" for p in (*LABELS, "unknown")))


def errors(runs: list[dict[str, Any]], judged: dict[str, Any]) -> None:
    """The misses grouped by fault kind, each with the evidence line the rules gave."""
    print("\n== misses by fault kind ==")
    for r in sorted(runs, key=lambda r: (r["fault"], r["run_id"])):
        d = judged[r["run_id"]]
        if d.label != r["label"]:
            print(f"  [{r['fault']}] {r['run_id']} ({r['names']} names): true {r['label']}, got "
                  f"{d.label}/{d.detail} ({d.confidence:.2f}): {d.evidence}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", nargs="+", default=[str(HERE / "wide_runs.jsonl")])
    ap.add_argument("--with-mlp-bench", action="store_true", help="also fold in generate.py's runs.jsonl")
    ap.add_argument("--with-fault-bench", action="store_true", help="also fold in faults.py's fault_runs.jsonl")
    ap.add_argument("--show-errors", action="store_true", help="the misses, by fault kind, with their evidence")
    ap.add_argument("--unconfirmed", action="store_true", help="how the rules read the runs not scored")
    args = ap.parse_args()
    paths = [Path(p) for p in args.runs] + ([HERE / "fault_runs.jsonl"] if args.with_fault_bench else [])
    runs = [r for p in paths for r in load(p)]
    if args.with_mlp_bench:
        runs += load(HERE / "runs.jsonl", family="mlp")
    judged = {r["run_id"]: judge(r) for r in runs}
    preds = {run_id: d.label for run_id, d in judged.items()}
    print(f"{len(runs)} confirmed runs; families {sorted({r['family'] for r in runs})}; "
          f"data sets {sorted({r['dataset'] for r in runs})}")
    fold_table("leave one model family out", "family", runs, preds)
    fold_table("leave one data set out", "dataset", runs, preds)
    fold_table("leave one fault kind out", "fault", runs, preds)
    if len({r["names"] for r in runs}) > 1:
        fold_table("by metric names (read through runs.pick_keys)", "names", runs, preds)
    fault_table(runs, preds)
    calibration(runs, judged)
    confusion(runs, preds, "confusion matrix, all runs")
    if args.show_errors:
        errors(runs, judged)
    if args.unconfirmed:
        dropped = [r for p in paths for r in load(p, confirmed=False)]
        given = {r["run_id"]: predict(r) for r in dropped}
        print("\n== not scored: fault kind / label given ==")
        for fault in sorted({r["fault"] for r in dropped}):
            rs = [r for r in dropped if r["fault"] == fault]
            print(f"{fault:24s} {len(rs):4d}  " + ", ".join(f"{k} {v}" for k, v in
                                                          Counter(given[r["run_id"]] for r in rs).most_common()))


if __name__ == "__main__":
    main()
