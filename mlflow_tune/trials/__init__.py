"""One trial: the records it travels in and the three ways it runs.

``records`` holds what every layer passes around (``TrialSpec``, ``TrialOutcome``, the level's
``Board``); ``runner.run_trial`` runs one trial of our training loop, ``function`` a user's
training function (``Trial``, ``TrialPruned``), ``project`` an MLflow Project run, watched;
``judge`` is the live diagnosis the last two share; ``pruning`` asks the pruner after each
epoch; ``naming`` names runs. Executors call in
here, so this package never imports the search loop, the executors or the tune file: it may
import ``pruners``, ``training``, ``diagnostics`` and ``tracking``.
"""
