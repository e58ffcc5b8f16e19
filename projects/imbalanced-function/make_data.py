"""Write data/imbalanced.csv: 3,000 rows, 12 features, 95% class 0 and 5% class 1 (generated, seed 0)."""

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.datasets import make_classification

if __name__ == "__main__":
    x, y = make_classification(n_samples=3000, n_features=12, n_informative=6, weights=[0.95], flip_y=0.01,
                               class_sep=0.8, random_state=0)
    frame = pd.DataFrame(x.round(4), columns=[f"f{i}" for i in range(x.shape[1])]).assign(label=y)
    frame.loc[np.random.default_rng(0).random(len(frame)) < 0.01, "f3"] = np.nan   # a few missing values
    Path("data").mkdir(exist_ok=True)
    frame.to_csv("data/imbalanced.csv", index=False)
    print(f"data/imbalanced.csv: {len(frame)} rows, minority share {y.mean():.3f}")
