from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlflow_tune.training.config import TrainConfig
from mlflow_tune.training.data import ConfigError, balanced_batches, load_arrays, oversample, split, stratified_take


@pytest.mark.parametrize(("dataset", "kind", "n_classes"), [
    ("digits", "image", 10), ("wine", "tabular", 3), ("breast_cancer", "tabular", 2),
    ("iris", "tabular", 3), ("synthetic", "tabular", 3), ("sequences", "tokens", 3),
])
def test_builtin_datasets_load(dataset: str, kind: str, n_classes: int) -> None:
    data = split(TrainConfig(dataset=dataset, n_samples=300))
    assert data.kind == kind
    assert data.n_classes == n_classes
    assert len(data.train) and len(data.val) and len(data.test)
    assert data.train.x.shape[0] == data.train.y.shape[0]
    assert data.train.y.dtype == np.int64
    if kind == "tokens":
        assert data.vocab_size > 0 and data.train.x.dtype == np.int64 and data.mean.size == 0
    else:
        assert data.train.x.dtype == np.float32 and data.mean.shape == (data.n_features,)
    if kind == "image":
        assert data.image_shape == (1, 8, 8)


def test_stratified_split_sizes_and_proportions() -> None:
    cfg = TrainConfig(dataset="digits", val_fraction=0.2, test_fraction=0.2)
    data = split(cfg)
    total = len(data.train) + len(data.val) + len(data.test)
    assert total == 1797
    assert len(data.train) == pytest.approx(0.6 * total, abs=2)
    assert len(data.val) == pytest.approx(0.2 * total, abs=2)
    all_y = np.concatenate([data.train.y, data.val.y, data.test.y])
    full = np.bincount(all_y) / len(all_y)
    for part in (data.train, data.val, data.test):
        assert np.allclose(np.bincount(part.y, minlength=10) / len(part), full, atol=0.02)


def test_split_is_deterministic_with_seed() -> None:
    a, b = split(TrainConfig(seed=3)), split(TrainConfig(seed=3))
    assert np.array_equal(a.train.x, b.train.x) and np.array_equal(a.test.y, b.test.y)
    assert not np.array_equal(a.train.y, split(TrainConfig(seed=4)).train.y)


def test_no_test_split() -> None:
    data = split(TrainConfig(test_fraction=0.0))
    assert len(data.test) == 0 and len(data.val) > 0


def test_standardisation_stats_from_train_only() -> None:
    data = split(TrainConfig(dataset="wine"))
    assert np.allclose(data.mean, data.train.x.mean(0), atol=1e-4)
    assert np.allclose(data.std, data.train.x.std(0), rtol=1e-4)
    everything = np.concatenate([data.train.x, data.val.x, data.test.x])
    assert not np.allclose(data.mean, everything.mean(0), atol=1e-6)
    # features stay raw: the model standardises, so a logged model reads raw rows
    assert not np.allclose(data.train.x.mean(0), 0.0, atol=1e-3)


def test_constant_features_get_unit_std() -> None:
    data = split(TrainConfig(dataset="digits"))
    assert np.all(data.std > 0)
    assert np.all(data.std[data.train.x.std(0) < 1e-6] == 1.0)


def test_subsample_is_stratified() -> None:
    full = split(TrainConfig(dataset="digits"))
    part = split(TrainConfig(dataset="digits", subsample=0.25))
    assert len(part.train) == pytest.approx(0.25 * len(full.train), abs=10)
    assert set(np.unique(part.train.y)) == set(range(10))
    ratio = np.bincount(part.train.y) / np.bincount(full.train.y)
    assert np.allclose(ratio, 0.25, atol=0.05)
    assert len(part.val) == len(full.val)   # only training data is subsampled


def test_stratified_take_keeps_every_class() -> None:
    y = np.array([0] * 100 + [1] * 3)
    idx = stratified_take(y, 0.1, np.random.default_rng(0))
    assert np.sum(y[idx] == 0) == 10 and np.sum(y[idx] == 1) == 2


