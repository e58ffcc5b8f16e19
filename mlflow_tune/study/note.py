"""The search run's description in the MLflow UI (`mlflow.note.content`, Markdown): the result at a
glance on the run page, before anyone opens a table or a report."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlflow_tune.trials.naming import compact

# Fixed orders: counts read the same way in every summary, whatever finished first.
STATUSES = ("completed", "pruned", "nonconvergent", "failed", "interrupted")
DIAGNOSES = ("healthy", "underfit", "overfit", "nonconvergent", "unknown")
STOPS = {"max_trials": "the trial budget (max_trials) was used up", "timeout": "the time limit was reached",
         "no_progress": "no new best for no_progress (patience) trials in a row",
         "target": "the target objective was reached",
         "grid_exhausted": "every grid point was tried", "stages_done": "every stage ran",
         "interrupted": "it was interrupted", "error": "a trial found the search itself broken", "done": "done"}


def ordered_counts(counts: Mapping[str, int]) -> list[tuple[str, int]]:
    """(name, count) of trial outcomes then diagnoses, in a fixed order; zero counts left out."""
    out = [(s, counts[s]) for s in STATUSES if counts.get(s)]
    out += [(d, counts[f"diagnosis_{d}"]) for d in DIAGNOSES if counts.get(f"diagnosis_{d}")]
    out += sorted((k[len("diagnosis_"):], n) for k, n in counts.items()
                  if k.startswith("diagnosis_") and k[len("diagnosis_"):] not in DIAGNOSES)
    return out


def search_note(metric: str, mode: str, counts: Mapping[str, int], stopped_by: str, best: Any,
                best_metrics: Mapping[str, float]) -> str:
    """Markdown: best trial, its params, objective and test metrics, counts, what stopped the search."""
    # MLflow shows a run description's first few lines and folds the rest behind "Show more": the
    # best trial and the counts come first (one paragraph each), the best trial's metrics after them
    lines = [f"### Search: {counts.get('trials', 0)} trials, objective `{metric}` ({mode})", ""]
    shown: dict[str, float] = {}
    if best is None:
        lines += ["No trial produced a result.", ""]
    else:
        objective = "-" if best.objective is None else f"{best.objective:.4g}"
        params = ", ".join(f"{k}={compact(v)}" for k, v in best.params.items())
        lines += [f"**Best trial:** {best.tid}, objective **{objective}**, {params} (run `{best.run_id}`)", ""]
        shown = {k: v for k, v in best_metrics.items() if k.startswith("test_") or k.startswith("best_")}
    ordered = ordered_counts(counts)
    by_outcome = ", ".join(f"{n} {s}" for s, n in ordered[:sum(1 for s in STATUSES if counts.get(s))])
    by_diagnosis = ", ".join(f"{n} {d}" for d, n in ordered[sum(1 for s in STATUSES if counts.get(s)):])
    lines.append(f"**Trials:** {by_outcome or 'none'} · **Diagnoses:** {by_diagnosis or 'none'} · "
                 f"**Stopped because** {STOPS.get(stopped_by, stopped_by or 'it ended')}.")
    if shown:
        lines += ["", "**Metrics of the best trial:** " + ", ".join(f"{k} {v:.4g}" for k, v in shown.items())]
    return "\n".join(lines) + "\n"
