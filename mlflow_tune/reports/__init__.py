"""Figures and the HTML report of a search, read back from MLflow.

- ``curves``: one run's learning curves as a PNG; ``html``: the search report.
"""
