"""`mlflow-tune report`: one self-contained report.html for a search, logged on its run.

Self-contained because it is read in two places: opened from disk, and inside the MLflow UI's
artifact viewer, which serves one file at a time (a relative `<img src="trials.png">` breaks there).
Every figure is an embedded PNG (`data:` URI); the page loads nothing from the network. Its only
links are to the trials' pages in the MLflow UI.
"""

from __future__ import annotations

import html
import importlib
import json
import math
import threading
from pathlib import Path
from typing import Any

from mlflow_tune.reports.analysis import importance_data, importance_figure, parallel_data, parallel_figure
from mlflow_tune.reports.data import SearchData, read_search
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
from mlflow_tune.tracking.runs import RunLogger

REPORT_FILE = "report.html"
REPORT_HEADING = "**Report:**"   # the line of the search run's description that links here
STYLE = """body{font-family:system-ui,sans-serif;margin:1.5em 2em;color:#222;max-width:1200px}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ddd;padding:3px 6px;text-align:left}
tr.best{background:#e6f4ef;font-weight:600}img{max-width:100%;display:block;margin:.5em 0 1.5em}
h2{margin-top:1.6em;border-bottom:1px solid #eee}code{font-size:12px}.muted{color:#666}
td.advice{min-width:24em;max-width:36em;font-size:12px}.wide{overflow-x:auto;max-width:100%}.dot{display:inline-block;width:.7em;height:.7em;border-radius:50%;margin-right:.3em}"""


# MLflow's artifact viewer shows the report from a blob: URL in an iframe sandboxed to scripts only:
# no popup, no navigation out, so a run link there does nothing. There the links give way to the
# run ids they point to, and one line says where they work (the file itself, opened from disk).
IN_VIEWER = """if (location.protocol === "blob:" && window.top !== window.self) {
  document.querySelectorAll("a[data-run]").forEach(a => a.replaceWith(a.textContent + " (" + a.dataset.run + ")"));
  const note = document.createElement("p"); note.className = "muted";
  note.textContent = "Inside MLflow's artifact viewer links cannot open: each trial shows its run id; " +
    "open report.html from disk (or download it) to follow them.";
  document.querySelector("h1").after(note);
}"""


def _num(value: float | None) -> str:
    return "" if value is None or not math.isfinite(value) else f"{value:.4g}"


