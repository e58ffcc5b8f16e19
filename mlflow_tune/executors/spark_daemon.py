"""The Spark executors' Python daemon, with a trial's imports done once before it forks.

PySpark forks each task's Python worker from this daemon, and does not reuse a worker from one
job to the next (measured: a new process for every one-task job), so every trial would import
torch, MLflow and scikit-learn again: 25 s of overhead per trial on a loaded 2-core machine
(`bench/scale.py`). Imported here once, as the local worker pool's fork server does.
"""

from __future__ import annotations

import importlib

from mlflow_tune.executors.pool import PRELOAD

for _name in (*PRELOAD, "mlflow", "mlflow_tune.tracking.writer", "mlflow_tune.executors.spark"):
    importlib.import_module(_name)

if __name__ == "__main__":
    from pyspark import daemon

    daemon.manager()
