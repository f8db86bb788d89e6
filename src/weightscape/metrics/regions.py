"""Comparing groups of models by their losses: the PB metric and loss distributions.

Gueta et al. (2023, §5.2) compare a group *In* with an exterior group *Ex* by

    PB = E_{i in In, j in Ex} 1{ l_g(w_i) <= l_g(w_j) },

the probability that a random *In* model does at least as well as a random *Ex* model (a tie
counts for *In*). PB is 1 when every *In* loss is at most every *Ex* loss and 0 when every one is
larger. numpy only.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from weightscape.errors import WeightscapeError
from weightscape.validation import as_finite_1d

__all__ = ["loss_distribution", "pb"]


def pb(in_losses: ArrayLike, ex_losses: ArrayLike) -> float:
    """Probability that an *In* loss is <= an *Ex* loss, over all (In, Ex) pairs.

    Computed by sorting, O((m + n) log n), so thousands of hull samples cost nothing.

    Args:
        in_losses: Losses of the *In* models (lower is better).
        ex_losses: Losses of the *Ex* models.

    Raises:
        WeightscapeError: If either group is empty or holds a non-finite loss.

    >>> pb([1.0, 2.0], [1.5, 3.0])  # pairs: 1<=1.5, 1<=3, 2>1.5, 2<=3
    0.75
    >>> pb([1.0], [1.0])  # a tie counts for In
    1.0
    """
    inside = _losses(in_losses, "in_losses")
    outside = np.sort(_losses(ex_losses, "ex_losses"))
    # For each In loss, the Ex losses >= it: all but those strictly smaller.
    at_least = len(outside) - np.searchsorted(outside, inside, side="left")
    return float(at_least.sum() / (len(inside) * len(outside)))


def loss_distribution(losses: ArrayLike) -> dict[str, Any]:
    """Summary of one group's losses: count, mean, std, min, quartiles, max.

    >>> loss_distribution([1.0, 2.0, 3.0])["median"]
    2.0
    """
    values = _losses(losses, "losses")
    q1, median, q3 = np.quantile(values, [0.25, 0.5, 0.75])
    return {
        "n": len(values),
        "mean": float(values.mean()),
        "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
        "min": float(values.min()),
        "q1": float(q1),
        "median": float(median),
        "q3": float(q3),
        "max": float(values.max()),
    }


def _losses(values: ArrayLike, name: str) -> np.ndarray:
    array = as_finite_1d(values, name, "pb")
    if len(array) == 0:
        raise WeightscapeError(
            f"The '{name}' parameter of pb must hold at least one loss. Got none: the group is "
            "empty; check which models the group selects."
        )
    return array
