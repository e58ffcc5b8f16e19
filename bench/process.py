"""Whole processes, as a user runs them: `mlflow-tune search` against a floor and a hand-written loop.

Workload W1: digits, MLP with 2 hidden layers, the 8 configurations of a 2x2x2 grid over
lr {1e-3, 1e-2} x hidden_units {32, 128} x dropout {0, 0.5}, 20 epochs, batch 128, Adam, no pruning.
Each method is one fresh Python process on a fresh SQLite store (schema creation included, as a
new user pays it), timed from spawn to exit:

(a) `mlflow-tune search --config W1.yaml --quiet`: everything mlflow-tune logs (per-epoch metrics,
    checkpoints, diagnosis, top-k models, trials table, summary);
(b) the floor: `import mlflow`, open the store once, then train the 8 configurations bare with the
    same training loop (`train_model`, no callbacks);
(c) a hand-written loop: a parent run and 8 nested runs (`mlflow.start_run(nested=True)`), params,
    one `mlflow.log_metrics` per epoch.

Methods alternate within each round; figures are medians over the rounds. Printed: a/b and c/b,
and for (a) where its seconds go, read back from the store's run timestamps.
Run: `python bench/process.py [--rounds 3] [--epochs 20]`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GRID = {"lr": [1e-3, 1e-2], "hidden_units": [32, 128], "dropout": [0.0, 0.5]}
FIXED = {"dataset": "digits", "model": "mlp", "layers": 2, "batch_size": 128, "optimizer": "adam", "seed": 0}

TUNE_YAML = """\
experiment: w1
train: {fixed}
space:
  lr: {{choice: [0.001, 0.01]}}
  hidden_units: {{choice: [32, 128]}}
  dropout: {{choice: [0.0, 0.5]}}
search: {{algo: grid, max_trials: 8, parallel: 1, pruning: none, metric: val_loss, mode: min}}
"""

COMMON = """\
import itertools, sys, time
import mlflow
from mlflow_tune.training.config import from_mapping
from mlflow_tune.training.loop import train_model
GRID = {grid}
FIXED = {fixed}
configs = [dict(zip(GRID, v)) for v in itertools.product(*GRID.values())]
"""

FLOOR = COMMON + """\
client = mlflow.MlflowClient(sys.argv[1])
client.search_experiments()   # opens (and creates) the store once
for params in configs:
    train_model(from_mapping({{**FIXED, **params}}))
"""

HAND = COMMON + """\
from mlflow_tune.training.callbacks import TrainCallback
class PerEpoch(TrainCallback):
    def on_epoch_end(self, record, history):
        mlflow.log_metrics({{k: record.metrics()[k] for k in ("train_loss", "val_loss", "train_accuracy",
                             "val_accuracy")}}, step=record.epoch)
mlflow.set_tracking_uri(sys.argv[1])
mlflow.set_experiment("w1-hand")
with mlflow.start_run(run_name="hand search"):
    for params in configs:
        with mlflow.start_run(nested=True):
            mlflow.log_params({{**FIXED, **params}})
            train_model(from_mapping({{**FIXED, **params}}), [PerEpoch()])
"""


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    tic = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - tic
    if done.returncode != 0:
        raise SystemExit(f"{cmd[:3]} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return elapsed


def phases(uri: str, spawned: float, exited: float) -> dict[str, float]:
    """Where (a)'s seconds went, from the runs' timestamps (ms) against the process's spawn and exit."""
    import mlflow

    client = mlflow.MlflowClient(uri)
    exp = client.get_experiment_by_name("w1")
    runs = client.search_runs([exp.experiment_id], order_by=["attributes.start_time ASC"])
    parent = next(r for r in runs if r.data.tags.get("mlflow_tune.role") == "search")
    trials = [r for r in runs if r.data.tags.get("mlflow_tune.role") == "trial"]
    first = min(t.info.start_time for t in trials) / 1000
    last_end = max(t.info.end_time or 0 for t in trials) / 1000
    return {"start-up (spawn -> parent run)": parent.info.start_time / 1000 - spawned,
            "parent run -> first trial run": first - parent.info.start_time / 1000,
            "trials (first start -> last end)": last_end - first,
            "summary (last trial end -> parent end)": (parent.info.end_time or 0) / 1000 - last_end,
            "exit (parent end -> process gone)": exited - (parent.info.end_time or 0) / 1000}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=20)
    args = ap.parse_args()
    fixed = {**FIXED, "epochs": args.epochs}
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    cli = Path(sys.executable).parent / "mlflow-tune"
    times: dict[str, list[float]] = {"a": [], "b": [], "c": []}
    spent: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        (tmp / "w1.yaml").write_text(TUNE_YAML.format(fixed=fixed))
        (tmp / "floor.py").write_text(textwrap.dedent(FLOOR.format(grid=GRID, fixed=fixed)))
        (tmp / "hand.py").write_text(textwrap.dedent(HAND.format(grid=GRID, fixed=fixed)))
        # one untimed pass of each: the OS file cache and Python's bytecode caches are warm for all
        order = ["a", "b", "c"]
        for r in range(args.rounds + 1):
            for method in order:
                work = tmp / f"r{r}{method}"
                work.mkdir()
                uri = f"sqlite:///{work}/mlflow.db"
                if method == "a":
                    spawned = time.time()
                    t = timed([str(cli), "search", "--config", str(tmp / "w1.yaml"), "--quiet"], work,
                              {**env, "MLFLOW_TRACKING_URI": uri})
                    if r:
                        spent.append(phases(uri, spawned, spawned + t))
                else:
                    t = timed([sys.executable, str(tmp / ("floor.py" if method == "b" else "hand.py")), uri],
                              work, env)
                if r:
                    times[method].append(t)
                    print(f"round {r} {method}: {t:.2f} s", flush=True)
            order = order[1:] + order[:1]   # alternate who goes first
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"\nW1: digits mlp 2x hidden, 8 grid configs, {args.epochs} epochs, {args.rounds} rounds, "
          f"fresh process + fresh SQLite store each")
    for key, name in (("a", "mlflow-tune search"), ("b", "floor (bare loop)"), ("c", "hand-written nested runs")):
        print(f"({key}) {name:26s} median {med[key]:6.2f} s  ({', '.join(f'{t:.2f}' for t in times[key])})")
    print(f"a/b = {med['a'] / med['b']:.3f}  (target <= 1.15: {'met' if med['a'] / med['b'] <= 1.15 else 'NOT met'})")
    print(f"c/b = {med['c'] / med['b']:.3f}")
    print("\n(a) where the seconds go (median over rounds):")
    for phase in spent[0]:
        print(f"  {phase:42s} {statistics.median(s[phase] for s in spent):6.2f} s")


if __name__ == "__main__":
    main()
