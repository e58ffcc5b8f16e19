"""The learning-curve figure: its plotted data, labels and legend placement, and a valid PNG."""

from __future__ import annotations

import math
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image

from mlflow_tune.reports.curves import learning_curve_bytes, learning_curve_figure, learning_curve_png
from mlflow_tune.training.records import EpochRecord

SIZE = (720, 272)


def record(epoch: int, loss: float, accuracy: float) -> EpochRecord:
    return EpochRecord(epoch, loss, loss * 1.1, accuracy, accuracy * 0.9, 0.01, 1.0, 0.1)


def twenty_epochs() -> list[EpochRecord]:
    return [record(e, 2.3 / (e + 1), 0.1 + e * 0.04) for e in range(20)]


def series(fig: Figure) -> dict[tuple[str, str], tuple[np.ndarray, np.ndarray]]:
    """(y label, line label) -> (x, y) of every line drawn."""
    return {(ax.get_ylabel(), str(line.get_label())): (np.asarray(line.get_xdata(), float),
                                                       np.asarray(line.get_ydata(), float))
            for ax in fig.axes for line in ax.get_lines()}


def test_panels_plot_train_and_validation_per_epoch() -> None:
    history = twenty_epochs()
    fig = learning_curve_figure(history, "run 1")
    assert [(ax.get_xlabel(), ax.get_ylabel()) for ax in fig.axes] == [("epoch", "loss"), ("epoch", "accuracy")]
    lines = series(fig)
    assert set(lines) == {(m, s) for m in ("loss", "accuracy") for s in ("train", "validation")}
    epochs = [r.epoch for r in history]
    for metric in ("loss", "accuracy"):
        for name, prefix in (("train", "train"), ("validation", "val")):
            x, y = lines[(metric, name)]
            np.testing.assert_array_equal(x, epochs)
            np.testing.assert_array_equal(y, [getattr(r, f"{prefix}_{metric}") for r in history])
    assert [t.get_text() for t in fig.texts] == ["run 1"]


def test_train_and_validation_differ_in_colour_and_marker() -> None:
    train, validation = learning_curve_figure(twenty_epochs()).axes[0].get_lines()
    assert train.get_color() != validation.get_color()
    assert train.get_marker() != validation.get_marker()


def test_non_finite_values_break_the_line_as_nan() -> None:
    history = [record(0, 2.3, 0.1), record(1, math.inf, 0.2), record(2, math.nan, math.nan), record(3, 1.0, 0.5)]
    lines = series(learning_curve_figure(history))
    np.testing.assert_array_equal(lines[("loss", "train")][1], [2.3, math.nan, math.nan, 1.0])
    np.testing.assert_array_equal(lines[("loss", "validation")][1], [2.3 * 1.1, math.nan, math.nan, 1.1])
    np.testing.assert_array_equal(lines[("accuracy", "train")][1], [0.1, 0.2, math.nan, 0.5])
    for ax in learning_curve_figure(history).axes:
        assert all(math.isfinite(v) for v in ax.get_ylim())   # inf did not reach the autoscale


def test_legend_is_outside_the_data_area() -> None:
    fig = learning_curve_figure(twenty_epochs(), "a title")
    fig.canvas.draw()   # places the legend and title in pixels
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == ["train", "validation"]
    box = legend.get_window_extent()
    title = fig.texts[0].get_window_extent()
    for ax in fig.axes:
        assert not box.overlaps(ax.get_window_extent())
        assert not title.overlaps(ax.get_window_extent())
    assert not box.overlaps(title)


@pytest.mark.parametrize("epochs", [0, 1])
def test_empty_and_one_epoch_histories(epochs: int) -> None:
    fig = learning_curve_figure(twenty_epochs()[:epochs])
    for x, _ in series(fig).values():
        assert len(x) == epochs
    for ax in fig.axes:   # integer epoch ticks around the lone epoch, not fractions of one
        low, high = ax.get_xlim()
        assert [t for t in ax.get_xticks() if low <= t <= high] == [0]


@pytest.mark.parametrize("name", ["twenty", "diverged", "one", "none"])
def test_learning_curve_png_is_a_png_of_the_expected_size(tmp_path: Path, name: str) -> None:
    diverged = [record(0, 2.3, 0.1), record(1, math.inf, 0.1), record(2, math.nan, math.nan)]
    history = {"twenty": twenty_epochs(), "diverged": diverged, "one": diverged[:1], "none": []}[name]
    path = learning_curve_png(history, str(tmp_path / f"{name}.png"), title=name)
    assert path == tmp_path / f"{name}.png"
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size == SIZE


def test_figures_drawn_from_threads_at_once(tmp_path: Path) -> None:
    # trials in threads and `train` runs may draw at once; figures share no state, so concurrent ones are whole
    with ThreadPoolExecutor(4) as pool:
        paths = list(pool.map(lambda i: learning_curve_png(twenty_epochs(), tmp_path / f"{i}.png"), range(8)))
    for path in paths:
        with Image.open(path) as image:
            image.load()
            assert image.size == SIZE


def test_does_not_use_pyplot(tmp_path: Path) -> None:
    # pyplot's figure registry is global state; a fresh process shows whether drawing pulls it in
    code = ("import sys; from mlflow_tune.reports.curves import learning_curve_png; "
            f"learning_curve_png([], {str(tmp_path / 'x.png')!r}); print('matplotlib.pyplot' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_the_bytes_are_the_png_the_file_holds(tmp_path: Path) -> None:
    # what `train` hands the writer for learning_curves.png is the same picture as the file form
    history = twenty_epochs()
    assert learning_curve_bytes(history, "t") == learning_curve_png(history, tmp_path / "x.png", "t").read_bytes()


def test_importing_the_module_loads_no_matplotlib() -> None:
    # a trial's runner and `train` take learning_curve_bytes at start-up; most trials never draw
    code = "import sys; import mlflow_tune.reports.curves; print('matplotlib' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
