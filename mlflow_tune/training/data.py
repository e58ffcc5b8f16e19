"""Datasets as numpy arrays: built-ins (no download), user CSV/Parquet, splits and sampling.

Features stay *raw* here (missing values included); imputation values and standardisation
statistics are computed from the training split only and travel with the model (see
models.Network), so a logged model predicts from raw rows and no caller has to re-create the
preprocessing.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mlflow_tune.training.config import IMPUTE, ConfigError, TrainConfig

KINDS = ("tabular", "image", "tokens")
SEQ_VOCAB = 16
SEQ_LENGTH = 20


@dataclass(frozen=True)
class Split:
    x: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return int(self.y.shape[0])

    @property
    def majority_rate(self) -> float:
        """Share of the most frequent class: the accuracy of always answering it."""
        return float(np.bincount(self.y).max() / len(self)) if len(self) else math.nan


@dataclass(frozen=True)
class DataSplits:
    """Train/val/test arrays plus what a model builder needs to know about the input."""

    train: Split
    val: Split
    test: Split
    class_names: tuple[str, ...]
    kind: str                      # tabular | image | tokens
    image_shape: tuple[int, ...] = ()   # (C, H, W) for image data
    vocab_size: int = 0            # tokens only
    mean: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    std: np.ndarray = field(default_factory=lambda: np.ones(0, np.float32))
    fill: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))   # per feature; empty = no impute

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def n_features(self) -> int:
        return int(self.train.x.shape[1])


def _builtin(name: str, cfg: TrainConfig) -> tuple[np.ndarray, np.ndarray, str, tuple[int, ...], int]:
    if name == "synthetic":
        return (*_synthetic(cfg), "tabular", (), 0)
    if name == "sequences":
        x, y = _sequences(cfg)
        return x, y, "tokens", (), SEQ_VOCAB
    x, y = _packaged(name)
    shape = (1, 8, 8) if name == "digits" else ()
    return x.copy(), y.copy(), "image" if shape else "tabular", shape, 0


@functools.cache
def _packaged(name: str) -> tuple[np.ndarray, np.ndarray]:
    """A data set scikit-learn ships, parsed once per process: digits is a gzipped CSV that
    takes ~20 ms to read, every trial of a search asks for it again, and workers live long."""
    from sklearn import datasets

    loader: Any = {"digits": datasets.load_digits, "wine": datasets.load_wine,
                   "breast_cancer": datasets.load_breast_cancer, "iris": datasets.load_iris}[name]
    bunch = loader()
    return bunch.data.astype(np.float32), bunch.target.astype(np.int64)


def _synthetic(cfg: TrainConfig) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import make_classification

    # Geometric class weights so the majority/minority ratio is exactly `imbalance`.
    ratios = np.geomspace(1.0, 1.0 / cfg.imbalance, cfg.n_classes)
    x, y = make_classification(
        n_samples=cfg.n_samples, n_features=cfg.n_features, n_informative=max(2, cfg.n_features // 2),
        n_redundant=min(2, cfg.n_features // 4), n_classes=cfg.n_classes, n_clusters_per_class=1,
        weights=list(ratios / ratios.sum()), class_sep=1.0, random_state=1234)
    return x.astype(np.float32), y.astype(np.int64)


def _sequences(cfg: TrainConfig) -> tuple[np.ndarray, np.ndarray]:
    """Token sequences whose label is the most frequent of tokens 1..C (a counting rule an RNN learns)."""
    rng = np.random.default_rng(1234)
    n_classes = min(cfg.n_classes, SEQ_VOCAB - 1)
    x = rng.integers(0, SEQ_VOCAB, size=(cfg.n_samples, SEQ_LENGTH))
    label = rng.integers(0, n_classes, size=cfg.n_samples)
    # Plant the label's token a few extra times so the rule has a clear majority.
    for i, c in enumerate(label):
        pos = rng.choice(SEQ_LENGTH, size=4, replace=False)
        x[i, pos] = c + 1
    counts = np.stack([(x == c + 1).sum(1) for c in range(n_classes)], axis=1)
    return x.astype(np.int64), counts.argmax(1).astype(np.int64)


def check_source(cfg: TrainConfig) -> None:
    """Fail before any run is created when a user file is missing or of an unknown format."""
    if not cfg.data_path:
        return
    path = Path(cfg.data_path)
    if not path.is_file():
        raise ConfigError(f"data_path={cfg.data_path!r} does not exist or is not a file.")
    if path.suffix.lower() not in (".csv", ".parquet", ".pq"):
        raise ConfigError(f"data_path={cfg.data_path!r} has an unknown format; use .csv or .parquet.")
    if path.stat().st_size == 0:
        raise ConfigError(f"data_path={cfg.data_path!r} is empty (0 bytes); give a file with a header and rows.")


def _user_file(cfg: TrainConfig) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    import pandas as pd

    check_source(cfg)
    path = Path(cfg.data_path)
    suffix = path.suffix.lower()
    try:
        frame = pd.read_csv(path) if suffix == ".csv" else pd.read_parquet(path)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        # a file that is not the table it claims to be (pyarrow's ArrowInvalid is a ValueError)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"data_path={cfg.data_path!r} cannot be read as {suffix[1:]}: {first[:200]}") from None
    if not len(frame):
        raise ConfigError(f"{path.name} has no rows.")
    if cfg.target not in frame.columns:
        raise ConfigError(f"target={cfg.target!r} is not a column of {path.name}; columns: "
                          f"{', '.join(map(str, frame.columns))}.")
    labels = frame.pop(cfg.target)
    features = pd.get_dummies(frame, dtype=np.float32)   # categorical columns -> one-hot
    if features.shape[1] == 0:
        raise ConfigError(f"{path.name} has no feature columns besides target={cfg.target!r}.")
    if cfg.impute == "none" and features.isna().to_numpy().any():
        bad = [str(c) for c in features.columns[features.isna().any()]]
        shown = ", ".join(bad[:10]) + (f" and {len(bad) - 10} more" if len(bad) > 10 else "")
        raise ConfigError(f"{path.name} has missing values in columns: {shown}; set impute to one of: "
                          f"{', '.join(IMPUTE[1:])}.")
    names, y = np.unique(labels.astype(str).to_numpy(), return_inverse=True)
    if len(names) < 2:
        raise ConfigError(f"target={cfg.target!r} of {path.name} has one class ({names[0]!r}); "
                          "a classifier needs at least two.")
    return features.to_numpy(np.float32), y.astype(np.int64), tuple(str(n) for n in names)


def load_arrays(cfg: TrainConfig) -> tuple[np.ndarray, np.ndarray, tuple[str, ...], str, tuple[int, ...], int]:
    """All rows of the configured dataset: x, y, class names, kind, image shape, vocab size."""
    if cfg.data_path:
        x, y, names = _user_file(cfg)
        return x, y, names, "tabular", (), 0
    x, y, kind, shape, vocab = _builtin(cfg.dataset, cfg)
    return x, y, tuple(str(c) for c in range(int(y.max()) + 1)), kind, shape, vocab


def select_classes(x: np.ndarray, y: np.ndarray, names: tuple[str, ...], wanted: tuple[str, ...]
                   ) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Keep only `wanted` classes (a cheap sub-problem for coarse search), relabelled 0..k-1."""
    if not wanted:
        return x, y, names
    unknown = [w for w in wanted if w not in names]
    if unknown or len(set(wanted)) < 2:
        raise ConfigError(f"classes={','.join(wanted)!r} must name at least two of: {', '.join(names)}.")
    codes = [names.index(w) for w in wanted]
    mask = np.isin(y, codes)
    remap = {c: i for i, c in enumerate(codes)}
    return x[mask], np.array([remap[int(v)] for v in y[mask]], np.int64), tuple(wanted)


