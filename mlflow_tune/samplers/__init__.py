"""What to try next: ask/tell samplers over a ``config.space.Space``.

``suggester`` is the one interface the search loop calls (``Suggester.ask``/``tell``/``learn``),
over hyperopt's TPE, random and anneal, an exhaustive grid, and ``mtpe`` (Optuna's multivariate
TPE, ``mtpe.py``). Samplers hold no history of their own beyond what they are told: MLflow is
the record. May import ``config``; never the loop, executors, trials, tracking or torch.
"""
