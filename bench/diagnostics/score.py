"""Score mlflow_tune.diagnostics on the labelled benchmark written by generate.py.

The confirmed runs are split deterministically by a hash of their run id into a TUNING half
(thresholds in mlflow_tune/diagnostics.py were checked against this half only) and a HELD-OUT half
(reported, never looked at while choosing thresholds).  For each half: per-label precision/recall,
macro-F1, the confusion matrix and the false-alarm rate on healthy runs (share of healthy runs labelled
anything else).  Then, not scored: how the rules read the unconfirmed (ambiguous) runs, the live
guard (``early_verdict``) replayed epoch by epoch, and the held-out macro-F1 with each main threshold
moved by -25 % / +25 %.

    python bench/diagnostics/score.py [--runs bench/diagnostics/runs.jsonl] [--show-errors]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
from pathlib import Path

try:
    from mlflow_tune.diagnostics import rules as diagnostics_rules
    from mlflow_tune.diagnostics import verdict as diagnostics
except ImportError:  # not installed: run from a checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from mlflow_tune.diagnostics import rules as diagnostics_rules
    from mlflow_tune.diagnostics import verdict as diagnostics

from mlflow_tune.diagnostics import LABELS, Curves

sys.path.insert(0, str(Path(__file__).resolve().parent))
from splits import val_rows

diagnose, early_verdict = diagnostics.diagnose, diagnostics.early_verdict
SENSITIVITY = (
    "DIVERGE_FACTOR",
    "STALL_CHANCE",
    "OSC_LOSS_AMPLITUDE",
    "GL_OVERFIT",
    "GAP_OVERFIT",
    "GAP_ALONE",
    "UNDERFIT_LOSS",
    "PROGRESS_FALLING",
)

PREDICTED = (*LABELS, "unknown")


def half(run_id: str) -> str:
    """'tuning' or 'held-out', from the first byte of sha256(run id): stable across machines."""
    return "tuning" if hashlib.sha256(run_id.encode()).digest()[0] % 2 == 0 else "held-out"


def load(path: str) -> list[dict[str, object]]:
    with open(path) as fh:
        return [json.loads(line) for line in fh if line.strip()]


def curves_of(run: dict[str, object]) -> diagnostics.Curves:
    raw = run["curves"]
    assert isinstance(raw, dict)
    return Curves(**{k: [math.nan if v is None else v for v in vs] for k, vs in raw.items()})


def predict(run: dict[str, object]) -> tuple[str, str, str]:
    curves = curves_of(run)
    params = run["params"]
    assert isinstance(params, dict)
    as_strings = {k: str(v) for k, v in params.items()}  # as MLflow returns them
    n_classes = run["n_classes"]
    assert isinstance(n_classes, int)
    d = diagnose(curves, n_classes=n_classes, planned_epochs=int(params["epochs"]), params=as_strings,
                 n_val=val_rows(str(run["dataset"])))
    return d.label, d.detail, d.evidence


Row = tuple[dict[str, object], str, str, str]


def macro_f1(rows: list[Row]) -> float:
    f1s = []
    for lab in LABELS:
        tp = sum(1 for r, p, _, _ in rows if r["label"] == lab and p == lab)
        pred = sum(1 for _, p, _, _ in rows if p == lab)
        sup = sum(1 for r, _, _, _ in rows if r["label"] == lab)
        f1s.append(2 * tp / (pred + sup) if pred + sup else 0.0)
    return sum(f1s) / len(f1s)


def report(name: str, rows: list[Row], show_errors: bool) -> float:
    matrix = {t: dict.fromkeys(PREDICTED, 0) for t in LABELS}
    for run, label, _, _ in rows:
        matrix[str(run["label"])][label] += 1
    print(f"\n== {name} half: {len(rows)} runs ==")
    print(f"{'true / predicted':18s}" + "".join(f"{p:>15s}" for p in PREDICTED))
    for t in LABELS:
        print(f"{t:18s}" + "".join(f"{matrix[t][p]:15d}" for p in PREDICTED))
    f1s = []
    print(f"{'label':15s}{'precision':>10s}{'recall':>10s}{'F1':>8s}{'support':>9s}")
    for lab in LABELS:
        tp = matrix[lab][lab]
        pred = sum(matrix[t][lab] for t in LABELS)
        sup = sum(matrix[lab].values())
        p = tp / pred if pred else 0.0
        r = tp / sup if sup else 0.0
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        f1s.append(f1)
        print(f"{lab:15s}{p:10.3f}{r:10.3f}{f1:8.3f}{sup:9d}")
    macro = sum(f1s) / len(f1s)
    healthy = sum(matrix["healthy"].values())
    alarms = healthy - matrix["healthy"]["healthy"]
    rate = alarms / healthy if healthy else 0.0
    print(f"macro-F1 {macro:.3f}; healthy runs flagged {alarms}/{healthy} = {100 * rate:.1f}%")
    if show_errors:
        for run, label, detail, ev in rows:
            if label != run["label"]:
                print(f"  MISS {run['run_id']}: {run['label']} -> {label}/{detail}: {ev}")
    return macro


def unconfirmed(runs: list[dict[str, object]]) -> None:
    table: dict[str, dict[str, int]] = {t: dict.fromkeys(PREDICTED, 0) for t in LABELS}
    for run in runs:
        table[str(run["label"])][predict(run)[0]] += 1
    print(f"\n== not scored: {len(runs)} unconfirmed runs (intended cause / label given) ==")
    print(f"{'intended / given':18s}" + "".join(f"{p:>15s}" for p in PREDICTED))
    for t in LABELS:
        print(f"{t:18s}" + "".join(f"{table[t][p]:15d}" for p in PREDICTED))


def guard(runs: list[dict[str, object]]) -> None:
    """Replay early_verdict epoch by epoch (stop_stalled on): false stops and epochs saved."""
    false_stops, stopped, epochs_total, epochs_saved, n_bad = 0, 0, 0, 0, 0
    for run in runs:
        c = curves_of(run)
        n = len(c.train_loss)
        n_classes = int(run["n_classes"])  # type: ignore[call-overload]
        planned = int(run["params"]["epochs"])  # type: ignore[index]
        at = next(
            (
                k
                for k in range(1, n + 1)
                if early_verdict(
                    Curves(c.train_loss[:k], c.val_loss[:k], c.train_accuracy[:k], c.val_accuracy[:k]),
                    n_classes=n_classes,
                    stop_stalled=True,
                )
                is not None
            ),
            None,
        )
        if run["label"] != "nonconvergent":
            false_stops += at is not None
            continue
        n_bad += 1
        epochs_total += planned
        if at is not None:
            stopped += 1
            epochs_saved += planned - at
    ok = len(runs) - n_bad
    print(f"\n== live guard (early_verdict, stop_stalled=True) on all {len(runs)} confirmed runs ==")
    print(f"false stops on healthy/underfit/overfit runs: {false_stops}/{ok}")
    print(
        f"nonconvergent runs stopped early: {stopped}/{n_bad}; epochs saved {epochs_saved}/{epochs_total}"
        f" = {100 * epochs_saved / max(1, epochs_total):.0f}%"
    )


def sensitivity(rows: list[Row]) -> None:
    print("\n== held-out macro-F1 with one threshold moved (others at their defaults) ==")
    for name in SENSITIVITY:
        base = getattr(diagnostics_rules, name)
        scores = []
        for factor in (0.75, 1.25):
            setattr(diagnostics_rules, name, base * factor)
            scores.append(macro_f1([(r, *predict(r)) for r, _, _, _ in rows]))
        setattr(diagnostics_rules, name, base)
        print(f"{name:20s} {base:8.3g}: x0.75 -> {scores[0]:.3f}, x1.25 -> {scores[1]:.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", default=str(Path(__file__).with_name("runs.jsonl")))
    ap.add_argument("--show-errors", action="store_true", help="list the misclassified runs")
    args = ap.parse_args()
    every = load(args.runs)
    runs = [r for r in every if r.get("confirmed", True)]
    halves: dict[str, list[Row]] = {"tuning": [], "held-out": []}
    for run in runs:
        halves[half(str(run["run_id"]))].append((run, *predict(run)))
    datasets = sorted({str(r["dataset"]) for r in runs})
    print(
        f"{len(runs)} confirmed runs ({len(every)} generated) from {args.runs};",
        f"data sets: {', '.join(datasets)}",
    )
    print(
        "Thresholds (mlflow_tune/diagnostics_rules.py) were set from their sources and checked on the"
        " TUNING half only; the HELD-OUT half is the reported result."
    )
    report("tuning", halves["tuning"], args.show_errors)
    report("held-out", halves["held-out"], args.show_errors)
    unconfirmed([r for r in every if not r.get("confirmed", True)])
    guard(runs)
    sensitivity(halves["held-out"])


if __name__ == "__main__":
    main()
