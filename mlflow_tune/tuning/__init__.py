"""What to try next and when to stop; runs a whole search as one MLflow parent run.

Named ``tuning`` rather than ``search``: ``mlflow_tune.search`` is the public ``search()``
function, and a subpackage of that name would replace it on the package once imported.

- ``space``, ``tunefile``, ``settings``, ``starter``: the YAML space and tune file, validated.
- ``samplers``, ``optuna_sampler``, ``pruners``: ask/tell over Optuna's TPE (mtpe) and hyperopt
  (tpe/random/anneal), and grid; median, ASHA, Hyperband, learning curve.
- ``trial``: one trial's spec, outcome and run; ``driver``: the loop that hands trials out.
- ``stages``, ``narrowing``: coarse to fine; ``study``: the search as a parent run.
- ``listener``: the protocol a search reports progress through (``cli/`` implements it).
"""
