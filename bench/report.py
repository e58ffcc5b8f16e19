"""How long `mlflow-tune report` takes for a 50-trial search (target: under 5 s).

A 50-trial search is logged synthetically into a fresh SQLite store (seconds instead of a real
search's minutes): a parent run as `mlflow-tune search` leaves it (role tag, search and space
params, best trial, description) and 50 trials under it, each with the params a trial logs, 20
epochs of train/val loss and accuracy, objective, outcome and diagnosis tags; 5 pruned, 2 failed.

Timed in one fresh process per round, from spawn to exit, as a user runs it:
(r) `mlflow-tune report PARENT` (reads every trial and curve, draws 5 figures, writes and logs
    report.html, updates the run's description);
(b) the baseline: a process that imports mlflow and reads the same runs into a DataFrame
    (`mlflow.search_runs`), what looking at the numbers by hand costs at least.
Median over the rounds. Run: `python bench/report.py [--rounds 3] [--trials 50]`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DIAGNOSES = ("healthy", "underfit", "overfit", "nonconvergent")


def make_search(uri: str, trials: int, epochs: int = 20) -> tuple[str, str]:
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param

    from mlflow_tune.tracking.runs import EXPERIMENT_TAGS

    client = MlflowClient(uri)
    eid = client.create_experiment("bench-report", tags=EXPERIMENT_TAGS)
    space = {"lr": {"loguniform": [1e-4, 1]}, "hidden_units": {"choice": [32, 64, 128]},
             "dropout": {"uniform": [0, 0.5]}, "optimizer": {"choice": ["adam", "sgd"]}}
    parent = client.create_run(eid, run_name="search tpe digits-mlp",
                               tags={"mlflow_tune.role": "search", "mlflow_tune.stopped_by": "max_trials"})
    pid = parent.info.run_id
    client.log_batch(pid, params=[Param("search.metric", "val_loss"), Param("search.mode", "min"),
                                  *(Param(f"space.{k}", json.dumps(v)) for k, v in space.items())])
    rng, now, best = random.Random(0), int(time.time() * 1000), ("", math.inf)
    for tid in range(trials):
        params = {"lr": 10 ** rng.uniform(-4, 0), "hidden_units": rng.choice([32, 64, 128]),
                  "dropout": rng.uniform(0, 0.5), "optimizer": rng.choice(["adam", "sgd"])}
        outcome = "failed" if tid in (11, 31) else "pruned" if tid % 10 == 7 else "completed"
        run = client.create_run(eid, run_name=f"trial-{tid:02d}", tags={
            "mlflow.parentRunId": pid, "mlflow_tune.role": "trial", "mlflow_tune.trial": str(tid),
            "mlflow_tune.outcome": outcome, "mlflow_tune.diagnosis": DIAGNOSES[tid % 4],
            "mlflow_tune.advice": "raise the learning rate; train longer"})
        floor = (math.log10(params["lr"]) + 2) ** 2 / 4 + 0.1 + rng.random() * 0.05
        metrics = []
        for step in range(epochs if outcome == "completed" else 5):
            decay = math.exp(-step / 5)
            for key, value in (("train_loss", floor + decay), ("val_loss", floor + 1.1 * decay),
                               ("train_accuracy", 1 - floor / 3), ("val_accuracy", 1 - floor / 2.5)):
                metrics.append(Metric(key, value, now, step))
        if outcome != "failed":
            metrics.append(Metric("objective", floor, now, step))
            best = min(best, (run.info.run_id, floor), key=lambda b: b[1])
        client.log_batch(run.info.run_id, metrics=metrics,
                         params=[Param(k, str(v)) for k, v in params.items()])
        client.set_terminated(run.info.run_id, "FAILED" if outcome == "failed" else "FINISHED")
    client.set_tag(pid, "mlflow_tune.best_run_id", best[0])
    client.set_terminated(pid)
    return eid, pid


def timed(cmd: list[str], env: dict[str, str], cwd: str) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, cwd=cwd, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--trials", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        uri = f"sqlite:///{tmp}/mlflow.db"
        start = time.perf_counter()
        eid, pid = make_search(uri, args.trials)
        print(f"logged a synthetic {args.trials}-trial search in {time.perf_counter() - start:.1f} s")
        env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
        report = [sys.executable, "-m", "mlflow_tune.cli", "report", pid]
        baseline = [sys.executable, "-c", f"import mlflow; mlflow.search_runs(['{eid}'], max_results=1000)"]
        r, b = [], []
        for _ in range(args.rounds):
            r.append(timed(report, env, tmp))
            b.append(timed(baseline, env, tmp))
        page = Path(tmp) / "reports" / pid / "report.html"
        size = page.stat().st_size / 1e6
    med_r, med_b = statistics.median(r), statistics.median(b)
    print(f"(r) mlflow-tune report      median {med_r:6.2f} s  ({', '.join(f'{x:.2f}' for x in r)}); "
          f"report.html {size:.2f} MB")
    print(f"(b) mlflow.search_runs      median {med_b:6.2f} s  ({', '.join(f'{x:.2f}' for x in b)})")
    print(f"r/b = {med_r / med_b:.2f}; r = {med_r:.2f} s (target < 5 s: {'met' if med_r < 5 else 'NOT met'})")


if __name__ == "__main__":
    main()
