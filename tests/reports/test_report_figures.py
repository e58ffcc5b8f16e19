"""The report's figures checked on their data (not pixels), and the page's self-containment."""

from __future__ import annotations

import math
import random
import re
from typing import Any

from mlflow_tune.reports.analysis import importance_data, parallel_data, parallel_figure
from mlflow_tune.reports.data import SearchData, StageInfo, TrialRow
from mlflow_tune.reports.figures import (
    COLOURS,
    curves_data,
    curves_figure,
    history_data,
    history_figure,
    param_data,
    param_figure,
    png_base64,
)
from mlflow_tune.reports.html import render


def plt_image(encoded: str) -> Any:
    """The PNG's pixels (rows, columns, channels), decoded by matplotlib."""
    import base64
    import io

    from matplotlib.image import imread

    return imread(io.BytesIO(base64.b64decode(encoded)), format="png")

DIAGNOSES = ("healthy", "underfit", "overfit", "nonconvergent")


def synthetic(n: int = 12, staged: bool = True) -> SearchData:
    """Trials whose objective depends on lr only (units is noise): importance must find that."""
    rng = random.Random(0)
    rows, curves = [], {}
    for i in range(n):
        lr = 10 ** rng.uniform(-4, 0)
        units = rng.choice([16, 64, 128])
        objective = (math.log10(lr) + 2) ** 2 + 0.1
        outcome = "failed" if i == 5 else "pruned" if i in (3, 7) else "completed"
        run_id = f"run{i:02d}"
        rows.append(TrialRow(run_id, i, int(staged and i >= n // 2), outcome,
                             None if outcome == "failed" else objective, DIAGNOSES[i % 4], f"advice {i}",
                             {"lr": repr(lr), "units": str(units)}, {"test_accuracy": 0.9}, f"trial-{i:02d}"))
        if outcome != "failed":
            curves[run_id] = {"val_loss": [(s, objective + 1 / (s + 1)) for s in range(4)],
                              "train_loss": [(s, 1 / (s + 1)) for s in range(4)]}
    stages = [StageInfo(0, "stage 1/2 random 30% data 2 epochs", {"lr": '{"loguniform": [0.0001, 1]}'}, []),
              StageInfo(1, "stage 2/2 retrain top 1 x 2 seeds", {},
                        [{"params": {"lr": 0.01}, "seeds": 2, "mean": 0.2, "std": 0.01}])] if staged else []
    return SearchData("parent", "7", "search random digits-mlp", "val_loss", "min", ["lr", "units"], {"lr"},
                      rows, stages, curves, "run04", "stages_done", "note")


def test_history_marks_best_so_far_pruned_and_stage_boundaries() -> None:
    data = synthetic()
    h = history_data(data)
    assert h.trials == list(range(12))
    scored = [(r.trial, r.objective) for r in data.rows if r.objective is not None]
    for i, best in enumerate(h.best_so_far):
        assert best == min(o for t, o in scored if t <= i)
    assert [t for t, p in zip(h.trials, h.pruned, strict=True) if p] == [3, 7]
    assert math.isnan(h.objective[5])
    assert h.boundaries == [(6, "stage 2/2 retrain top 1 x 2 seeds")]
    fig = history_figure(h, "val_loss", "min")
    ax = fig.axes[0]
    step = next(line for line in ax.lines if line.get_label() == "best so far")
    assert list(step.get_ydata()) == h.best_so_far
    assert [line.get_xdata()[0] for line in ax.lines if line.get_linestyle() == "--"] == [5.5]
    labels = {t.get_text() for t in ax.get_legend().get_texts()}
    assert {"healthy", "nonconvergent (pruned)", "best so far"} <= labels
    # the legend sits right of the axes, never over the data
    fig.canvas.draw()
    assert ax.get_legend().get_window_extent().x0 >= ax.get_window_extent().x1
    # and the saved image holds all of it: "nonconvergent (pruned)" was cut at the figure's edge
    legend = ax.get_legend().get_window_extent()
    assert legend.x1 > fig.bbox.x1   # wider than the figure as drawn: only a tight save keeps it
    image = plt_image(png_base64(fig))
    # a tight save spans the drawn artists plus 0.1 in each side: the legend's right end must be in it
    tight, pad = fig.get_tightbbox(), 0.1 * fig.dpi
    assert image.shape[1] >= legend.x1 - tight.x0 * fig.dpi + 2 * pad - 1, (image.shape, legend, tight)


def test_learning_curves_are_coloured_by_diagnosis() -> None:
    data = synthetic()
    curves = curves_data(data, "val_loss")
    assert [c.trial for c in curves] == [0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 11]   # the failed trial has none
    assert curves[1].steps == [0, 1, 2, 3] and curves[1].diagnosis == "underfit"
    fig = curves_figure({"val_loss": curves, "train_loss": curves_data(data, "train_loss")})
    lines = fig.axes[0].lines
    assert [line.get_color() for line in lines] == [COLOURS[c.diagnosis] for c in curves]
    assert list(lines[2].get_ydata()) == curves[2].values
    assert [t.get_text() for t in fig.legends[0].get_texts()] == list(DIAGNOSES)


def test_objective_against_each_parameter_uses_log_axes_for_log_parameters() -> None:
    data = synthetic()
    points = {p.name: p for p in param_data(data)}
    assert points["lr"].numeric and points["lr"].log and not points["units"].log
    assert len(points["lr"].x) == 11 and points["lr"].y == [r.objective for r in data.rows if r.objective]
    fig = param_figure(list(points.values()), "val_loss", "min")
    assert [ax.get_xscale() for ax in fig.axes[:2]] == ["log", "linear"]
    assert list(fig.axes[0].collections[0].get_offsets()[:, 0]) == points["lr"].x


def test_importance_finds_the_parameter_that_matters() -> None:
    imp = importance_data(synthetic(30, staged=False))
    assert imp is not None and imp.names[0] == "lr" and imp.scores[0] > 0.8
    assert abs(sum(imp.scores) - 1) < 1e-9
    assert importance_data(synthetic(3, staged=False)) is None   # too few trials to say


def test_parallel_coordinates_scale_every_axis() -> None:
    data = synthetic()
    p = parallel_data(data, "val_loss")
    assert p is not None and p.axes == ["lr", "units", "val_loss"]
    assert len(p.lines) == 11 and all(0 <= v <= 1 for line in p.lines for v in line)
    best = min(range(len(p.objective)), key=lambda i: p.objective[i])
    assert p.lines[best][-1] == 0.0   # the best trial at the bottom of the objective axis
    fig = parallel_figure(p, "min")
    assert len(fig.axes[0].lines) == 11 + 3   # a line per trial, a vertical rule per axis


def test_page_is_self_contained() -> None:
    page = render(synthetic(), "http://127.0.0.1:5000")
    sources = re.findall(r'src="([^"]*)"', page)
    assert len(sources) == 5 and all(s.startswith("data:image/png;base64,") for s in sources)
    assert "<link" not in page and "url(" not in page and "@import" not in page and "<iframe" not in page
    # its only links are to the trials' pages in the MLflow UI
    links = re.findall(r'href="([^"]*)"', page)
    assert len(links) == 12 and all(h.startswith("http://127.0.0.1:5000/#/experiments/7/runs/run") for h in links)
    assert not re.search(r"(src|href)=\"(?!data:|http://127\.0\.0\.1:5000/#/)", page)
    assert "stage 1/2 random 30% data 2 epochs" in page and "0.2" in page   # stages and retrain table
    assert page.index(">4</a>") < page.index(">0</a>")   # best first


def test_the_report_link_sits_under_the_heading_and_a_new_report_replaces_it() -> None:
    """MLflow folds a long run description behind "Show more": the link goes where it is seen."""
    from mlflow_tune.reports.html import with_report_link

    note = "### Search: 3 trials\n\n**Best trial:** 1\n\n**Trials:** 3 completed\n"
    once = with_report_link(note, "#/a")
    link = "**Report:** [report.html](#/a) (figures and every trial)"
    assert once.split("\n")[:3] == ["### Search: 3 trials", "", link]
    again = with_report_link(once, "#/b")
    assert again == once.replace("#/a", "#/b")   # replaced, no line or blank line added
