"""The only code that writes to MLflow.

- ``runs``: the store (URI, experiments), run trees and :class:`RunLogger`, one run's batched writes.
- ``callback``: :class:`MlflowCallback`, the training callback that writes a run.
- ``writer``: writes a run's metrics, files and model off the training path.
- ``models``: a trained network logged as an MLflow PyTorch model.
"""
