"""Grids of t values: where along a path to evaluate.

The papers weightscape reproduces evaluate paths on fixed grids: Qin et al. use 26 evenly spaced
points (``k/25``), Juneja et al. 10-11, and Gueta et al. extrapolate in logarithmic steps from 1 to
32 past one end and from 0 to -31 past the other. The ends of every grid are exact (0.0, 1.0,
``reach``) so that they hit the anchors exactly and endpoint results are reused.
"""

from __future__ import annotations

import numbers

import numpy as np

from weightscape.errors import WeightscapeError
from weightscape.validation import check_int

__all__ = ["even_grid", "log_extrapolation_grid", "parse_t_values"]


def even_grid(n: int) -> np.ndarray:
    """``n`` evenly spaced t values over [0, 1], both ends included.

    Computed as ``k / (n - 1)`` so that each value is the correctly rounded fraction and the ends
    are exactly 0.0 and 1.0.

    Args:
        n: Number of points, at least 2.

    Raises:
        WeightscapeError: If ``n`` is not an int >= 2.

    >>> even_grid(5)
    array([0.  , 0.25, 0.5 , 0.75, 1.  ])
    """
    n = check_int(n, "n", "even_grid", 2)
    return np.arange(n, dtype=np.float64) / (n - 1)


def log_extrapolation_grid(steps: int = 10, reach: float = 32.0) -> tuple[np.ndarray, np.ndarray]:
    """t values for extrapolating a line past both anchors in logarithmic steps (Gueta et al.).

    ``forward`` advances geometrically from 1 (the second anchor) to ``reach``; ``backward`` is
    ``1 - forward``, the mirror image past the first anchor, from 0 to ``1 - reach``. With the
    defaults that is "10 steps in logarithmic advances from 1 to 32 and similarly from 0 to -31".

    Args:
        steps: Number of points on each side, at least 2.
        reach: Largest forward t, a finite number > 1.

    Returns:
        ``(forward, backward)``, each of length ``steps``; ``forward[0] == 1.0``,
        ``forward[-1] == reach``, ``backward[0] == 0.0``, ``backward[-1] == 1 - reach``.

    Raises:
        WeightscapeError: If ``steps`` or ``reach`` is invalid.

    >>> forward, backward = log_extrapolation_grid(steps=6, reach=32.0)
    >>> forward
    array([ 1.,  2.,  4.,  8., 16., 32.])
    >>> backward
    array([  0.,  -1.,  -3.,  -7., -15., -31.])
    """
    steps = check_int(steps, "steps", "log_extrapolation_grid", 2)
    valid_reach = isinstance(reach, numbers.Real) and not isinstance(reach, bool)
    if not valid_reach or not np.isfinite(reach) or reach <= 1.0:
        raise WeightscapeError(
            "The 'reach' parameter of log_extrapolation_grid must be a finite number > 1. "
            f"Got {reach!r} instead."
        )
    forward = np.geomspace(1.0, float(reach), steps)
    forward[0], forward[-1] = 1.0, float(reach)  # exact ends, whatever geomspace rounds to
    return forward, 1.0 - forward


def parse_t_values(text: str) -> np.ndarray:
    """Parse a comma-separated list of t values such as ``"0,0.25,0.5,1"`` or ``"-1,0,1,2"``.

    Order and repeats are kept as written; whitespace around items is ignored.

    Raises:
        WeightscapeError: Naming the first item that is empty or not a finite number.

    >>> parse_t_values("0, 0.25,0.5,1")
    array([0.  , 0.25, 0.5 , 1.  ])
    """
    if not isinstance(text, str) or not text.strip():
        raise WeightscapeError(
            "The t values must be a comma-separated list of numbers such as '0,0.5,1'. "
            f"Got {text!r} instead."
        )
    values = []
    for position, token in enumerate(text.split(","), start=1):
        try:
            value = float(token)
        except ValueError:
            value = float("nan")
        if not np.isfinite(value):
            raise WeightscapeError(
                f"Could not read t value {token.strip()!r} (item {position} of {text!r}): "
                "each item must be a finite number such as 0.5 or -1."
            )
        values.append(value)
    return np.array(values, dtype=np.float64)