def stratified_take(y: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Indices of a stratified `fraction` of rows, at least one (two where possible) per class."""
    keep: list[np.ndarray] = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        n = max(min(2, len(idx)), round(fraction * len(idx)))
        keep.append(rng.choice(idx, size=n, replace=False))
    return np.sort(np.concatenate(keep))


def split(cfg: TrainConfig) -> DataSplits:
    """Stratified train/val/test split with the config's seed, then subsample and balance the training part."""
    from sklearn.model_selection import train_test_split

    x, y, names, kind, shape, vocab = load_arrays(cfg)
    x, y, names = select_classes(x, y, names, cfg.class_subset)
    seed = cfg.seed
    holdout = cfg.val_fraction + cfg.test_fraction
    x_tr, x_rest, y_tr, y_rest = train_test_split(x, y, test_size=holdout, stratify=y, random_state=seed)
    if cfg.test_fraction > 0:
        x_va, x_te, y_va, y_te = train_test_split(
            x_rest, y_rest, test_size=cfg.test_fraction / holdout, stratify=y_rest, random_state=seed)
    else:
        x_va, y_va, x_te, y_te = x_rest, y_rest, x_rest[:0], y_rest[:0]
    rng = np.random.default_rng(seed)
    if cfg.subsample < 1.0:
        keep = stratified_take(y_tr, cfg.subsample, rng)
        x_tr, y_tr = x_tr[keep], y_tr[keep]
    # Fitted before oversampling: repeated minority rows would pull a median towards their values.
    fill = fit_fill(cfg.impute, x_tr) if kind != "tokens" else np.zeros(0, np.float32)
    if cfg.balance == "oversample":
        x_tr, y_tr = oversample(x_tr, y_tr, rng)
    if kind == "tokens":
        mean, std = np.zeros(0, np.float32), np.ones(0, np.float32)
    else:
        # The statistics of the rows the network sees: imputed first, as Network.forward does.
        seen = np.where(np.isnan(x_tr), fill, x_tr) if fill.size else x_tr
        mean = seen.mean(0).astype(np.float32)
        # Constant features (digits' blank border pixels) get std 1 so they map to 0, not NaN.
        std = seen.std(0).astype(np.float32)
        std[std < 1e-6] = 1.0
    return DataSplits(Split(x_tr, y_tr), Split(x_va, y_va), Split(x_te, y_te), names, kind,
                      shape, vocab, mean, std, fill)


def fit_fill(strategy: str, x: np.ndarray) -> np.ndarray:
    """Per-feature values for missing entries, fitted on the training rows; empty for impute=none."""
    if strategy == "none":
        return np.zeros(0, np.float32)
    from sklearn.impute import SimpleImputer

    # keep_empty_features: a column with no value in the training split gets 0 instead of being
    # dropped, so the fill vector still lines up with the raw columns the served model receives.
    imputer = SimpleImputer(strategy=strategy, keep_empty_features=True).fit(x)
    return np.asarray(imputer.statistics_, np.float32)


def oversample(x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Replicate minority-class rows (sampled with replacement) up to the majority count."""
    classes, counts = np.unique(y, return_counts=True)
    idx = [np.flatnonzero(y == c) for c in classes]
    extra = [rng.choice(i, size=counts.max() - len(i), replace=True) for i in idx]
    order = rng.permutation(np.concatenate(idx + extra))
    return x[order], y[order]


def balanced_batches(y: np.ndarray, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """One epoch of class-balanced mini-batches: each batch draws equally from every class."""
    classes = np.unique(y)
    per_class = max(1, batch_size // len(classes))
    pools = [rng.permutation(np.flatnonzero(y == c)) for c in classes]
    n_batches = max(1, len(y) // (per_class * len(classes)))
    batches = []
    for b in range(n_batches):
        parts = [np.take(p, np.arange(b * per_class, (b + 1) * per_class), mode="wrap") for p in pools]
        batches.append(rng.permutation(np.concatenate(parts)))
    return batches
