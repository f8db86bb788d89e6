"""How well a per-model quantity predicts a per-model outcome.

Juneja et al. (2023) compare two predictors of out-of-distribution accuracy: the distance to the
basin centroids (or basin membership itself) and epsilon-sharpness. They report Pearson's r and a
least-squares fit of each. :func:`correlate` gives both linear (Pearson) and rank (Spearman)
correlation with p-values; :func:`membership_regression` and :func:`predictor_regression` give
R^2 of a categorical and of a continuous predictor on the same footing (plain and adjusted for
the number of predictors, since k clusters spend k - 1 degrees of freedom and a scalar only one).

No torch, no data; scipy and scikit-learn are imported where used.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from weightscape.errors import WeightscapeError

__all__ = ["correlate", "membership_regression", "predictor_regression"]


def correlate(x: ArrayLike, y: ArrayLike) -> dict[str, float | int]:
    """Pearson and Spearman correlation of two per-model quantities (scipy.stats).

    A constant input has no defined correlation: scipy warns and the coefficients are NaN.

    Args:
        x: One finite value per model.
        y: One finite value per model, same length, at least 3.

    Returns:
        ``{"pearson_r", "pearson_p", "spearman_rho", "spearman_p", "n"}``; p-values are
        two-sided tests of zero correlation.

    >>> c = correlate([1, 2, 3, 4], [3, 5, 7, 9])
    >>> round(c["pearson_r"], 12), round(c["spearman_rho"], 12), c["n"]
    (1.0, 1.0, 4)
    """
    from scipy.stats import pearsonr, spearmanr

    xs, ys = _paired(x, y, "correlate")
    pearson = pearsonr(xs, ys)
    spearman = spearmanr(xs, ys)
    return {
        "pearson_r": float(pearson.statistic),
        "pearson_p": float(pearson.pvalue),
        "spearman_rho": float(spearman.statistic),
        "spearman_p": float(spearman.pvalue),
        "n": int(xs.size),
    }


def membership_regression(labels: ArrayLike, y: ArrayLike) -> dict[str, Any]:
    """Least-squares fit of ``y`` on one-hot cluster membership (scikit-learn).

    One indicator column per cluster and no separate intercept, so each coefficient is the mean
    of ``y`` in that cluster and R^2 is the share of the variance of ``y`` explained by the
    clusters (for two clusters, the squared point-biserial correlation).

    Args:
        labels: Cluster label of each model.
        y: One finite value per model, same length, at least 3.

    Returns:
        ``{"r2", "adjusted_r2", "coefficients": {cluster: mean y}, "n", "k"}``; the adjusted
        R^2 counts k - 1 predictors and is NaN when ``n <= k``.

    >>> fit = membership_regression([0, 0, 1, 1], [1.0, 1.0, 3.0, 3.0])
    >>> round(fit["r2"], 12), {c: round(b, 12) for c, b in fit["coefficients"].items()}
    (1.0, {0: 1.0, 1: 3.0})
    """
    from sklearn.linear_model import LinearRegression

    labels, ys = np.asarray(labels), _values(y, "y", "membership_regression")
    _same_length(labels, ys, "labels", "membership_regression")
    clusters, codes = np.unique(labels, return_inverse=True)
    onehot = np.eye(clusters.size)[codes.reshape(-1)]  # (n, k)
    model = LinearRegression(fit_intercept=False).fit(onehot, ys)
    r2 = float(model.score(onehot, ys))
    return {
        "r2": r2,
        "adjusted_r2": _adjusted(r2, ys.size, clusters.size - 1),
        "coefficients": {c.item(): float(b) for c, b in zip(clusters, model.coef_, strict=True)},
        "n": int(ys.size),
        "k": int(clusters.size),
    }


def predictor_regression(x: ArrayLike, y: ArrayLike) -> dict[str, float | int]:
    """Least-squares line ``y = slope * x + intercept`` and its R^2 (scikit-learn).

    The continuous counterpart of :func:`membership_regression`, e.g. for sharpness or the
    centroid margin as the predictor.

    Returns:
        ``{"r2", "adjusted_r2", "slope", "intercept", "n"}``.

    >>> fit = predictor_regression([0, 1, 2], [1, 3, 5])
    >>> round(fit["r2"], 12), round(fit["slope"], 12), round(fit["intercept"], 12)
    (1.0, 2.0, 1.0)
    """
    from sklearn.linear_model import LinearRegression

    xs, ys = _paired(x, y, "predictor_regression")
    model = LinearRegression().fit(xs[:, None], ys)
    r2 = float(model.score(xs[:, None], ys))
    return {
        "r2": r2,
        "adjusted_r2": _adjusted(r2, ys.size, 1),
        "slope": float(model.coef_[0]),
        "intercept": float(model.intercept_),
        "n": int(ys.size),
    }


def _adjusted(r2: float, n: int, predictors: int) -> float:
    """R^2 adjusted for the number of predictors: 1 - (1 - R^2)(n - 1)/(n - p - 1)."""
    if n - predictors - 1 <= 0:
        return float("nan")
    return 1.0 - (1.0 - r2) * (n - 1) / (n - predictors - 1)


def _paired(x: ArrayLike, y: ArrayLike, owner: str) -> tuple[np.ndarray, np.ndarray]:
    """Two equally long 1-D float arrays of at least 3 finite values."""
    xs, ys = _values(x, "x", owner), _values(y, "y", owner)
    _same_length(xs, ys, "x", owner)
    return xs, ys


def _values(values: ArrayLike, name: str, owner: str) -> np.ndarray:
    """A 1-D float array of at least 3 finite values."""
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise WeightscapeError(
            f"The '{name}' parameter of {owner} must be a 1-D sequence of numbers."
        ) from error
    if array.ndim != 1 or array.size < 3 or not np.all(np.isfinite(array)):
        raise WeightscapeError(
            f"The '{name}' parameter of {owner} must be a 1-D sequence of at least 3 finite "
            f"numbers, one per model. Got shape {array.shape} with "
            f"{int((~np.isfinite(array)).sum())} non-finite value(s) instead."
        )
    return array


def _same_length(first: np.ndarray, y: np.ndarray, name: str, owner: str) -> None:
    if first.shape != y.shape:
        raise WeightscapeError(
            f"The '{name}' and 'y' parameters of {owner} must have one entry per model each. "
            f"Got shapes {first.shape} and {y.shape} instead."
        )