def test_classes_subset_relabelled() -> None:
    data = split(TrainConfig(dataset="digits", classes="3,8"))
    assert data.class_names == ("3", "8") and data.n_classes == 2
    assert set(np.unique(data.train.y)) == {0, 1}
    _x, y, *_ = load_arrays(TrainConfig(dataset="digits"))
    # relabelled rows are the original 3s and 8s
    n3, n8 = int(np.sum(y == 3)), int(np.sum(y == 8))
    all_y = np.concatenate([data.train.y, data.val.y, data.test.y])
    assert (int(np.sum(all_y == 0)), int(np.sum(all_y == 1))) == (n3, n8)


@pytest.mark.parametrize("classes", ["3,11", "3"])
def test_bad_classes_subset(classes: str) -> None:
    with pytest.raises(ConfigError, match="classes="):
        split(TrainConfig(dataset="digits", classes=classes))


def test_oversample_balances_counts() -> None:
    cfg = TrainConfig(dataset="synthetic", n_samples=600, imbalance=5.0, balance="oversample")
    plain = split(cfg.replace(balance="none"))
    counts = np.bincount(plain.train.y)
    assert counts.max() / counts.min() > 3
    balanced = np.bincount(split(cfg).train.y)
    assert balanced.min() == balanced.max() == counts.max()
    x, y = oversample(np.arange(6.0)[:, None], np.array([0, 0, 0, 0, 1, 1]), np.random.default_rng(0))
    assert np.bincount(y).tolist() == [4, 4]
    assert set(x[y == 1, 0]) <= {4.0, 5.0}


def test_balanced_batches_are_balanced() -> None:
    y = np.array([0] * 90 + [1] * 10)
    batches = balanced_batches(y, 20, np.random.default_rng(0))
    assert len(batches) == 5
    for batch in batches:
        assert np.bincount(y[batch]).tolist() == [10, 10]


def _frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 60
    label = np.repeat(["cat", "dog", "eel"], n // 3)
    return pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n) + (label == "dog"),
                         "colour": rng.choice(["red", "blue"], size=n), "kind": label})


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_user_files(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"data{suffix}"
    frame = _frame()
    frame.to_csv(path, index=False) if suffix == ".csv" else frame.to_parquet(path)
    dataset = "csv" if suffix == ".csv" else "parquet"
    data = split(TrainConfig(dataset=dataset, data_path=str(path), target="kind"))
    assert data.class_names == ("cat", "dog", "eel")
    assert data.kind == "tabular"
    assert data.n_features == 4   # a, b and colour one-hot (blue, red)
    assert len(data.train) + len(data.val) + len(data.test) == 60


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.csv"):
        split(TrainConfig(dataset="csv", data_path=str(tmp_path / "nope.csv")))


def test_missing_target_column(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    _frame().to_csv(path, index=False)
    with pytest.raises(ConfigError) as err:
        split(TrainConfig(dataset="csv", data_path=str(path), target="label"))
    assert "target='label'" in str(err.value) and "kind" in str(err.value)


@pytest.mark.parametrize(("name", "content", "needle"), [
    ("empty.csv", b"", "is empty (0 bytes)"),
    ("blank.csv", b"\n\n", "cannot be read as csv: No columns to parse from file"),
    ("broken.parquet", b"not a parquet file at all", "cannot be read as parquet"),
])
def test_a_file_that_is_no_table_is_one_line(tmp_path: Path, name: str, content: bytes, needle: str) -> None:
    (tmp_path / name).write_bytes(content)
    with pytest.raises(ConfigError) as err:
        split(TrainConfig(dataset="csv", data_path=str(tmp_path / name)))
    assert needle in str(err.value) and "\n" not in str(err.value), err.value


def test_unknown_file_format(tmp_path: Path) -> None:
    path = tmp_path / "data.txt"
    path.write_text("a,b\n")
    with pytest.raises(ConfigError, match="format"):
        split(TrainConfig(dataset="csv", data_path=str(path)))


def test_packaged_data_is_parsed_once_and_each_caller_gets_its_own_copy() -> None:
    cfg = TrainConfig(dataset="digits")
    first = load_arrays(cfg)
    first[0][0, 0] = 1e9   # a caller that changes its rows in place
    second = load_arrays(cfg)
    assert second[0][0, 0] != 1e9 and second[0].shape == (1797, 64)
