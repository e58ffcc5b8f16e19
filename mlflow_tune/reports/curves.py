"""Learning curves of one run as a PNG: the figure every tuner looks at first.

Drawn with Pillow rather than matplotlib. The writer draws one for every run, and for a
20-epoch run matplotlib took ~90 ms per figure (most of it laying out and rendering tick
labels), a quarter of the run's training time; this takes ~15 ms. The figure is small and
fixed: two panels (loss, accuracy), train and validation per epoch, a few round ticks, a grid.
Lines are drawn at twice the size and scaled down, which smooths them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlflow_tune.training.callbacks import EpochRecord

WIDTH, HEIGHT = 720, 272        # pixels of the saved figure
_S = 2                          # supersampling factor
# matplotlib's default first two colours, so the figure reads like the MLflow UI's charts
TRAIN, VALIDATION = (31, 119, 180), (255, 127, 14)
INK, GRID = (40, 40, 40), (225, 225, 225)
_FONT_SIZE = 11


@dataclass(frozen=True)
class _Box:
    left: int
    top: int
    right: int
    bottom: int


def nice_ticks(low: float, high: float, count: int = 5, integer: bool = False) -> list[float]:
    """About `count` round values (1, 2, 2.5, 5 x 10^k steps) covering [low, high]."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return [0.0, 1.0]
    if high - low < 1e-12:
        pad = abs(low) * 0.05 or 0.5
        low, high = low - pad, high + pad
    raw = (high - low) / max(1, count - 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    if integer:
        step = max(1.0, round(step))
    first = math.floor(low / step) * step
    ticks: list[float] = []
    value = first
    while value <= high + step * 0.5 and len(ticks) < 4 * count:
        ticks.append(round(value, 12))
        value += step
    if ticks[-1] < high:
        ticks.append(round(value, 12))
    return ticks


def _label(value: float) -> str:
    return f"{value:.10g}" if abs(value) < 1e5 else f"{value:.2g}"


def _finite(values: Sequence[float]) -> list[float]:
    return [v for v in values if math.isfinite(v)]


class _Canvas:
    def __init__(self) -> None:
        from PIL import Image, ImageDraw, ImageFont

        self.image = Image.new("RGB", (WIDTH * _S, HEIGHT * _S), "white")
        self.draw = ImageDraw.Draw(self.image)
        self.font = ImageFont.load_default(size=_FONT_SIZE * _S)

    def text(self, xy: tuple[float, float], text: str, anchor: str) -> None:
        self.draw.text((xy[0] * _S, xy[1] * _S), text, fill=INK, font=self.font, anchor=anchor)

    def vertical_text(self, xy: tuple[float, float], text: str) -> None:
        from PIL import Image, ImageDraw

        left, top, right, bottom = (int(v) for v in self.font.getbbox(text))
        label = Image.new("RGB", (right - left + 2, bottom - top + 2), "white")
        ImageDraw.Draw(label).text((-left + 1, -top + 1), text, fill=INK, font=self.font)
        rotated = label.rotate(90, expand=True)
        self.image.paste(rotated, (int(xy[0] * _S - rotated.width / 2), int(xy[1] * _S - rotated.height / 2)))

    def line(self, points: list[tuple[float, float]], colour: tuple[int, int, int], width: float) -> None:
        self.draw.line([(x * _S, y * _S) for x, y in points], fill=colour, width=max(1, round(width * _S)))

    def marker(self, x: float, y: float, colour: tuple[int, int, int], square: bool) -> None:
        r = 2.2 * _S
        box = (x * _S - r, y * _S - r, x * _S + r, y * _S + r)
        (self.draw.rectangle if square else self.draw.ellipse)(box, fill=colour)

    def save(self, path: Path) -> None:
        self.image.reduce(_S).save(path, compress_level=1)


def _panel(canvas: _Canvas, box: _Box, epochs: list[int], series: list[tuple[list[float], Any, bool]],
           ylabel: str) -> None:
    ys = [v for values, _, _ in series for v in _finite(values)]
    xticks = nice_ticks(min(epochs, default=0), max(epochs, default=1), integer=True)
    yticks = nice_ticks(min(ys, default=0.0), max(ys, default=1.0))
    x0, x1, y0, y1 = xticks[0], xticks[-1], yticks[0], yticks[-1]

    def at(x: float, y: float) -> tuple[float, float]:
        return (box.left + (x - x0) / (x1 - x0) * (box.right - box.left),
                box.bottom - (y - y0) / (y1 - y0) * (box.bottom - box.top))

    for x in xticks:
        px = at(x, y0)[0]
        canvas.line([(px, box.top), (px, box.bottom)], GRID, 1)
        canvas.text((px, box.bottom + 4), _label(x), "mt")
    for y in yticks:
        py = at(x0, y)[1]
        canvas.line([(box.left, py), (box.right, py)], GRID, 1)
        canvas.text((box.left - 4, py), _label(y), "rm")
    canvas.line([(box.left, box.top), (box.right, box.top), (box.right, box.bottom), (box.left, box.bottom),
                 (box.left, box.top)], INK, 1)
    canvas.text(((box.left + box.right) / 2, box.bottom + 20), "epoch", "mt")
    canvas.vertical_text((box.left - 46, (box.top + box.bottom) / 2), ylabel)
    for values, colour, square in series:
        segment: list[tuple[float, float]] = []
        for epoch, value in [*zip(epochs, values, strict=True), (0, math.nan)]:
            if math.isfinite(value):   # a NaN or inf breaks the line, as in matplotlib
                segment.append(at(epoch, value))
                continue
            if len(segment) > 1:
                canvas.line(segment, colour, 1.5)
            for x, y in segment:
                canvas.marker(x, y, colour, square)
            segment = []


def learning_curve_png(history: Sequence[EpochRecord], path: str | Path, title: str = "") -> Path:
    """Loss and accuracy, train vs validation, per epoch, side by side."""
    canvas = _Canvas()
    epochs = [r.epoch for r in history]
    for box, key in ((_Box(62, 34, 340, 222), "loss"), (_Box(432, 34, 710, 222), "accuracy")):
        series = [([getattr(r, f"train_{key}") for r in history], TRAIN, False),
                  ([getattr(r, f"val_{key}") for r in history], VALIDATION, True)]
        _panel(canvas, box, epochs, series, key)
    if title:
        canvas.text((62, 16), title, "lm")
    for x, colour, square, name in ((520, TRAIN, False, "train"), (592, VALIDATION, True, "validation")):
        canvas.line([(x, 16), (x + 20, 16)], colour, 1.5)
        canvas.marker(x + 10, 16, colour, square)
        canvas.text((x + 25, 16), name, "lm")
    path = Path(path)
    canvas.save(path)
    return path
