"""The learning-curve figure: round ticks, a valid PNG, broken lines where values are not finite."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from PIL import Image

from mlflow_tune.reports.curves import HEIGHT, WIDTH, learning_curve_png, nice_ticks
from mlflow_tune.training.callbacks import EpochRecord


def record(epoch: int, loss: float, accuracy: float) -> EpochRecord:
    return EpochRecord(epoch, loss, loss * 1.1, accuracy, accuracy * 0.9, 0.01, 1.0, 0.1)


@pytest.mark.parametrize(("low", "high", "integer", "expected"), [
    (0.0, 1.0, False, [0.0, 0.25, 0.5, 0.75, 1.0]),
    (0.0, 19.0, True, [0.0, 5.0, 10.0, 15.0, 20.0]),
    (0.93, 0.97, False, [0.93, 0.94, 0.95, 0.96, 0.97]),
    (0.0, 2.0, True, [0.0, 1.0, 2.0]),
])
def test_nice_ticks_are_round_and_cover_the_range(low: float, high: float, integer: bool,
                                                  expected: list[float]) -> None:
    ticks = nice_ticks(low, high, integer=integer)
    assert ticks == pytest.approx(expected)


def test_nice_ticks_of_a_flat_or_empty_range() -> None:
    flat = nice_ticks(0.5, 0.5)
    assert flat[0] < 0.5 < flat[-1]
    assert nice_ticks(math.nan, 1.0) == [0.0, 1.0]


def test_learning_curve_png(tmp_path: Path) -> None:
    history = [record(e, 2.3 / (e + 1), 0.1 + e * 0.04) for e in range(20)]
    path = learning_curve_png(history, tmp_path / "curves.png", title="run 1")
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size == (WIDTH, HEIGHT)
        colours = {c for _, c in image.getcolors(maxcolors=WIDTH * HEIGHT)}
    assert (31, 119, 180) in colours and (255, 127, 14) in colours   # train and validation lines


def test_learning_curve_png_survives_nan_inf_and_one_epoch(tmp_path: Path) -> None:
    diverged = [record(0, 2.3, 0.1), record(1, math.inf, 0.1), record(2, math.nan, math.nan)]
    for name, history in (("diverged", diverged), ("one", diverged[:1]), ("none", [])):
        with Image.open(learning_curve_png(history, tmp_path / f"{name}.png")) as image:
            assert image.size == (WIDTH, HEIGHT)
