"""Trials trained by a framework's own loop: Lightning's `Trainer`, Hugging Face's `Trainer`.

Each module is a callback that hands the framework's epoch metrics to the search `Trial` and turns
the search's answers (prune, stop: not converging, a signal) into the framework's own clean stop.
Imports the framework only when its module is imported (the extras `mlflow-tune[lightning]`,
`mlflow-tune[transformers]`); may import trials, tracking, interrupts.
"""
