"""Promotion: the best healthy trial of a search into the MLflow Model Registry, safely.

With the CLI's ``promote`` command this is the only code that talks to the Model Registry.
Flow: find the search's trials (children and, for staged searches, grandchildren) -> choose the
best eligible one by its ``loss`` -> evaluate its model on the held-out test split -> register it
(once per trial) -> move the alias only if it beats the version the alias points to now, on the
same rows. Aliases only: registry stages are deprecated.
"""

from mlflow_tune.registry.evaluation import decide, evaluate, predict, scores
from mlflow_tune.registry.promotion import PromotionResult, promote
from mlflow_tune.registry.trials import ALLOWABLE, PassedOver, _Trial, check_alias, choose

__all__ = ["ALLOWABLE", "PassedOver", "PromotionResult", "_Trial", "check_alias", "choose", "decide", "evaluate",
           "predict", "promote", "scores"]
