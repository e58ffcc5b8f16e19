"""PyTorch Lightning: `TuneCallback(trial)` reports each epoch's logged metrics through the trial.

    def fit(trial):
        model = LitClassifier(lr=trial.params["lr"])
        trainer = L.Trainer(max_epochs=20, callbacks=[TuneCallback(trial)], logger=mlflow_logger(trial))
        trainer.fit(model, train_loader, val_loader)

At the end of every training epoch that ran validation it reports `trainer.callback_metrics` (the
values `self.log(...)` gave, per epoch: `val_loss`, `val_acc`, `train_loss_epoch`...), which feed
the pruner, the live guard and the diagnosis under Lightning's own names. A pruned trial, one the
guard stops, and SIGINT/SIGTERM all stop the trainer the way Lightning stops cleanly
(`trainer.should_stop`), never by raising into it.

Metrics are written once, to the trial's run: by the callback, unless Lightning's `MLFlowLogger`
already writes them there (`mlflow_logger(trial)` makes one pointed at the trial's run) or
`mlflow.pytorch.autolog()` does (inside `with trial_run(trial):`); then the callback only judges.
A logger pointed at another run fails the trial at the start of `fit`, before any epoch (Lightning
has made that logger's run by then; it ends FAILED), with what to use instead.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from mlflow_tune.integrations.common import need, report, scalars
from mlflow_tune.tracking.runs import autologging, trial_run
from mlflow_tune.trials.function import Trial

need("lightning.pytorch", "lightning", "mlflow_tune.integrations.lightning")   # else one line naming the extra
from lightning.pytorch import Callback  # noqa: E402

MAX_CHECKPOINT_BYTES = 200 * 2**20   # larger checkpoints stay on disk, where Lightning wrote them
# Lightning sets its logger to INFO: in a search every trial's Trainer would print "GPU available",
# "TPU available" and two tips above the progress line. A level the user set is kept.
for _name in ("lightning.pytorch", "pytorch_lightning"):
    if logging.getLogger(_name).level == logging.INFO:
        logging.getLogger(_name).setLevel(logging.WARNING)

__all__ = ["TuneCallback", "mlflow_logger", "trial_run"]


def mlflow_logger(trial: Trial, **kwargs: Any) -> Any:
    """Lightning's `MLFlowLogger` writing to the trial's own run (no second run, no second copy)."""
    from lightning.pytorch.loggers import MLFlowLogger

    return MLFlowLogger(run_id=trial.run_id, tracking_uri=trial.tracking_uri, **kwargs)


class TuneCallback(Callback):
    """Report epochs to `trial`; stop the trainer when the search says so.

    `log`: write the metrics through the trial (True), leave them to a logger (False), or decide
    from the trainer's loggers and MLflow's autologging ("auto"). `checkpoint`: log the best
    checkpoint of Lightning's `ModelCheckpoint` on the run, as `checkpoints/best.ckpt`."""

    def __init__(self, trial: Trial, log: bool | str = "auto", checkpoint: bool = True):
        if log not in (True, False, "auto"):
            raise ValueError(f"TuneCallback(log={log!r}): use True, False or 'auto'.")
        # not `self.log`: Lightning sets every callback's `log` to the module's (callback_connector.py)
        self.trial, self.write, self.checkpoint = trial, log, checkpoint
        self._validated = False
        self.stopped = False   # the search stopped this trainer (pruned, not converging, a signal)

    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        others = [lg for lg in trainer.loggers if _is_mlflow(lg) and getattr(lg, "_run_id", None) != self.trial.run_id]
        if others:
            raise ValueError(f"an MLFlowLogger writes to run {getattr(others[0], '_run_id', None) or '(a new one)'}, "
                             f"not trial {self.trial.number}'s run {self.trial.run_id}: use "
                             "mlflow_logger(trial) from mlflow_tune.integrations.lightning.")
        if self.write == "auto":
            ours = any(_is_mlflow(lg) for lg in trainer.loggers)
            self.write = not (ours or autologging("pytorch", self.trial.run_id))

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        if not trainer.sanity_checking:
            self._validated = True

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        # here, not at validation end: Lightning validates inside the epoch, so the epoch's own train
        # metrics (`*_epoch`) exist only now, beside the validation's
        if self.stopped or not (self._validated or not trainer.enable_validation):
            return
        self._validated = False
        if report(self.trial, trainer.current_epoch, scalars(trainer.callback_metrics), bool(self.write)):
            self.stopped = trainer.should_stop = True

    def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
        best = getattr(trainer.checkpoint_callback, "best_model_path", "") if self.checkpoint else ""
        if best and Path(best).is_file() and Path(best).stat().st_size <= MAX_CHECKPOINT_BYTES:
            self.trial.log_file("checkpoints/best.ckpt", Path(best).read_bytes())


def _is_mlflow(logger: Any) -> bool:
    return type(logger).__name__ == "MLFlowLogger"
