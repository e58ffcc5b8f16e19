"""Scale-out benchmark: many writers on one tracking server, and what Spark costs a search.

(a) 8 processes, each logging 100 epochs x 8 metrics (one `log_batch` per epoch) to one
    `mlflow server` backed by PostgreSQL (SQLite when PostgreSQL is not installed): points
    expected vs found, and the points per second the server took.
(b) The same small search (8 grid trials, digits mlp, no pruning) with local worker processes
    and with Spark in local mode, at parallel 1 and 2, against that server: trials per minute,
    and the tool's overhead per trial = (search wall time - the bare loop's time for the same
    8 configurations / parallel) / 8. Spark's session start is paid once per process and shown apart.

Run: `python bench/scale.py [--epochs 15]` (needs the dev extra: pyspark, psycopg2; Java 17).
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))   # the real servers the tests start

WRITERS, EPOCHS, METRICS = 8, 100, 8
GRID = {"lr": [1e-3, 3e-3], "hidden_units": [32, 64], "dropout": [0.0, 0.2]}


def writer(uri: str, experiment_id: str, number: int) -> None:
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    client = MlflowClient(uri)
    run = client.create_run(experiment_id, run_name=f"writer-{number}")
    for epoch in range(EPOCHS):
        now = int(time.time() * 1000)
        client.log_batch(run.info.run_id, metrics=[Metric(f"m{k}", epoch + k / 10, now, epoch)
                                                   for k in range(METRICS)])
    client.set_terminated(run.info.run_id)


def many_writers(uri: str) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    experiment_id = client.create_experiment(f"writers-{time.time_ns()}")
    processes = [multiprocessing.get_context("spawn").Process(target=writer, args=(uri, experiment_id, i))
                 for i in range(WRITERS)]
    start = time.perf_counter()
    for p in processes:
        p.start()
    for p in processes:
        p.join()
    seconds = time.perf_counter() - start
    found = sum(len(client.get_metric_history(r.info.run_id, f"m{k}"))
                for r in client.search_runs([experiment_id]) for k in range(METRICS))
    expected = WRITERS * EPOCHS * METRICS
    print(f"(a) {WRITERS} writers x {EPOCHS} epochs x {METRICS} metrics: expected {expected} points, "
          f"found {found} ({'nothing lost' if found == expected else 'LOST ' + str(expected - found)}); "
          f"{seconds:.1f} s incl. process start, {expected / seconds:.0f} points/s")


def bare_seconds(epochs: int) -> float:
    import itertools

    from mlflow_tune.training.config import from_mapping
    from mlflow_tune.training.loop import train_model

    start = time.perf_counter()
    for values in itertools.product(*GRID.values()):
        train_model(from_mapping({"dataset": "digits", "model": "mlp", "epochs": epochs, "num_threads": 1,
                                  "seed": 0, **dict(zip(GRID, values, strict=True))}))
    return time.perf_counter() - start


def searches(uri: str, epochs: int) -> None:
    from mlflow_tune.config.settings import SearchSettings
    from mlflow_tune.config.space_yaml import parse_space
    from mlflow_tune.config.tunefile import TuneConfig
    from mlflow_tune.study.study import search

    bare = bare_seconds(epochs)
    print(f"(b) bare loop, 8 configurations x {epochs} epochs: {bare:.1f} s")
    space = parse_space({k: {"choice": v} for k, v in GRID.items()})
    train = {"dataset": "digits", "model": "mlp", "epochs": epochs, "num_threads": 1, "seed": 0}
    from mlflow_tune.executors.spark import spark_context

    start = time.perf_counter()
    spark_context("", 2)
    print(f"    Spark session start (once per process): {time.perf_counter() - start:.1f} s")
    for executor in ("process", "spark"):
        for parallel in (1, 2):
            settings = SearchSettings(algo="grid", max_trials=8, parallel=parallel, pruning="none",
                                      executor=executor, top_k_models=1)
            tune = TuneConfig(f"scale-{executor}-{parallel}-{time.time_ns()}", train, space, settings)
            start = time.perf_counter()
            search(tune, tracking_uri=uri)
            seconds = time.perf_counter() - start
            overhead = (seconds - bare / parallel) / 8
            print(f"    {executor:7s} parallel {parallel}: {seconds:6.1f} s, {8 / seconds * 60:5.1f} trials/min, "
                  f"overhead {overhead:+.2f} s/trial")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=15)
    args = parser.parse_args()
    from servers import MlflowServer, postgres_bin, start_postgres

    postgres = start_postgres() if postgres_bin("initdb") else None
    with tempfile.TemporaryDirectory() as tmp:
        store = postgres.create_database("bench") if postgres else f"sqlite:///{tmp}/mlflow.db"
        print(f"server backed by {store.split(':')[0]}")
        server = MlflowServer(Path(tmp), store, workers=4).start()   # mlflow server's default
        try:
            many_writers(server.uri)
            searches(server.uri, args.epochs)
        finally:
            server.stop()
            if postgres:
                postgres.stop()


if __name__ == "__main__":
    main()
