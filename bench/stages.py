"""Staged (coarse-to-fine) search vs single-stage TPE vs random search at a budget of training epochs.

Per data set (digits, breast_cancer) and seed (search seed = train seed = split seed):
  - staged: coarse random search on 30% of the training split, few epochs, then TPE on the space
    narrowed (and diagnosis-guided) around the coarse top 3, full data, full epochs.
  - tpe / random: one flat search of the same space, full data, full epochs, run for TWICE the
    staged budget. Hyperopt's sequence for the first N trials does not depend on max_trials here
    (the TPE start-up is 5 random trials for both budgets), so the first trials of that search ARE
    the equal-budget search: both budgets come out of one run.
Epochs are counted from the trials themselves (TrialOutcome.epochs = epochs actually trained); a
coarse epoch on 30% of the data counts as a whole epoch (conservative for the staged search); the
"sample-epochs" column weighs each epoch by its subsample. Pruning is off for every method. The
selected trial is each search's best by validation loss (the objective); the table shows its best
validation accuracy and its test accuracy.

Run: `python bench/stages.py [--seeds 0 1 2] [--datasets digits breast_cancer]`.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import statistics
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

SPACE = {"lr": {"loguniform": [1e-4, 1.0]}, "hidden_units": {"logint": [16, 256]},
         "dropout": {"uniform": [0.0, 0.7]}, "weight_decay": {"loguniform": [1e-6, 0.1]},
         "layers": {"int": [1, 3]}, "optimizer": {"choice": ["adam", "rmsprop", "momentum"]}}
EPOCHS = 8
COARSE = {"name": "coarse", "algo": "random", "max_trials": 6, "epochs": 3, "subsample": 0.3}
FINE = {"name": "fine", "algo": "tpe", "max_trials": 4, "epochs": EPOCHS, "top_k": 3, "margin": 0.25}


def tune_data(dataset: str, seed: int, algo: str, max_trials: int, staged: bool) -> dict[str, Any]:
    data: dict[str, Any] = {
        "experiment": f"{dataset}-{algo}-{seed}",
        "train": {"dataset": dataset, "model": "mlp", "epochs": EPOCHS, "num_threads": 1, "seed": seed},
        "space": SPACE,
        "search": {"algo": algo, "max_trials": max_trials, "parallel": 1, "pruning": "none",
                   "top_k_models": 0, "seed": seed},
    }
    if staged:
        data["stages"] = [COARSE, FINE]
    return data


def trial_rows(uri: str, parent_id: str) -> list[dict[str, Any]]:
    """Every trial under the search (through stage runs): tid, stage, metrics, subsample."""
    from mlflow import MlflowClient

    from mlflow_tune.tracking.runs import child_runs

    client = MlflowClient(uri)
    experiment_id = client.get_run(parent_id).info.experiment_id
    rows = []
    found: list[Any] = []
    parents = [parent_id]
    while parents:   # trials, directly under the search or under its stage runs
        children = child_runs(client, experiment_id, parents.pop())
        found += [r for r in children if "mlflow_tune.trial" in r.data.tags]
        parents += [r.info.run_id for r in children if "mlflow_tune.trial" not in r.data.tags]
    for run in found:
        m, t = run.data.metrics, run.data.tags
        rows.append({"tid": int(t["mlflow_tune.trial"]), "stage": t.get("mlflow_tune.stage", ""),
                     "loss": m.get("objective"), "val_acc": m.get("best_val_accuracy"),
                     "test_acc": m.get("test_accuracy"),
                     "subsample": float(run.data.params.get("subsample", 1.0))})
    return sorted(rows, key=lambda r: r["tid"])


def pick(rows: list[dict[str, Any]]) -> dict[str, Any]:
    scored = [r for r in rows if r["loss"] is not None]
    return min(scored, key=lambda r: (r["loss"], r["tid"])) if scored else \
        {"val_acc": float("nan"), "test_acc": float("nan")}


def run_one(tmp: Path, template: Path, dataset: str, seed: int, method: str,
            trials: int) -> list[dict[str, Any]]:
    from mlflow_tune.config.tunefile import parse_tune_config
    from mlflow_tune.study.listener import SearchListener
    from mlflow_tune.study.study import search

    store = tmp / f"{dataset}-{method}-{seed}.db"
    shutil.copy(template, store)
    uri = f"sqlite:///{store}"
    algo = {"staged": "tpe", "tpe": "tpe", "random": "random"}[method]
    tune = parse_tune_config(tune_data(dataset, seed, algo, trials, method == "staged"))
    start = time.monotonic()
    out = search(tune, tracking_uri=uri, listener=SearchListener())
    wall = time.monotonic() - start
    epochs = {o.tid: o.epochs for o in out.trials}
    rows = trial_rows(uri, out.parent_run_id)
    for r in rows:
        r["epochs"] = epochs.get(r["tid"], 0)

    def result(label: str, used: list[dict[str, Any]], chosen: dict[str, Any]) -> dict[str, Any]:
        return {"method": label, "dataset": dataset, "seed": seed, "trials": len(used),
                "epochs": sum(r["epochs"] for r in used),
                "sample_epochs": sum(r["epochs"] * r["subsample"] for r in used),
                "val_acc": chosen["val_acc"], "test_acc": chosen["test_acc"], "wall": wall}

    if method == "staged":   # the selected trial comes from the last stage, as the search reports it
        last = [r for r in rows if r["stage"] == str(len(tune.stages) - 1)]
        return [result("staged", rows, pick(last))]
    half = trials // 2
    return [result(f"{method}-1x", rows[:half], pick(rows[:half])),
            result(f"{method}-2x", rows, pick(rows))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--datasets", nargs="+", default=["digits", "breast_cancer"])
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
    import torch
    from mlflow import MlflowClient

    torch.set_num_threads(1)
    staged_budget = COARSE["max_trials"] * COARSE["epochs"] + FINE["max_trials"] * FINE["epochs"]
    flat_trials = round(staged_budget / EPOCHS)   # equal budget in epochs; run twice that
    results: list[dict[str, Any]] = []
    begin = time.monotonic()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        template = tmp / "template.db"
        MlflowClient(f"sqlite:///{template}").search_experiments()   # migrate the schema once
        for dataset in args.datasets:
            for seed in args.seeds:
                results += run_one(tmp, template, dataset, seed, "staged", 1)
                results += run_one(tmp, template, dataset, seed, "tpe", 2 * flat_trials)
                results += run_one(tmp, template, dataset, seed, "random", 2 * flat_trials)
                print(f"# {dataset} seed {seed} done at {time.monotonic() - begin:.0f}s", flush=True)
    print_table(results)


def print_table(results: list[dict[str, Any]]) -> None:
    head = f"{'method':10} {'dataset':13} {'seed':>4} {'trials':>6} {'epochs':>6} {'smp-ep':>6} " \
           f"{'val_acc':>7} {'test_acc':>8}"
    print(head)
    print("-" * len(head))
    for r in results:
        print(f"{r['method']:10} {r['dataset']:13} {r['seed']:>4} {r['trials']:>6} {r['epochs']:>6} "
              f"{r['sample_epochs']:>6.1f} {r['val_acc']:>7.4f} {r['test_acc']:>8.4f}")
    print("\nmean over seeds")
    print(head.replace(f"{'seed':>4} ", ""))
    keys = sorted({(r["dataset"], r["method"]) for r in results})
    for dataset, method in keys:
        rows = [r for r in results if r["dataset"] == dataset and r["method"] == method]
        mean = {k: statistics.fmean(r[k] for r in rows) for k in ("trials", "epochs", "sample_epochs",
                                                                   "val_acc", "test_acc")}
        print(f"{method:10} {dataset:13} {mean['trials']:>6.1f} {mean['epochs']:>6.1f} "
              f"{mean['sample_epochs']:>6.1f} {mean['val_acc']:>7.4f} {mean['test_acc']:>8.4f}")


if __name__ == "__main__":
    main()
