"""Plots: learning curves of one run (the figure every tuner looks at first)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mlflow_tune.callbacks import EpochRecord


def learning_curve_png(history: Sequence[EpochRecord], path: str | Path, title: str = "") -> Path:
    """Loss and accuracy, train vs validation, per epoch, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    epochs = [r.epoch for r in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(9, 3.4), constrained_layout=True)
    for ax, key, label in ((ax_loss, "loss", "loss"), (ax_acc, "accuracy", "accuracy")):
        ax.plot(epochs, [getattr(r, f"train_{key}") for r in history], "o-", ms=3, label="train")
        ax.plot(epochs, [getattr(r, f"val_{key}") for r in history], "s-", ms=3, label="validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    path = Path(path)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