def _img(fig: Any, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{png_base64(fig)}">'


def figures(data: SearchData) -> list[tuple[str, str]]:
    """(section title, HTML) of each figure the search has data for."""
    out = [("Optimisation history", _img(history_figure(history_data(data), data.metric, data.mode),
                                         "objective per trial, best so far"))]
    panels = {m: curves_data(data, m) for m in dict.fromkeys((data.metric, "train_loss"))}
    panels = {m: c for m, c in panels.items() if c}
    if panels:
        out.append(("Learning curves, coloured by diagnosis", _img(curves_figure(panels), "learning curves")))
    if data.names:
        out.append(("Objective against each parameter",
                    _img(param_figure(param_data(data), data.metric, data.mode), "objective per parameter")))
    parallel = parallel_data(data, data.metric)
    drawn = None if parallel is None else _img(parallel_figure(parallel, data.mode), "parallel coordinates")
    importance = importance_data(data)   # last: by now scikit-learn is imported (see write_report)
    if importance is not None:
        out.append(("Parameter importance", _img(importance_figure(importance), "parameter importance")))
    if drawn is not None:
        out.append(("Parallel coordinates", drawn))
    return out


def _stages(data: SearchData) -> str:
    if not data.stages:
        return ""
    e = html.escape
    parts = ["<h2>Stages</h2><table><tr><th>stage</th><th>trials</th><th>space searched</th></tr>"]
    for s in data.stages:
        space = "<br>".join(f"<code>{e(k)}: {e(v)}</code>" for k, v in s.space.items())
        n = sum(1 for r in data.rows if r.stage == s.index)
        parts.append(f"<tr><td>{e(s.name)}</td><td>{n}</td><td>{space}</td></tr>")
    parts.append("</table>")
    for s in data.stages:
        if s.retrain:
            parts.append(f"<h3>Final retrain ({e(s.name)}): {e(data.metric)} over seeds</h3><table>"
                         "<tr><th>configuration</th><th>seeds</th><th>mean</th><th>spread (std)</th></tr>")
            for row in s.retrain:
                config = ", ".join(f"{k}={v}" for k, v in row["params"].items())
                parts.append(f"<tr><td><code>{e(config)}</code></td><td>{row['seeds']}</td>"
                             f"<td>{_num(row['mean'])}</td><td>{_num(row['std'])}</td></tr>")
            parts.append("</table>")
    return "".join(parts)


def _table(data: SearchData, ui_base: str) -> str:
    e = html.escape
    metric_names = sorted({k for r in data.rows for k in r.metrics})
    staged = bool(data.stages)
    # the advice beside its diagnosis, not after every param and metric: a wide search's table
    # scrolls sideways (in MLflow's artifact viewer too) and the advice stays in view
    head = ["trial", *(["stage"] if staged else []), "outcome", data.metric, "diagnosis", "advice", *data.names,
            *metric_names]
    sign = 1 if data.mode == "min" else -1
    ranked = sorted(data.rows, key=lambda r: (r.objective is None, sign * (r.objective or 0.0), r.trial))
    body = []
    for r in ranked:
        link = f"{ui_base}/#/experiments/{data.experiment_id}/runs/{r.run_id}"
        dot = f'<span class="dot" style="background:{COLOURS.get(r.diagnosis, COLOURS[""])}"></span>'
        cells = [f'<a href="{e(link)}" data-run="{e(r.run_id)}" target="_blank" rel="noopener">{r.trial}</a>',
                 *([str(r.stage + 1)] if staged else []),
                 e(r.outcome), _num(r.objective), dot + e(r.diagnosis) if r.diagnosis else "",
                 f'<td class="advice">{e(r.advice)}</td>',
                 *(e(r.params.get(n, "")) for n in data.names), *(_num(r.metrics.get(m)) for m in metric_names)]
        style = ' class="best"' if r.run_id == data.best_run_id else ""
        body.append(f"<tr{style}>" + "".join(c if c.startswith("<td") else f"<td>{c}</td>" for c in cells) + "</tr>")
    return (f"<h2>Trials, best first</h2><div class=\"wide\"><table><tr>"
            f"{''.join(f'<th>{e(h)}</th>' for h in head)}</tr>{''.join(body)}</table></div>")


def render(data: SearchData, ui_base: str) -> str:
    e = html.escape
    sections = "".join(f"<h2>{e(title)}</h2>{body}" for title, body in figures(data))
    payload = json.dumps([r.__dict__ for r in data.rows]).replace("</", "<\\/")
    best = next((r for r in data.rows if r.run_id == data.best_run_id), None)
    headline = (f"Best: trial {best.trial}, {e(data.metric)} {_num(best.objective)}" if best else "No result")
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{e(data.name or "search")} report</title><style>{STYLE}</style></head>
<body><h1>{e(data.name or "Search")}</h1><p class="muted">search run <code>{e(data.run_id)}</code></p>
<p><b>{headline}</b> ({data.trial_count()}, objective {e(data.metric)}, {e(data.mode)};
stopped by {e(data.stopped_by or "-")}).</p>
{sections}{_stages(data)}{_table(data, ui_base)}
<script type="application/json" id="trials">{payload}</script>
<script>{IN_VIEWER}</script>
</body></html>
"""


def with_report_link(note: str, link: str) -> str:
    """The search run's description with one line linking to the report (replacing an earlier one)."""
    kept = [line for line in note.rstrip("\n").split("\n") if not line.startswith(REPORT_HEADING)]
    # second, under the heading: above the fold of the run page, where the description is cut
    at = 1 if kept and kept[0].startswith("#") else 0
    lines = [*kept[:at], "", f"{REPORT_HEADING} [report.html]({link}) (figures and every trial)", "", *kept[at:]]
    return "\n".join(line for i, line in enumerate(lines) if line or (i and lines[i - 1])).strip("\n") + "\n"


def write_report(client: Any, parent_run_id: str, out_dir: Path, log_to_run: bool = True,
                 ui_base: str = "") -> Path:
    """Write `out_dir`/report.html (and log it on the search run, linking it from the run's
    description); returns its path. `ui_base`: the MLflow UI the trial links point to."""
    from mlflow_tune.tracking.runs import ui_base_url

    # scikit-learn's import (~1-2 s, most of it scipy) overlaps reading the runs and drawing the
    # other figures; the importance figure is drawn after them.
    sklearn = threading.Thread(target=importlib.import_module, args=("sklearn.ensemble",), daemon=True)
    sklearn.start()
    data = read_search(client, parent_run_id)
    out_dir.mkdir(parents=True, exist_ok=True)
    page = out_dir / REPORT_FILE
    page.write_text(render(data, ui_base or ui_base_url(str(client.tracking_uri))), encoding="utf-8")
    if log_to_run:
        run = RunLogger(client, parent_run_id)
        run.log_file(page)
        # workflowType: MLflow 3 would otherwise show the run among its GenAI pages
        link = (f"#/experiments/{data.experiment_id}/runs/{parent_run_id}/artifacts/{REPORT_FILE}"
                "?workflowType=machine_learning")
        run.set_tags({"mlflow.note.content": with_report_link(data.note, link)})
    return page
