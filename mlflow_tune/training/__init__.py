"""Pure PyTorch training; never imports mlflow.

- ``config``: :class:`TrainConfig`, every knob, validated on construction.
- ``data``, ``models``: built-in and user data; mlp/cnn/rnn and user model builders.
- ``loop``: :func:`train_model`, the training loop; ``callbacks``: the seam it reports each epoch to.
- ``evaluation``: a split's loss, accuracy, macro F1, balanced accuracy and AUC from one pass.
- ``sanity``: plausibility checks before tuning (initial loss near ln C, overfit a small batch).

Nothing is imported here, so ``mlflow_tune.training.config`` stays cheap for the CLI.
"""
