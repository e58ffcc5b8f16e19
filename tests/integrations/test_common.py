"""What the framework callbacks share, without a framework."""

from __future__ import annotations

import pytest

from mlflow_tune.integrations.common import need, scalars


def test_a_missing_framework_is_one_line_naming_the_extra() -> None:
    with pytest.raises(ImportError) as raised:
        need("no_such_framework.sub", "lightning", "mlflow_tune.integrations.lightning")
    assert str(raised.value) == ('mlflow_tune.integrations.lightning needs no_such_framework; install it with: '
                                 'pip install "mlflow-tune[lightning]"')
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


def test_only_per_epoch_numbers_are_reported() -> None:
    torch = pytest.importorskip("torch")
    got = scalars({"val_loss": torch.tensor(0.5), "train_loss_step": torch.tensor(0.7), "acc": 0.9, "n": 3,
                   "flag": True, "name": "x", "vec": torch.ones(3), "nan": float("nan")})
    assert set(got) == {"val_loss", "acc", "n", "nan"} and got["val_loss"] == 0.5 and got["n"] == 3.0
