"""`mlflow-tune report`: one HTML page and its plots for a search, read back from MLflow."""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlflow_tune.reports.curves import learning_curve_png
from mlflow_tune.tracking.runs import TAG, RunLogger, trial_runs
from mlflow_tune.training.callbacks import EPOCH_METRICS, EpochRecord
from mlflow_tune.training.config import ConfigError

COLOURS = {"healthy": "#2a9d8f", "underfit": "#e9c46a", "overfit": "#f4a261", "nonconvergent": "#e76f51"}


@dataclass(frozen=True)
class TrialRow:
    run_id: str
    trial: int
    stage: str
    outcome: str
    objective: float | None
    diagnosis: str
    advice: str
    params: dict[str, str]


def _rows(runs: list[Any], searched: list[str]) -> list[TrialRow]:
    rows = []
    for run in runs:
        tags, metrics = run.data.tags, run.data.metrics
        if tags.get(TAG + "role") != "trial":
            continue
        rows.append(TrialRow(run.info.run_id, int(tags.get(TAG + "trial", -1)), tags.get(TAG + "stage", ""),
                             tags.get(TAG + "outcome", run.info.status.lower()), metrics.get("objective"),
                             tags.get(TAG + "diagnosis", ""), tags.get(TAG + "advice", ""),
                             {k: run.data.params.get(k, "") for k in searched}))
    return sorted(rows, key=lambda r: r.trial)


def _searched(parent: Any) -> list[str]:
    return sorted(k[len("space."):] for k in parent.data.params if k.startswith("space."))


def _plot_trials(rows: list[TrialRow], mode: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3.4), constrained_layout=True)
    best, line = math.inf if mode == "min" else -math.inf, []
    for r in rows:
        if r.objective is not None:
            ax.scatter(r.trial, r.objective, color=COLOURS.get(r.diagnosis, "#888"),
                       marker="x" if r.outcome == "pruned" else "o", zorder=3)
            best = min(best, r.objective) if mode == "min" else max(best, r.objective)
        line.append(best if math.isfinite(best) else math.nan)
    ax.plot([r.trial for r in rows], line, color="#264653", label="best so far")
    for label, colour in COLOURS.items():
        ax.scatter([], [], color=colour, label=label)
    ax.set_xlabel("trial (x = pruned)")
    ax.set_ylabel("objective")
    if mode == "min":
        ax.set_yscale("log")
    ax.legend(fontsize=7, ncol=5, loc="upper right")
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _log_scaled(parent: Any) -> set[str]:
    """Parameters the space searched on a log scale (plotted on one too)."""
    out = set()
    for key, value in parent.data.params.items():
        if key.startswith("space.") and any(k in value for k in ("loguniform", "logint")):
            out.add(key[len("space."):])
    return out


