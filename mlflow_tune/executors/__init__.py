"""Where trials run: inline, a long-lived pool of worker processes, or threads (MLflow Project trials).

- ``local``: the executors, one small interface (``submit``, ``abort``, ``close``), and ``make_executor``.
- ``pool``: the worker processes, forked once from a preloaded fork server and reused.
"""
