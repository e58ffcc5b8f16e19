"""The search report's figures: each one's data computed apart from its drawing, so tests check the data.

Colours are Okabe-Ito's colour-blind-safe set, and each diagnosis has its own marker too, so colour
is never the only cue. Legends sit in a band right of the axes, never over data. The object API
(`Figure` + Agg canvas), never pyplot: nothing global, safe in any thread.
"""

from __future__ import annotations

import base64
import io
import itertools
import math
from dataclasses import dataclass

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

from mlflow_tune.reports.data import SearchData, TrialRow

# Okabe & Ito (2008): distinguishable with any common colour-vision deficiency.
COLOURS = {"healthy": "#009E73", "underfit": "#0072B2", "overfit": "#E69F00", "nonconvergent": "#D55E00",
           "unknown": "#CC79A7", "": "#999999"}
MARKERS = {"healthy": "o", "underfit": "s", "overfit": "^", "nonconvergent": "D", "unknown": "v", "": "o"}
LABELS = {"": "not diagnosed"}
DPI = 96
LEGEND = {"loc": "upper left", "bbox_to_anchor": (1.01, 1.0), "frameon": False, "fontsize": 8}


def colour(diagnosis: str) -> str:
    return COLOURS.get(diagnosis, COLOURS[""])


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def png_base64(fig: Figure) -> str:
    out = io.BytesIO()
    # tight: the canvas grows to hold a legend beside the axes (a fixed margin cut "nonconvergent (pruned)")
    fig.savefig(out, format="png", dpi=DPI, bbox_inches="tight", pad_inches=0.1)
    return base64.b64encode(out.getvalue()).decode("ascii")


def is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


# --- optimisation history -------------------------------------------------------------------------

@dataclass(frozen=True)
class History:
    trials: list[int]
    objective: list[float]          # nan where a trial has none (failed)
    pruned: list[bool]
    diagnosis: list[str]
    best_so_far: list[float]        # after each trial, in trial order; nan before the first result
    boundaries: list[tuple[int, str]]   # (first trial of a stage, stage name), stages after the first


def history_data(data: SearchData) -> History:
    rows = data.rows
    best, line = math.nan, []
    for r in rows:
        if r.objective is not None and r.outcome != "failed":
            better = math.isnan(best) or (r.objective < best if data.mode == "min" else r.objective > best)
            best = r.objective if better else best
        line.append(best)
    names = {s.index: s.name for s in data.stages}
    bounds = []
    for prev, r in itertools.pairwise(rows):
        if r.stage != prev.stage:
            bounds.append((r.trial, names.get(r.stage, f"stage {r.stage + 1}")))
    return History([r.trial for r in rows], [math.nan if r.objective is None else r.objective for r in rows],
                   [r.outcome == "pruned" for r in rows], [r.diagnosis for r in rows], line, bounds)


