"""Missing feature values: an error naming the columns, or imputed with training-split values that the
served model carries (raw rows with NaN in, probabilities out)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from mlflow_tune.training.config import ConfigError, TrainConfig
from mlflow_tune.training.data import fit_fill, split
from mlflow_tune.training.loop import train_model
from mlflow_tune.training.models import Probabilities, build_model

WINE = Path(__file__).resolve().parents[2] / "projects" / "wine-csv" / "wine.csv"


@pytest.fixture(scope="module")
def holes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wine data with ~5% of two columns missing, as a user's export would have them."""
    frame = pd.read_csv(WINE)
    rng = np.random.default_rng(0)
    for column in ("alcohol", "magnesium"):
        frame.loc[rng.random(len(frame)) < 0.05, column] = np.nan
    path = tmp_path_factory.mktemp("data") / "wine_holes.csv"
    frame.to_csv(path, index=False)
    return path


def cfg(path: Path, **overrides: object) -> TrainConfig:
    return TrainConfig(**{"dataset": "csv", "data_path": str(path), "target": "cultivar", "epochs": 3,
                          "num_threads": 1, "hidden_units": 16, **overrides})  # type: ignore[arg-type]


def test_missing_values_without_impute_is_one_line_naming_columns(holes: Path) -> None:
    with pytest.raises(ConfigError) as err:
        split(cfg(holes))
    message = str(err.value)
    assert "\n" not in message
    assert "alcohol, magnesium" in message and "wine_holes.csv" in message
    assert all(choice in message for choice in ("impute", "mean", "median", "most_frequent"))


@pytest.mark.parametrize("strategy", ["mean", "median", "most_frequent"])
def test_fill_values_come_from_the_training_split(holes: Path, strategy: str) -> None:
    from sklearn.impute import SimpleImputer

    data = split(cfg(holes, impute=strategy))
    assert np.isnan(data.train.x).any()             # the splits stay raw; the network imputes
    expected = SimpleImputer(strategy=strategy).fit(data.train.x).statistics_
    np.testing.assert_allclose(data.fill, expected, rtol=1e-6)
    assert np.isfinite(data.mean).all() and np.isfinite(data.std).all()


def test_trains_and_serves_raw_rows_with_missing_values(holes: Path) -> None:
    result = train_model(cfg(holes, impute="median", epochs=5, batch_size=16, lr=0.01))
    assert result.status == "completed"
    assert all(np.isfinite([r.train_loss, r.val_loss]).all() for r in result.history)
    assert result.best_val_accuracy > 0.8 and result.test_accuracy > 0.8
    served = Probabilities(result.model).eval()
    row = result.data.test.x[:1].copy()
    row[0, 0] = np.nan                                # alcohol missing
    filled = row.copy()
    filled[0, 0] = result.data.fill[0]
    with torch.no_grad():
        proba = served(torch.as_tensor(row))
        expected = served(torch.as_tensor(filled))
    assert torch.isfinite(proba).all() and float(proba.sum()) == pytest.approx(1.0)
    torch.testing.assert_close(proba, expected)


def test_pyfunc_predicts_on_rows_with_nan(holes: Path, tmp_path: Path) -> None:
    import mlflow.pyfunc
    import mlflow.pytorch

    data = split(cfg(holes, impute="mean"))
    served = Probabilities(build_model(cfg(holes, impute="mean"), data)).eval()
    rows = data.train.x[np.isnan(data.train.x).any(1)][:3]
    assert len(rows) and np.isnan(rows).any()
    mlflow.pytorch.save_model(served, str(tmp_path / "model"), input_example=rows,
                              serialization_format="pickle")
    predicted = mlflow.pyfunc.load_model(str(tmp_path / "model")).predict(pd.DataFrame(rows))
    assert np.isfinite(np.asarray(predicted)).all()


def test_fill_buffer_only_with_impute() -> None:
    plain = TrainConfig(dataset="wine", num_threads=1)
    assert "fill" not in build_model(plain, split(plain)).state_dict()   # old checkpoints still load
    imputed = plain.replace(impute="median")
    assert "fill" in build_model(imputed, split(imputed)).state_dict()


def test_a_column_empty_in_training_gets_zero() -> None:
    x = np.array([[1.0, np.nan], [3.0, np.nan], [np.nan, np.nan]], np.float32)
    np.testing.assert_array_equal(fit_fill("mean", x), [2.0, 0.0])
    assert fit_fill("none", x).size == 0
