"""How a run's writes leave the training path: our writer thread against MLflow's asynchronous logging.

The W1 trials (digits, 2-hidden-layer MLP, 8 grid configurations, 20 epochs) are trained in one
fresh process per method on a fresh SQLite store, each run getting what a search trial gets:
params, per-epoch metrics in batches, a checkpoint file, tags and its end status.

(t) `mlflow_tune.tracking.writer.Writer("thread")`: one ordered queue, jobs as a search trial sends
    them (epochs batched every 2 s, the end of the run as one job);
(m) MLflow's own asynchronous logging: `client.log_batch(..., synchronous=False)` per epoch (MLflow
    batches them in its own thread); the checkpoint and the run's end after that run's metrics are
    in, on the training thread. Not on a side thread: `set_terminated` shuts MLflow's store-wide
    async queue down, and the next run's `log_batch(..., synchronous=False)` then fails with
    "cannot schedule new futures after shutdown" (MLflow 3.17; first tried that way here);
(b) the same training with no tracking at all (the floor).

Each method is timed whole (spawn to exit), alternating, median over the rounds.
Run: `python bench/writer.py [--rounds 3]`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PRELUDE = """\
import io, itertools, sys, time
import mlflow, torch
from mlflow_tune.training.callbacks import TrainCallback
from mlflow_tune.training.config import from_mapping
from mlflow_tune.training.loop import train_model
GRID = {"lr": [1e-3, 1e-2], "hidden_units": [32, 128], "dropout": [0.0, 0.5]}
FIXED = {"dataset": "digits", "model": "mlp", "layers": 2, "batch_size": 128, "optimizer": "adam", "seed": 0,
         "epochs": 20}
configs = [{**FIXED, **dict(zip(GRID, v))} for v in itertools.product(*GRID.values())]
client = mlflow.MlflowClient(sys.argv[1])
exp = client.create_experiment("w", artifact_location=sys.argv[1].replace("sqlite:///", "file://")[:-9] + "art")

def checkpoint(result):
    buffer = io.BytesIO()
    torch.save({"state_dict": result.best_state}, buffer)
    return buffer.getvalue()
"""

OURS = PRELUDE + """\
from mlflow_tune.tracking.callback import MlflowCallback
from mlflow_tune.tracking.runs import RunRef
from mlflow_tune.tracking.writer import Writer
writer = Writer("thread").start()
for cfg in configs:
    run = client.create_run(exp)
    tracker = MlflowCallback(RunRef(sys.argv[1], run.info.run_id, experiment_id=exp), log_model=False,
                             plot_at_end=False, first_epoch_at_once=False, writer=writer)
    train_model(from_mapping(cfg), [tracker])
writer.close()
"""

MLFLOW_ASYNC = PRELUDE + """\
from mlflow.entities import Metric, Param

class AsyncMetrics(TrainCallback):
    def __init__(self, run_id): self.run_id, self.last = run_id, None
    def on_train_start(self, config, data, model):
        client.log_batch(self.run_id, params=[Param(k, str(v)) for k, v in config.to_params().items()],
                         synchronous=False)
    def on_epoch_end(self, record, history):
        now = int(time.time() * 1000)
        self.last = client.log_batch(self.run_id, synchronous=False,
                                     metrics=[Metric(k, v, now, record.epoch) for k, v in record.metrics().items()])

def finish(run_id, pending, data):
    import pathlib, tempfile
    pending.wait()   # MLflow's queue is in order: this run's metrics are all in before it ends
    with tempfile.TemporaryDirectory() as tmp:
        (pathlib.Path(tmp) / "checkpoints").mkdir()
        (pathlib.Path(tmp) / "checkpoints" / "best_checkpoint.pt").write_bytes(data)
        client.log_artifacts(run_id, tmp)
    client.set_terminated(run_id, "FINISHED")

for cfg in configs:
    run = client.create_run(exp)
    metrics = AsyncMetrics(run.info.run_id)
    result = train_model(from_mapping(cfg), [metrics])
    finish(run.info.run_id, metrics.last, checkpoint(result))
mlflow.flush_async_logging()
"""

FLOOR = PRELUDE + """\
for cfg in configs:
    train_model(from_mapping(cfg))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    times: dict[str, list[float]] = {"t": [], "m": [], "b": []}
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        scripts = {"t": OURS, "m": MLFLOW_ASYNC, "b": FLOOR}
        for key, text in scripts.items():
            (tmp / f"{key}.py").write_text(text)
        order = list(scripts)
        for r in range(args.rounds + 1):   # round 0 warms the file cache, untimed
            for key in order:
                work = tmp / f"{r}{key}"
                work.mkdir()
                tic = time.perf_counter()
                done = subprocess.run([sys.executable, str(tmp / f"{key}.py"), f"sqlite:///{work}/mlflow.db"],
                                      env=env, cwd=work, capture_output=True, text=True)
                elapsed = time.perf_counter() - tic
                if done.returncode:
                    raise SystemExit(f"{key} failed:\n{done.stderr[-3000:]}")
                if r:
                    times[key].append(elapsed)
            order = order[1:] + order[:1]
    med = {k: statistics.median(v) for k, v in times.items()}
    names = {"t": "writer thread (ours)", "m": "MLflow async logging", "b": "no tracking (floor)"}
    for key, name in names.items():
        print(f"({key}) {name:22s} median {med[key]:6.2f} s  ({', '.join(f'{t:.2f}' for t in times[key])})")
    print(f"t/b = {med['t'] / med['b']:.3f}   m/b = {med['m'] / med['b']:.3f}")


if __name__ == "__main__":
    main()
