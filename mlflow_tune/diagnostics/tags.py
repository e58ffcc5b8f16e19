"""A diagnosis as the MLflow tags the UI filters on: label, detail, evidence and the advice in words."""

from __future__ import annotations

from mlflow_tune.diagnostics.curves import Diagnosis, advice_line
from mlflow_tune.tracking.runs import TAG


def diagnosis_tags(diagnosis: Diagnosis | None) -> dict[str, str]:
    if diagnosis is None:
        return {}
    return {TAG + "diagnosis": diagnosis.label, TAG + "diagnosis.detail": diagnosis.detail,
            TAG + "diagnosis.evidence": diagnosis.evidence[:500], TAG + "advice": advice_line(diagnosis)}
