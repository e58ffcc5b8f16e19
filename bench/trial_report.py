"""The cost of `trial.report` per epoch for a user's training function, against not reporting.

A function whose "epoch" is a fixed amount of numpy work (~2 ms) runs as one trial of a real
search (SQLite store, writer thread, median pruning with earlier trials' curves on the board,
the live guard) twice per round: reporting 4 metrics every epoch, and not reporting at all.
The difference over the number of epochs is the overhead per report, median over the rounds.
Run: `python bench/trial_report.py [--epochs 200 1000] [--rounds 5]`.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

WORK = np.random.default_rng(0).standard_normal((120, 120))


def epoch_work() -> float:
    return float(np.linalg.norm(WORK @ WORK))


def make_fit(epochs: int, report: bool, seconds: list[float]):  # type: ignore[no-untyped-def]
    def fit(trial) -> None:  # type: ignore[no-untyped-def]
        tic = time.perf_counter()
        for epoch in range(epochs):
            epoch_work()
            if report:
                loss = 1.0 / (epoch + 1) * trial.params["a"]
                trial.report(epoch, {"train_loss": loss, "val_loss": loss * 1.1, "val_accuracy": 1 - loss / 3,
                                     "val_f1": 1 - loss / 2})
        seconds.append(time.perf_counter() - tic)
    return fit


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, nargs="+", default=[200, 1000])
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    import mlflow_tune as mt

    with tempfile.TemporaryDirectory() as tmp:
        uri = f"sqlite:///{Path(tmp) / 'mlflow.db'}"
        for epochs in args.epochs:
            overheads = []
            for _ in range(args.rounds):
                timed: dict[bool, list[float]] = {True: [], False: []}
                for report in (True, False):
                    # 4 trials: the last one is timed, with 3 earlier curves on the pruner's board
                    mt.optimize(make_fit(epochs, report, timed[report]), {"a": {"choice": [1.0, 1.01, 1.02, 0.99]}},
                                metric="val_f1", algo="grid", max_trials=4, pruning="median",
                                experiment=f"bench-{epochs}-{report}", tracking_uri=uri) if report else \
                        [make_fit(epochs, False, timed[False])(None) for _ in range(4)]
                overheads.append((timed[True][-1] - timed[False][-1]) / epochs * 1000)
            print(f"{epochs} epochs: trial.report overhead {statistics.median(overheads):.3f} ms per report "
                  f"(rounds: {', '.join(f'{o:.3f}' for o in overheads)}; target < 1 ms)")


if __name__ == "__main__":
    main()
