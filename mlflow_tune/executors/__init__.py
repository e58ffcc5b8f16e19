"""Where trials run: inline, a long-lived pool of worker processes, threads (MLflow Project trials), Spark.

- ``local``: the executors, one small interface (``submit``, ``abort``, ``close``), and ``make_executor``.
- ``pool``: the worker processes, forked once from a preloaded fork server and reused.
- ``spark``: trials as Spark tasks; ``names``: the executor names the tune file validates.

An executor is handed a function and a ``trials.records.TrialSpec`` and returns its
``TrialOutcome``: it may import ``trials``, ``tracking`` and ``training``, never the search loop
(``study``) or the tune file (``config``).
"""
