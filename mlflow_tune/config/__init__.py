"""The tune file, validated: what a search is asked to do, before anything runs.

Owns the YAML tune file (``tunefile``), the search and stage settings (``settings``), the search
space and its YAML form (``space``, ``space_yaml``) and the spaces and files written from
experience (``starter``). Frozen records, validated on construction, errors that name the bad
value and the valid ones. May import ``training.config`` (the knobs a space ranges over), the
names the settings choose from (``pruners.make``, ``executors.names``) and, to resolve a user's
``objective: module:function``, ``trials.function``; never the search loop, MLflow or torch.
"""
