"""Learning curves of one run as a PNG: the figure every tuner looks at first.

Drawn with matplotlib so the project has one plotting stack: the search report
(``reports/html.py``) already draws with it, and its locators and formatters choose the ticks
that a hand-written renderer had to compute itself. Measured for a 20-epoch history (2-CPU
machine, PNG written): ~50 ms per figure warm (median; 48-52 over runs), ~58 ms for the first
call, plus ~300 ms once per process to import matplotlib. The Pillow renderer this replaced
took ~5 ms on the same machine: the price of one stack, paid once per plotted run.

The object-oriented API (``Figure`` + ``FigureCanvasAgg``) and never ``pyplot``: no global figure
registry, nothing to close, and safe to call from the writer's thread. Fixed margins rather
than ``layout="constrained"`` or ``bbox_inches="tight"``, which lay out every text again to
measure it. Most of what remains is matplotlib creating and drawing the tick objects.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from mlflow_tune.training.records import EpochRecord

DPI = 100
SIZE = (7.2, 2.72)   # inches: 720 x 272 pixels at DPI
# Colour-blind-safe pair (the tab10 blue/orange); the markers differ too, so colour is not the only cue.
SERIES = (("train", "tab:blue", "o"), ("val", "tab:orange", "s"))
LABELS = {"train": "train", "val": "validation"}


def _finite_or_nan(values: Sequence[float]) -> list[float]:
    # matplotlib breaks a line at NaN but would try to draw to inf (and autoscale to it)
    return [v if math.isfinite(v) else math.nan for v in values]


def learning_curve_figure(history: Sequence[EpochRecord], title: str = "") -> Figure:
    """Loss and accuracy, train vs validation, per epoch, side by side (an Agg canvas attached)."""
    # Imported here, not with the module: a trial's runner and `train` take `learning_curve_bytes`
    # at start-up and most runs never draw (~300 ms of matplotlib once per drawing process).
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=SIZE, dpi=DPI)
    FigureCanvasAgg(fig)
    # Fixed margins (figure fractions): the left one and the gap fit 7-character tick labels
    # ("0.99912") beside the y label, and a top band holds the title (left) and the legend
    # (right) off the data. Measuring the labels instead (layout="constrained") took ~85 ms.
    fig.subplots_adjust(left=0.105, right=0.985, bottom=0.17, top=0.86, wspace=0.3)
    axes = fig.subplots(1, 2)
    epochs = [r.epoch for r in history]
    # Markers shrink as epochs crowd, or a long run's curve becomes a thick band; never below a
    # visible dot, so an epoch isolated between non-finite values still shows.
    markersize = max(1.5, min(3.5, 80 / max(1, len(epochs))))
    for ax, metric in zip(axes, ("loss", "accuracy"), strict=True):
        for prefix, colour, marker in SERIES:
            values = _finite_or_nan([getattr(r, f"{prefix}_{metric}") for r in history])
            ax.plot(epochs, values, color=colour, marker=marker, markersize=markersize, linewidth=1.5,
                    label=LABELS[prefix])
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        # Epochs are whole numbers; min_n_ticks=1 keeps a lone epoch at one integer tick instead
        # of the fractional ones the locator falls back to below two integers in view.
        ax.xaxis.set_major_locator(MaxNLocator(nbins="auto", integer=True, min_n_ticks=1))
        if len(set(epochs)) < 2:
            first = epochs[0] if epochs else 0
            ax.set_xlim(first - 0.5, first + 0.5)
        ax.tick_params(labelsize=9)
        ax.grid(True, color="0.9", linewidth=0.8)
        ax.set_axisbelow(True)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper right", bbox_to_anchor=(0.985, 1.0), ncol=2, frameon=False)
    if title:
        fig.text(0.105, 0.955, title, ha="left", va="center")
    return fig


def learning_curve_png(history: Sequence[EpochRecord], path: str | Path, title: str = "") -> Path:
    """Write `learning_curve_figure(history, title)` to `path` as a PNG; returns the path."""
    path = Path(path)
    fig = learning_curve_figure(history, title)
    fig.savefig(path, format="png", dpi=DPI)
    return path


def learning_curve_bytes(history: Sequence[EpochRecord], title: str = "") -> bytes:
    """`learning_curve_figure(history, title)` as PNG bytes: what a run's learning_curves.png holds."""
    buffer = io.BytesIO()
    learning_curve_figure(history, title).savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()