def _plot_params(rows: list[TrialRow], names: list[str], log_names: set[str], mode: str, path: Path) -> None:
    """Objective against each searched parameter: where the good region is, at a glance."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.ticker import NullFormatter

    cols = min(3, max(1, len(names)))
    nrows = math.ceil(len(names) / cols) or 1
    fig, axes = plt.subplots(nrows, cols, figsize=(3.2 * cols, 2.6 * nrows), squeeze=False,
                             constrained_layout=True)
    for ax, name in zip(axes.flat, names, strict=False):
        xs, ys, cs = [], [], []
        for r in rows:
            if r.objective is not None:
                xs.append(r.params.get(name, ""))
                ys.append(r.objective)
                cs.append(COLOURS.get(r.diagnosis, "#888"))
        numeric = all(_is_number(x) for x in xs)
        values = [float(x) for x in xs] if numeric else xs
        ax.scatter(values, ys, c=cs, s=18)
        if numeric and name in log_names:
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())   # minor labels collide on short decades
        if mode == "min" and ys and min(ys) > 0:
            ax.set_yscale("log")
        ax.set_title(name, fontsize=9)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _history(client: Any, run_id: str) -> list[EpochRecord]:
    series = {k: {m.step: m.value for m in client.get_metric_history(run_id, k)} for k in EPOCH_METRICS}
    steps = sorted(series["train_loss"])
    return [EpochRecord(s, *(series[k].get(s, math.nan) for k in EPOCH_METRICS)) for s in steps]


def write_report(client: Any, parent_run_id: str, out_dir: Path, log_to_run: bool = True) -> Path:
    """Write index.html and PNG plots to `out_dir` (and log them to the search run); returns the page."""
    from mlflow.exceptions import MlflowException

    try:
        parent = client.get_run(parent_run_id)
    except MlflowException:
        raise ConfigError(f"run {parent_run_id!r} does not exist in this tracking store.") from None
    if parent.data.tags.get(TAG + "role") != "search":
        raise ConfigError(f"run {parent_run_id!r} is not a search run (tag {TAG}role=search).")
    names = _searched(parent)
    rows = _rows(trial_runs(client, parent.info.experiment_id, parent_run_id), names)
    mode = parent.data.params.get("search.mode", "min")
    out_dir.mkdir(parents=True, exist_ok=True)
    _plot_trials(rows, mode, out_dir / "trials.png")
    _plot_params(rows, names, _log_scaled(parent), mode, out_dir / "params.png")
    best_id = parent.data.tags.get(TAG + "best_run_id", "")
    if best_id:
        learning_curve_png(_history(client, best_id), out_dir / "best_learning_curves.png", "best trial")
    page = out_dir / "index.html"
    page.write_text(_html(parent, rows, names, best_id, mode))
    if log_to_run:
        run = RunLogger(client, parent_run_id)
        for file in sorted(out_dir.iterdir()):
            run.log_file(file, "report")
    return page


def _html(parent: Any, rows: list[TrialRow], names: list[str], best_id: str, mode: str) -> str:
    e = html.escape
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.outcome] = counts.get(r.outcome, 0) + 1
        if r.diagnosis:
            counts[r.diagnosis] = counts.get(r.diagnosis, 0) + 1
    ranked = sorted(rows, key=lambda r: (r.objective is None,
                                         (r.objective or 0.0) * (1 if mode == "min" else -1)))
    head = "".join(f"<th>{e(h)}</th>" for h in ["trial", "stage", "outcome", "objective", "diagnosis",
                                                 *names, "advice"])
    body = []
    for r in ranked:
        style = ' class="best"' if r.run_id == best_id else ""
        objective = "" if r.objective is None else f"{r.objective:.4g}"
        cells = [*(e(c) for c in (str(r.trial), r.stage, r.outcome, objective)),
                 f'<span style="color:{COLOURS.get(r.diagnosis, "#555")}">{e(r.diagnosis)}</span>',
                 *(e(r.params.get(n, "")) for n in names), e(r.advice)]
        body.append(f"<tr{style}>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    summary = ", ".join(f"{v} {e(k)}" for k, v in counts.items())
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>mlflow-tune search {e(parent.info.run_id)}</title>
<style>body{{font-family:sans-serif;margin:2em;color:#222}}table{{border-collapse:collapse;font-size:13px}}
td,th{{border:1px solid #ddd;padding:3px 6px}}tr.best{{background:#e8f6f3;font-weight:bold}}
img{{max-width:100%;margin:1em 0}}</style></head><body>
<h1>Search {e(parent.info.run_name or "")} <small>{e(parent.info.run_id)}</small></h1>
<p>{len(rows)} trials: {summary}. Objective: {e(parent.data.params.get("search.metric", "val_loss"))}
({e(mode)}). Best run: <code>{e(best_id) or "none"}</code>.</p>
<img src="trials.png" alt="objective per trial"><img src="params.png" alt="objective per parameter">
{'<img src="best_learning_curves.png" alt="learning curves of the best trial">' if best_id else ""}
<h2>Trials, best first</h2><table><tr>{head}</tr>{"".join(body)}</table>
<script type="application/json" id="trials">{e(json.dumps([r.__dict__ for r in rows]))}</script>
</body></html>
"""
