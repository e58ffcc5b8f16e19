from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Sequence
from typing import Any

import pytest

from mlflow_tune.diagnostics.guard import DiagnosisGuard
from mlflow_tune.training.callbacks import TrainCallback
from mlflow_tune.training.config import TrainConfig
from mlflow_tune.training.loop import TrainResult, plateau_decay, train_model
from mlflow_tune.training.records import EPOCH_METRICS, EpochRecord
from mlflow_tune.training.sanity import SanityReport


def cfg(**overrides: Any) -> TrainConfig:
    base: dict[str, Any] = {"dataset": "digits", "model": "mlp", "epochs": 3, "num_threads": 1,
                            "hidden_units": 32}
    return TrainConfig(**{**base, **overrides})


class Recorder(TrainCallback):
    def __init__(self, stop_at: int | None = None):
        self.events: list[str] = []
        self.records: list[EpochRecord] = []
        self.stop_at = stop_at
        self.sanity: SanityReport | None = None
        self.result: TrainResult | None = None

    def on_train_start(self, config: TrainConfig, data: Any, model: Any) -> None:
        self.events.append("start")

    def on_sanity(self, report: SanityReport) -> None:
        self.events.append("sanity")
        self.sanity = report

    def on_epoch_end(self, record: EpochRecord, history: Sequence[EpochRecord]) -> str | None:
        self.events.append("epoch")
        self.records.append(record)
        assert history[-1] == record and len(history) == record.epoch + 1
        return "enough" if record.epoch == self.stop_at else None

    def on_train_end(self, result: TrainResult) -> None:
        self.events.append("end")
        self.result = result


def test_learns_digits() -> None:
    result = train_model(cfg(epochs=10, hidden_units=128), [DiagnosisGuard()])
    assert result.status == "completed"
    assert len(result.history) == 10
    assert result.best_val_accuracy > 0.85
    assert result.test_accuracy > 0.85
    assert result.history[-1].train_loss < result.history[0].train_loss
    assert 0 <= result.best_epoch < 10
    assert result.best_val_loss == min(r.val_loss for r in result.history)
    assert result.diagnosis is not None   # the guard labels every run
    final = result.final_metrics()
    assert {"best_val_loss", "best_val_accuracy", "best_epoch", "test_loss", "test_accuracy"} <= set(final)


def test_model_keeps_best_checkpoint() -> None:
    result = train_model(cfg(epochs=4))
    state = result.model.state_dict()
    assert all((state[k] == v).all() for k, v in result.best_state.items())


def _without_time(history: Sequence[EpochRecord]) -> list[EpochRecord]:
    return [dataclasses.replace(r, epoch_seconds=0.0) for r in history]


def test_deterministic_with_seed() -> None:
    a = train_model(cfg(seed=7, dropout=0.2))
    b = train_model(cfg(seed=7, dropout=0.2))
    assert _without_time(a.history) == _without_time(b.history)
    assert a.test_accuracy == b.test_accuracy
    c = train_model(cfg(seed=8, dropout=0.2))
    assert _without_time(c.history) != _without_time(a.history)


@pytest.mark.parametrize("guard", [False, True])
def test_nonfinite_loss_stops_without_raising(guard: bool) -> None:
    recorder = Recorder()
    callbacks = [DiagnosisGuard(), recorder] if guard else [recorder]
    result = train_model(cfg(optimizer="sgd", lr=1e3 - 1, epochs=5, grad_clip=0.0), callbacks)
    assert result.status == "nonfinite"
    assert "non-finite" in result.stop_reason or "validation loss" in result.stop_reason
    assert len(result.history) < 5
    assert recorder.events[-1] == "end"   # callbacks still see the end, so nothing logged is lost
    assert len(recorder.records) == len(result.history)


