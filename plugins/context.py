"""Tags any run started inside a trial's process with the search's and the trial's ids.

A project's own script may start runs of its own (`mlflow.start_run()` nested or not); started
under a trial, they carry `mlflow_tune.search_run_id` and `mlflow_tune.trial`, so they are linked
to the search without a change to the script. The trial's process is told by two environment
variables that the search sets when it starts the trial (`trials/project.py`).
"""

from __future__ import annotations

import os

from mlflow.tracking.context.abstract_context import RunContextProvider

SEARCH_ENV, TRIAL_ENV = "MLFLOW_TUNE_SEARCH_RUN_ID", "MLFLOW_TUNE_TRIAL"


class TrialContext(RunContextProvider):  # type: ignore[misc]
    def in_context(self) -> bool:
        return bool(os.environ.get(SEARCH_ENV))

    def tags(self) -> dict[str, str]:
        return {"mlflow_tune.search_run_id": os.environ[SEARCH_ENV],
                "mlflow_tune.trial": os.environ.get(TRIAL_ENV, "")}
