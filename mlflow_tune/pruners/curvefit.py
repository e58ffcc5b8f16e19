"""Extrapolate a partial learning curve: power-law and exponential-saturation fits (pure).

Curves are oriented so that lower is better. Both families only let the curve improve or stay
flat (a >= 0, b >= 0): the fits are meant to be optimistic, in the spirit of Domhan et al.
(2015), who extrapolate with a weighted set of such families, but without their MCMC. The
learning-curve pruner (pruners.CurvePruner) asks how good a trial can still get.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence

import numpy as np

Model = Callable[..., np.ndarray]


def power_law(t: np.ndarray, c: float, a: float, b: float) -> np.ndarray:
    return np.asarray(c + a * np.power(t, -b))


def exp_saturation(t: np.ndarray, c: float, a: float, b: float) -> np.ndarray:
    return np.asarray(c + a * np.exp(-b * t))


FAMILIES: tuple[Model, ...] = (power_law, exp_saturation)


def fit_at(curve: Sequence[float], horizon: int) -> list[tuple[float, float]]:
    """(predicted value at epoch `horizon` (1-based), residual std) of each family that fits.

    Non-finite points are dropped; a family whose fit fails or predicts a non-finite value is
    left out, so noise or a flat curve gives fewer answers, never an exception.
    """
    from scipy.optimize import OptimizeWarning, curve_fit

    points = [(i + 1.0, v) for i, v in enumerate(curve) if math.isfinite(v)]
    if len(points) < 3:
        return []
    t = np.array([p[0] for p in points])
    y = np.array([p[1] for p in points])
    span = float(y.max() - y.min()) or 1e-9
    fits = []
    for family in FAMILIES:
        start = (float(y[-1]), max(float(y[0] - y[-1]), span * 0.1), 0.5)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", OptimizeWarning)
                found, _ = curve_fit(family, t, y, p0=start, maxfev=2000,
                                     bounds=([-np.inf, 0.0, 0.0], [np.inf, np.inf, 5.0]))
        except (RuntimeError, ValueError):   # no convergence, or a degenerate curve
            continue
        predicted = float(family(np.array([float(horizon)]), *found)[0])
        residual = float(np.std(y - family(t, *found)))
        if math.isfinite(predicted) and math.isfinite(residual):
            fits.append((predicted, residual))
    return fits