def test_plateau_decay_pure() -> None:
    assert plateau_decay([1.0, 0.9, 0.8], 0.1, 0.5, 2) == 0.1           # improving
    assert plateau_decay([1.0, 0.9], 0.1, 0.5, 2) == 0.1                 # too short to judge
    assert plateau_decay([1.0, 1.1, 1.2], 0.1, 0.5, 2) == 0.05           # 2 epochs without improvement
    assert plateau_decay([1.0, 1.1], 0.1, 0.5, 1) == 0.05
    assert plateau_decay([1.0, 1.1, 1.2], 0.1, 0.5, 3) == 0.1            # patience not yet used up
    assert plateau_decay([1.0, 1.1, 1.2, 1.3], 0.1, 0.5, 2) == 0.1       # just decayed: wait again
    assert plateau_decay([1.0, 1.1, 1.2, 1.3, 1.4], 0.1, 0.5, 2) == 0.05  # ... then decay again
    assert plateau_decay([1.0, 1.1, 1.2], 0.1, 1.0, 2) == 0.1            # factor 1 = off


def test_lr_decays_in_the_loop() -> None:
    # A large learning rate on a small subset stalls quickly; patience 1 decays on every stall.
    result = train_model(cfg(lr=0.05, lr_decay=0.5, lr_patience=1, epochs=8, subsample=0.2,
                             hidden_units=128))
    lrs = [r.lr for r in result.history]
    assert lrs[0] == 0.05
    assert min(lrs) < 0.05
    for before, after in itertools.pairwise(lrs):
        assert after in (before, pytest.approx(before * 0.5))


def test_early_stopping() -> None:
    result = train_model(cfg(lr=0.03, epochs=40, early_stopping_patience=2, lr_decay=1.0, subsample=0.2,
                             hidden_units=256))
    assert result.status == "early_stopped"
    assert len(result.history) == result.best_epoch + 3
    assert "2 epochs" in result.stop_reason


def test_grad_clip_limits_steps_and_reports_norm() -> None:
    clipped = train_model(cfg(optimizer="sgd", lr=0.5, grad_clip=1e-6, epochs=2))
    free = train_model(cfg(optimizer="sgd", lr=0.5, grad_clip=0.0, epochs=2))
    # the logged norm is the pre-clip one, so it is far above the clip threshold
    assert all(r.grad_norm > 1e-3 and math.isfinite(r.grad_norm) for r in clipped.history)
    # with a tiny clip the model barely moves: its loss stays near chance, the free one learns
    assert clipped.history[-1].val_loss > 2.0
    assert free.history[-1].val_loss < 1.0


def test_sanity_check_report() -> None:
    recorder = Recorder()
    result = train_model(cfg(sanity_check=True, epochs=1), [recorder])
    report = result.sanity
    assert report is not None and recorder.sanity is report
    assert report.expected_loss == pytest.approx(math.log(10))
    assert abs(report.initial_loss - math.log(10)) < 0.5
    assert report.initial_ok and report.overfit_ok and report.passed
    assert "ok" in report.summary()
    assert recorder.events[:2] == ["start", "sanity"]


def test_sanity_report_flags_bad_values() -> None:
    report = SanityReport(initial_loss=23.0, expected_loss=math.log(10), overfit_accuracy=0.4,
                          overfit_steps=200)
    assert not report.initial_ok and not report.overfit_ok and not report.passed
    assert "SUSPICIOUS" in report.summary() and "FAILED" in report.summary()


def test_callbacks_see_every_epoch() -> None:
    recorder = Recorder()
    result = train_model(cfg(epochs=3), [recorder])
    assert recorder.events == ["start", "epoch", "epoch", "epoch", "end"]
    assert [r.epoch for r in recorder.records] == [0, 1, 2]
    assert recorder.result is result
    assert set(recorder.records[0].metrics()) == set(EPOCH_METRICS)
    assert all(r.epoch_seconds > 0 for r in recorder.records)


def test_callback_can_stop_the_run() -> None:
    recorder = Recorder(stop_at=1)
    result = train_model(cfg(epochs=5), [recorder])
    assert result.status == "stopped" and result.stop_reason == "enough"
    assert len(result.history) == 2
    assert recorder.events[-1] == "end"


def test_balanced_batches_train() -> None:
    result = train_model(cfg(dataset="synthetic", n_samples=300, imbalance=4.0, balance="batches",
                             epochs=2))
    assert result.status == "completed" and len(result.history) == 2
