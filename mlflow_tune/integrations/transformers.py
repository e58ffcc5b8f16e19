"""Hugging Face `Trainer`: `TuneCallback(trial)` reports each evaluation through the trial.

    def fit(trial):
        args = TrainingArguments(output_dir=..., eval_strategy="epoch", logging_strategy="epoch",
                                 learning_rate=trial.params["lr"], report_to=[])
        Trainer(model, args, train_dataset=..., eval_dataset=..., compute_metrics=accuracy,
                callbacks=[TuneCallback(trial)]).train()

Each `on_evaluate` reports the Trainer's metrics under its own names (`eval_loss`,
`eval_accuracy`, ...) with the last logged training `loss`, at the step the Trainer is at. A
pruned trial, one the guard stops, and SIGINT/SIGTERM end training with
`control.should_training_stop`. With `report_to="mlflow"` the Trainer's own MLflow callback writes
the metrics (pointed at the trial's run by `with trial_run(trial):`) and this one only judges.
"""

from __future__ import annotations

from typing import Any

from mlflow_tune.integrations.common import need, report, scalars
from mlflow_tune.tracking.runs import active_elsewhere, trial_run
from mlflow_tune.trials.function import Trial

need("transformers", "transformers", "mlflow_tune.integrations.transformers")   # else one line naming the extra
from transformers import TrainerCallback  # noqa: E402

# The Trainer's timings are not curves of the model: left out of what is reported
TIMINGS = ("_runtime", "_samples_per_second", "_steps_per_second")

__all__ = ["TuneCallback", "trial_run"]


class TuneCallback(TrainerCallback):  # type: ignore[misc]
    """Report evaluations to `trial`; stop the Trainer when the search says so.

    `log`: write the metrics through the trial (True), leave them to the Trainer's MLflow callback
    (False), or decide from `report_to` ("auto")."""

    def __init__(self, trial: Trial, log: bool | str = "auto"):
        if log not in (True, False, "auto"):
            raise ValueError(f"TuneCallback(log={log!r}): use True, False or 'auto'.")
        self.trial, self.write = trial, log
        self._train_loss: float | None = None
        self.stopped = False

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.write == "auto":
            targets = [args.report_to] if isinstance(args.report_to, str) else list(args.report_to or [])
            if "mlflow" in targets or "all" in targets:
                if where := active_elsewhere(self.trial.run_id):
                    raise ValueError(f"report_to='mlflow' would write into {where}, not the trial's run "
                                     f"{self.trial.run_id}: train inside `with trial_run(trial):`.")
                self.write = False
            else:
                self.write = True

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if logs and "loss" in logs:
            self._train_loss = float(logs["loss"])

    def on_evaluate(self, args: Any, state: Any, control: Any, metrics: dict[str, Any] | None = None,
                    **kwargs: Any) -> None:
        if self.stopped:
            return
        values = {k: v for k, v in scalars(metrics or {}).items() if not k.endswith(TIMINGS)}
        if self._train_loss is not None:
            values.setdefault("loss", self._train_loss)
        if report(self.trial, int(state.global_step), values, bool(self.write)):
            self.stopped = control.should_training_stop = True
