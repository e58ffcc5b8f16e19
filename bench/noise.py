"""How much plain TPE's best accuracy moves when the same configuration is trained again.

bench/efficiency.py asks every method to reach plain TPE's best val accuracy within 0.002. This
retrains, for each seed's plain TPE search that `efficiency.py --curves DIR` recorded, its best
trial's parameters with --repeats other training seeds on the same data and split, and prints
the best val accuracy of each: if their spread is larger than 0.002, which method "reaches" the
target is partly the luck of one training seed.

Run: `python bench/noise.py DIR [--task tabular] [--repeats 3]`.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from efficiency import TASKS


def value(text: str) -> Any:
    """A parameter as MLflow stored it (a string) back to a number where it is one."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--task", default="tabular", choices=tuple(TASKS))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    import torch

    from mlflow_tune.training.config import from_mapping
    from mlflow_tune.training.data import split
    from mlflow_tune.training.loop import train_model

    torch.set_num_threads(1)
    base, _, _, epochs, rows = TASKS[args.task]
    spreads = []
    print("| seed | TPE's best | retrained (other training seeds) | max - min |\n|---|---|---|---|")
    for path in sorted(args.directory.glob(f"{args.task}-tpe-*.json")):
        seed = int(path.stem.rsplit("-", 1)[1])
        trials = json.loads(path.read_text())
        best = max(trials, key=lambda t: max(v for v in t["val_accuracy"] if math.isfinite(v)))
        values = {**base, "n_samples": rows, "epochs": len(best["val_accuracy"]) or epochs, "num_threads": 1,
                  "seed": seed, **{k: value(v) for k, v in best["params"].items()}}
        data = split(from_mapping(values))   # the split follows the data seed, as in the search
        found = [max(best["val_accuracy"])]
        for repeat in range(1, args.repeats + 1):
            history = train_model(from_mapping({**values, "seed": seed + 1000 * repeat}), data=data).history
            found.append(max(r.val_accuracy for r in history if math.isfinite(r.val_accuracy)))
        spreads.append(max(found) - min(found))
        print(f"| {seed} | {found[0]:.4f} | {' '.join(f'{v:.4f}' for v in found[1:])} | {spreads[-1]:.4f} |",
              flush=True)
    print(f"median spread {statistics.median(spreads):.4f} over {len(spreads)} seeds")


if __name__ == "__main__":
    main()
