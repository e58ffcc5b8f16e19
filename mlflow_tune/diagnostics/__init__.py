"""Label runs healthy, underfit, overfit or nonconvergent from their curves, with advice.

- ``curves``: the curves read and the :class:`Diagnosis` returned; ``verdict``: :func:`diagnose`
  and the cheap per-epoch :func:`early_verdict`; ``rules``: the measurements; ``advice``: the fixes.
- ``guard``: the live guard, a training callback; ``runs``: diagnosis of runs read back from MLflow.

Pure: importing this package imports neither torch nor mlflow.
"""

from mlflow_tune.diagnostics.curves import LABELS, Curves, Diagnosis, advice_line
from mlflow_tune.diagnostics.verdict import diagnose, early_verdict

__all__ = ["LABELS", "Curves", "Diagnosis", "advice_line", "diagnose", "early_verdict"]