def log_axis(ax: Axes, which: str, values: list[float]) -> None:
    """A log axis labelled 0.2, 1, 50 (matplotlib's default 6x10^-1 minor labels crowd each other);
    over more than two decades, powers of ten only."""
    (ax.set_xscale if which == "x" else ax.set_yscale)("log")
    axis = ax.xaxis if which == "x" else ax.yaxis
    positive = [v for v in values if math.isfinite(v) and v > 0]
    wide = bool(positive) and max(positive) / min(positive) > 100
    axis.set_major_locator(LogLocator(base=10, subs=(1.0,) if wide else (1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def _log_y(values: list[float], mode: str) -> bool:
    finite = [v for v in values if math.isfinite(v)]
    return mode == "min" and bool(finite) and min(finite) > 0 and max(finite) / min(finite) > 20


def history_figure(h: History, metric: str, mode: str) -> Figure:
    fig = _figure(9.0, 3.4)
    fig.subplots_adjust(left=0.08, right=0.8, bottom=0.15, top=0.92)
    ax = fig.add_subplot()
    for diagnosis in dict.fromkeys(h.diagnosis):
        for pruned in (False, True):
            idx = [i for i, (d, p) in enumerate(zip(h.diagnosis, h.pruned, strict=True))
                   if d == diagnosis and p == pruned]
            if idx:
                kind = LABELS.get(diagnosis, diagnosis) + (" (pruned)" if pruned else "")
                ax.scatter([h.trials[i] for i in idx], [h.objective[i] for i in idx], s=28, zorder=3,
                           marker="x" if pruned else MARKERS.get(diagnosis, "o"), color=colour(diagnosis),
                           label=kind)
    ax.step(h.trials, h.best_so_far, where="post", color="black", linewidth=1.4, label="best so far")
    for first, name in h.boundaries:
        ax.axvline(first - 0.5, color="0.4", linestyle="--", linewidth=1)
        ax.annotate(name, (first - 0.5, 1.0), xycoords=("data", "axes fraction"), fontsize=7, rotation=90,
                    ha="right", va="top", color="0.3")
    ax.set_xlabel("trial")
    ax.set_ylabel(f"{metric} ({mode})")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if _log_y(h.objective, mode):
        log_axis(ax, "y", h.objective)
    ax.grid(True, color="0.92")
    ax.legend(**LEGEND)
    return fig


# --- learning curves --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Curve:
    trial: int
    diagnosis: str
    steps: list[int]
    values: list[float]


def curves_data(data: SearchData, metric: str) -> list[Curve]:
    out = []
    for r in data.rows:
        points = sorted(data.curves.get(r.run_id, {}).get(metric, []))
        if points:
            out.append(Curve(r.trial, r.diagnosis, [s for s, _ in points], [v for _, v in points]))
    return out


def curves_figure(panels: dict[str, list[Curve]]) -> Figure:
    fig = _figure(9.0, 3.2)
    fig.subplots_adjust(left=0.08, right=0.8, bottom=0.16, top=0.9, wspace=0.28)
    axes = fig.subplots(1, max(1, len(panels)), squeeze=False)[0]
    seen: dict[str, Line2D] = {}
    for ax, (metric, curves) in zip(axes, panels.items(), strict=False):
        for c in curves:
            (line,) = ax.plot(c.steps, [v if math.isfinite(v) else math.nan for v in c.values],
                              color=colour(c.diagnosis), linewidth=1.1, alpha=0.8,
                              marker=MARKERS.get(c.diagnosis, "o"), markersize=2.5)
            seen.setdefault(c.diagnosis, line)
        ax.set_title(metric, fontsize=9)
        ax.set_xlabel("epoch (step)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        values = [v for c in curves for v in c.values]
        if _log_y(values, "min"):
            log_axis(ax, "y", values)
        ax.grid(True, color="0.92")
    order = [d for d in COLOURS if d in seen]
    fig.legend([seen[d] for d in order], [LABELS.get(d, d) for d in order], loc="upper left",
               bbox_to_anchor=(0.81, 0.9), frameon=False, fontsize=8)
    return fig


# --- objective against each parameter ----------------------------------------------------------------

@dataclass(frozen=True)
class ParamPoints:
    name: str
    numeric: bool
    log: bool
    x: list[float] | list[str]
    y: list[float]
    diagnosis: list[str]


def _scored(rows: list[TrialRow]) -> list[TrialRow]:
    return [r for r in rows if r.objective is not None and r.outcome != "failed"]


def param_data(data: SearchData) -> list[ParamPoints]:
    out = []
    for name in data.names:
        rows = [r for r in _scored(data.rows) if name in r.params]
        texts = [r.params[name] for r in rows]
        numeric = bool(texts) and all(is_number(t) for t in texts)
        x: list[float] | list[str] = [float(t) for t in texts] if numeric else texts
        log = numeric and name in data.log_names and all(float(t) > 0 for t in texts)
        out.append(ParamPoints(name, numeric, log, x, [r.objective or 0.0 for r in rows],
                               [r.diagnosis for r in rows]))
    return out


def param_figure(points: list[ParamPoints], metric: str, mode: str) -> Figure:
    cols = min(3, max(1, len(points)))
    nrows = max(1, math.ceil(len(points) / cols))
    fig = _figure(3.0 * cols + 0.5, 2.5 * nrows + 0.3)
    fig.subplots_adjust(left=0.1, right=0.97, bottom=0.14 / nrows, top=1 - 0.1 / nrows, wspace=0.35,
                        hspace=0.55)
    axes = fig.subplots(nrows, cols, squeeze=False)
    for ax, p in zip(axes.flat, points, strict=False):
        if p.numeric:
            ax.scatter(p.x, p.y, c=[colour(d) for d in p.diagnosis], s=16)
        else:   # categories in first-seen order along the axis
            cats = list(dict.fromkeys(p.x))
            ax.scatter([cats.index(v) for v in p.x], p.y, c=[colour(d) for d in p.diagnosis], s=16)
            ax.set_xticks(range(len(cats)), [str(c)[:12] for c in cats], fontsize=8)
        if p.log:
            log_axis(ax, "x", [float(v) for v in p.x])
        if _log_y(p.y, mode):
            log_axis(ax, "y", p.y)
        ax.set_xlabel(p.name + (" (log)" if p.log else ""), fontsize=9)
        ax.set_ylabel(metric, fontsize=8)
        ax.tick_params(labelsize=8)
        ax.grid(True, color="0.92")
    for ax in list(axes.flat)[len(points):]:
        ax.axis("off")
    return fig
