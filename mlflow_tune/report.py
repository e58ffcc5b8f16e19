"""Plots: learning curves of one run (the figure every tuner looks at first)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mlflow_tune.callbacks import EpochRecord


def learning_curve_png(history: Sequence[EpochRecord], path: str | Path, title: str = "") -> Path:
    """Loss and accuracy, train vs validation, per epoch, side by side."""
    # The object API without pyplot: no global figure registry, and about half the time.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    epochs = [r.epoch for r in history]
    fig = Figure(figsize=(9, 3.4))
    FigureCanvasAgg(fig)
    ax_loss, ax_acc = fig.subplots(1, 2)
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.15, top=0.88 if title else 0.95, wspace=0.25)
    for ax, key, label in ((ax_loss, "loss", "loss"), (ax_acc, "accuracy", "accuracy")):
        ax.plot(epochs, [getattr(r, f"train_{key}") for r in history], "o-", ms=3, label="train")
        ax.plot(epochs, [getattr(r, f"val_{key}") for r in history], "s-", ms=3, label="validation")
        # Few ticks: tick labels are most of the drawing time, and 5 per axis read as well.
        ax.xaxis.set_major_locator(MaxNLocator(5, integer=True))
        ax.yaxis.set_major_locator(MaxNLocator(5))
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    path = Path(path)
    fig.savefig(path, dpi=80)
    return path
