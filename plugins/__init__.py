"""MLflow plugins of mlflow-tune, found by MLflow through entry points in pyproject.toml.

This folder is installed as the package ``mlflow_tune_plugins`` (one install: ``pip install -e .``):

- ``backend``: the project backend ``tune``: ``mlflow run PROJECT -e ENTRY --backend tune
  --backend-config tune.json`` runs a search over that entry point (group ``mlflow.project_backend``).
- ``context``: a run context provider that tags runs started inside a trial's process with the
  search's and the trial's ids (group ``mlflow.run_context_provider``).
- ``experiment``: a default experiment provider: `mlflow run` of a project that declares
  ``mlflow_tune: {experiment: NAME}`` in its MLproject logs there when no experiment is named
  (group ``mlflow.default_experiment_provider``).

Thin adapters: the search itself is ``mlflow_tune.study``.
"""
