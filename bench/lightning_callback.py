"""The cost of `TuneCallback` per validated epoch of a Lightning `Trainer`, against no callback.

One tiny LightningModule (a linear layer on 64 rows: an epoch is one training and one validation
batch, so Lightning's own per-epoch work is all there is to hide the callback behind) is fitted for
`--epochs` epochs as each of 4 trials of a real search (SQLite store, writer thread, median pruning,
the live guard), and fitted the same way in the same process with no callback just before and just
after; per round the faster fit of each side, median over rounds. The difference over the epochs
is the callback's overhead per validation. `--log` compares the two ways metrics get written: by the
callback through the trial (True) or by a logger (False: the callback only judges).
Run: `python bench/lightning_callback.py [--epochs 200] [--rounds 5]`.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import lightning as L
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

warnings.filterwarnings("ignore")
logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
X, Y = torch.randn(64, 8), torch.randint(0, 2, (64,))


class Tiny(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Linear(8, 2)

    def training_step(self, batch, _):  # type: ignore[no-untyped-def]
        loss = nn.functional.cross_entropy(self.net(batch[0]), batch[1])
        self.log("train_loss", loss, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch, _):  # type: ignore[no-untyped-def]
        logits = self.net(batch[0])
        self.log("val_loss", nn.functional.cross_entropy(logits, batch[1]))
        self.log("val_acc", (logits.argmax(1) == batch[1]).float().mean())

    def configure_optimizers(self):  # type: ignore[no-untyped-def]
        return torch.optim.SGD(self.parameters(), lr=0.05)


def fit_once(epochs: int, callbacks: list) -> float:  # type: ignore[type-arg]
    torch.manual_seed(0)
    loader = DataLoader(TensorDataset(X, Y), batch_size=64)
    trainer = L.Trainer(max_epochs=epochs, callbacks=callbacks, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0)
    tic = time.perf_counter()
    trainer.fit(Tiny(), loader, loader)
    return time.perf_counter() - tic


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    import mlflow_tune as mt
    from mlflow_tune.integrations.lightning import TuneCallback

    fit_once(args.epochs, [])   # warm-up: Lightning's and torch's first fit pays one-time costs
    with tempfile.TemporaryDirectory() as tmp:
        uri = f"sqlite:///{Path(tmp) / 'mlflow.db'}"
        for log in (True, False):
            overheads, bare_ms = [], []
            for r in range(args.rounds):
                timed: list[float] = []

                def fit(trial) -> None:  # type: ignore[no-untyped-def]
                    timed.append(fit_once(args.epochs, [TuneCallback(trial, log=log)]))  # noqa: B023

                # the bare fit just before and just after, the faster of the two: a machine that
                # slows down mid-round must not look like a negative overhead
                before = fit_once(args.epochs, [])
                mt.optimize(fit, {"a": {"choice": [1, 2, 3, 4]}}, metric="val_loss", algo="grid", max_trials=4,
                            pruning="median", pruning_warmup=args.epochs, experiment=f"bench-{log}-{r}",
                            tracking_uri=uri, progress=False, report=False)
                bare = min(before, fit_once(args.epochs, []))
                overheads.append((min(timed) - bare) / args.epochs * 1000)   # the faster on both sides
                bare_ms.append(bare / args.epochs * 1000)
            print(f"log={log}: TuneCallback overhead {statistics.median(overheads):.3f} ms per validated epoch "
                  f"(bare epoch {statistics.median(bare_ms):.2f} ms; rounds: "
                  f"{', '.join(f'{o:.3f}' for o in overheads)}; target < 1 ms)", flush=True)


if __name__ == "__main__":
    main()
