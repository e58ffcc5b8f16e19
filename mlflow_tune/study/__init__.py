"""A whole search as one MLflow parent run: the loop that hands trials out, and its records.

``study`` sets a search up, resumes it and summarises it (``search``, ``optimize``); ``staged``
runs a staged search, one run per stage; ``driver`` runs one level (ask the sampler, start the
child run, hand the trial to an executor, tell the result) and ``level`` holds a level and its
result; ``child_runs`` makes trial runs ahead;
``summary`` and ``note`` write the parent's results; ``listener`` is how a search reports
progress (``cli/`` implements it). The top of the search: it may import every package below
(config, samplers, pruners, stages, executors, trials, tracking, training), and only ``cli``
and ``plugins`` import it.
"""
