"""The same search from Python: `python optimize.py` (after `python make_data.py`)."""

import mlflow_tune as mt
from train import fit

if __name__ == "__main__":   # parallel trials run in worker processes, which import this file
    outcome = mt.optimize(fit, {"lr": {"loguniform": [1e-4, 3e-2]}, "units": {"choice": [16, 32, 128]},
                                "dropout": {"uniform": [0.0, 0.5]}, "minority_weight": {"loguniform": [1, 30]}},
                          metric="val_f1", mode="max", algo="tpe", max_trials=16, parallel=2,
                          fixed={"epochs": 30, "n_classes": 2}, experiment="imbalanced-function")
    best = outcome.best
    print(f"best trial {best.tid}: val_f1 {best.objective:.3f} with {best.params}" if best else "no trial finished")
