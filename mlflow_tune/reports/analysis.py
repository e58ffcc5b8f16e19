"""The report's figures across parameters: parameter importance and parallel coordinates.

Both encode a trial's parameters the same way: numbers as they are (log10 for parameters searched
on a log scale), categories by their first-seen order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure

from mlflow_tune.reports.data import SearchData, TrialRow
from mlflow_tune.reports.figures import _figure, _log_y, is_number

MIN_TRIALS = 4   # fewer finished trials say nothing about importance


def _encoded(rows: list[TrialRow], name: str, log: bool) -> tuple[list[float], list[str]]:
    """Values of one parameter as numbers, and the category labels when it is categorical."""
    texts = [r.params.get(name, "") for r in rows]
    if texts and all(is_number(t) for t in texts):
        values = [float(t) for t in texts]
        if log and all(v > 0 for v in values):
            values = [math.log10(v) for v in values]
        return values, []
    cats = list(dict.fromkeys(texts))
    return [float(cats.index(t)) for t in texts], cats


def _finished(data: SearchData) -> list[TrialRow]:
    return [r for r in data.rows if r.objective is not None and r.outcome in ("completed", "pruned")]


@dataclass(frozen=True)
class Importance:
    names: list[str]        # most important first
    scores: list[float]     # impurity-based, summing to 1
    trials: int


def importance_data(data: SearchData, seed: int = 0) -> Importance | None:
    """A random forest (scikit-learn) fitted from the finished trials' parameters to their objective;
    its impurity importances say which parameters moved the objective. None below MIN_TRIALS trials or
    with nothing varying."""
    rows = _finished(data)
    names = [n for n in data.names if len({r.params.get(n, "") for r in rows}) > 1]
    if len(rows) < MIN_TRIALS or not names:
        return None
    from sklearn.ensemble import RandomForestRegressor

    columns = [_encoded(rows, n, n in data.log_names)[0] for n in names]
    x = [list(values) for values in zip(*columns, strict=True)]
    y = [r.objective or 0.0 for r in rows]
    forest = RandomForestRegressor(n_estimators=100, min_samples_leaf=2, random_state=seed, n_jobs=1)
    forest.fit(x, y)
    ranked = sorted(zip(names, (float(s) for s in forest.feature_importances_), strict=True),
                    key=lambda t: -t[1])
    return Importance([n for n, _ in ranked], [s for _, s in ranked], len(rows))


def importance_figure(imp: Importance) -> Figure:
    fig = _figure(6.0, 0.45 * len(imp.names) + 1.0)
    fig.subplots_adjust(left=0.25, right=0.95, bottom=0.8 / (0.45 * len(imp.names) + 1.0), top=0.95)
    ax = fig.add_subplot()
    ax.barh(list(reversed(imp.names)), list(reversed(imp.scores)), color="#0072B2")
    ax.set_xlabel(f"importance (random forest over {imp.trials} finished trials)", fontsize=8)
    ax.set_xlim(0, max(1e-9, max(imp.scores)) * 1.1)
    ax.tick_params(labelsize=8)
    return fig


@dataclass(frozen=True)
class Parallel:
    axes: list[str]                  # the parameters, then the objective
    lines: list[list[float]]         # per trial, each axis scaled to [0, 1]
    objective: list[float]           # per trial, for its colour
    ticks: list[list[tuple[float, str]]]   # per axis: (position, label) at its ends or categories


def parallel_data(data: SearchData, metric: str) -> Parallel | None:
    rows = _finished(data)
    if len(rows) < 2 or not data.names:
        return None
    columns, ticks = [], []
    for name in [*data.names, metric]:
        cats: list[str] = []
        if name == metric and name not in data.names:
            values = [r.objective or 0.0 for r in rows]
            if _log_y(values, data.mode):   # one diverged trial would squash the rest into a line
                values = [math.log10(v) for v in values]
        else:
            values, cats = _encoded(rows, name, name in data.log_names)
        low, high = min(values), max(values)
        span = (high - low) or 1.0
        columns.append([(v - low) / span for v in values])
        if cats:
            ticks.append([(i / span if high > low else 0.0, c[:12]) for i, c in enumerate(cats)])
        else:
            log = (name in data.log_names and name != metric) or (name == metric and _log_y(
                [r.objective or 0.0 for r in rows], data.mode))
            ticks.append([(0.0, _tick(low, log)), (1.0, _tick(high, log))] if high > low else
                         [(0.0, _tick(low, log))])
    lines = [list(t) for t in zip(*columns, strict=True)]
    return Parallel([*data.names, metric], lines, [r.objective or 0.0 for r in rows], ticks)


def _tick(value: float, log: bool) -> str:
    return f"{10 ** value:.2g}" if log else f"{value:.3g}"


def parallel_figure(p: Parallel, mode: str) -> Figure:
    fig = _figure(9.0, 3.6)
    fig.subplots_adjust(left=0.04, right=0.97, bottom=0.06, top=0.88)
    ax = fig.add_subplot()
    # Best trials drawn last (on top) in the darkest colour; viridis reads in grey and for colour-blind readers.
    low, high = min(p.objective), max(p.objective)
    norm = LogNorm(low, high) if low > 0 and _log_y(p.objective, mode) else Normalize(low, high)
    cmap = colormaps["viridis" if mode == "min" else "viridis_r"]
    order = sorted(range(len(p.lines)), key=lambda i: p.objective[i] * (-1 if mode == "min" else 1))
    xs = list(range(len(p.axes)))
    for i in order:
        ax.plot(xs, p.lines[i], color=cmap(norm(p.objective[i])), linewidth=1.2, alpha=0.85)
    for x, ticks in zip(xs, p.ticks, strict=True):
        ax.axvline(x, color="0.3", linewidth=0.8)
        for pos, label in ticks:
            ax.annotate(label, (x, pos), xytext=(3, 0), textcoords="offset points", fontsize=7, va="center")
    ax.set_xticks(xs, p.axes, fontsize=8)
    ax.xaxis.tick_top()
    ax.set_yticks([])
    ax.set_xlim(-0.2, len(xs) - 0.5)
    ax.set_ylim(-0.05, 1.05)
    for side in ("left", "right", "bottom", "top"):
        ax.spines[side].set_visible(False)
    bar = fig.colorbar(ScalarMappable(norm, cmap), ax=ax, fraction=0.025, pad=0.01)
    bar.set_label(p.axes[-1], fontsize=8)
    return fig
