"""Summaries of a curve measured along a path: barrier height, convexity gap, area under it.

Every function takes the values (loss, error, accuracy, ...) measured on an evenly spaced grid of
t over [0, 1], first value at t = 0 and last at t = 1, as produced by
:func:`weightscape.geometry.even_grid`. By default lower values are better (a loss); pass
``higher_is_better=True`` for accuracy-like values, which is the same as negating them.

Each function is a row of :data:`~weightscape.metrics.registry.CURVE_SUMMARIES`: its decorator
declares the arguments it takes, its properties, the grid matrices built from it and a
hand-worked example. Walks and grids iterate that registry, so a new summary is one function and
one decorator here.
"""

from __future__ import annotations

import numbers

import numpy as np
from numpy.typing import ArrayLike

from weightscape.errors import WeightscapeError
from weightscape.metrics.registry import CurveExample, register_curve_summary
from weightscape.validation import as_finite_1d

__all__ = ["auc", "auc_t", "barrier_height", "best_t", "best_value", "convexity_gap"]

# 4 t (1 - t) at t = 0, 1/4, 1/2, 3/4, 1: the analytic curve of the registry rows' examples.
PARABOLA = (0.0, 0.75, 1.0, 0.75, 0.0)

# numpy >= 2.0 renamed trapz to trapezoid; the project allows numpy >= 1.26.
_trapezoid = getattr(np, "trapezoid", None) or np.trapz


def _curve(values: ArrayLike, owner: str, higher_is_better: bool = False) -> np.ndarray:
    """Validate a curve and return it as float64, negated when higher values are better."""
    curve = as_finite_1d(values, "values", owner)
    if np.ndim(values) == 0 or curve.size < 2:
        raise WeightscapeError(
            f"The 'values' parameter of {owner} must be a 1-D sequence of at least 2 numbers "
            f"(t = 0 and t = 1). Got {curve.size} value(s) instead."
        )
    return -curve if higher_is_better else curve


def _excess_over_chords(curve: np.ndarray, start: int) -> np.ndarray:
    """Height of each point above the chords that start at ``start``.

    Returns an array ``gaps[j, k]`` for end points ``j`` and inner points ``k`` (both indexing
    ``curve`` after ``start``) holding ``curve[k]`` minus the chord from ``start`` to ``j``
    evaluated at ``k``, with ``-inf`` where ``k`` is not strictly inside ``(start, j)``.
    """
    ends = np.arange(start + 2, curve.size)[:, None]  # (J, 1)
    inner = np.arange(start + 1, curve.size - 1)[None, :]  # (1, K)
    # Same arithmetic as the barrier height, so the full chord reproduces it exactly.
    fraction = (inner - start) / (ends - start)
    chord = curve[start] + fraction * (curve[ends] - curve[start])
    return np.where(inner < ends, curve[inner] - chord, -np.inf)


@register_curve_summary(
    "barrier_height",
    description="Largest rise above the chord joining the two ends (Entezari et al.).",
    example=CurveExample(PARABOLA, expected=1.0),  # the chord is 0; the top is 1 at t = 1/2
    needs=("higher_is_better",),
    properties=(
        "nonnegative",
        "offset_invariant",
        "scale_equivariant",
        "reversal_symmetric",
        "zero_on_convex",
    ),
    grid={"loss": "loss_barrier", "accuracy": "accuracy_drop"},
)
def barrier_height(values: ArrayLike, *, higher_is_better: bool = False) -> float:
    """Largest rise of the curve above the chord joining its two ends (Entezari et al.).

    ``max_k (v_k - ((1 - t_k) v_0 + t_k v_last))`` over the grid, never below 0, so a curve that
    stays under its chord (linearly connected end points) has 0. With ``higher_is_better`` the
    barrier is the largest drop below the chord.

    Args:
        values: At least 2 finite values on an evenly spaced grid over [0, 1].
        higher_is_better: Whether higher values are better (accuracy) rather than lower (loss).

    Returns:
        The barrier height, >= 0, in the units of ``values``.

    Raises:
        WeightscapeError: If ``values`` is not 1-D, has fewer than 2 values or a non-finite one.

    >>> barrier_height([0.2, 0.9, 0.4])
    0.6
    >>> round(barrier_height([0.9, 0.5, 0.8], higher_is_better=True), 6)  # accuracy drops
    0.35
    """
    curve = _curve(values, "barrier_height", higher_is_better)
    n = curve.size
    t = np.arange(1, n - 1) / (n - 1)  # inner grid points; the ends lie on the chord
    chord = curve[0] + t * (curve[-1] - curve[0])
    excess = curve[1:-1] - chord
    return float(max(0.0, excess.max(initial=0.0)))


@register_curve_summary(
    "convexity_gap",
    description="Largest rise above the chord of any sub-segment (Juneja et al. 2023, eq. 4).",
    # The parabola is concave, so its global chord (0 to 0) is its lowest: the gap is 1.
    example=CurveExample(PARABOLA, expected=1.0),
    needs=("higher_is_better",),
    properties=(
        "nonnegative",
        "offset_invariant",
        "scale_equivariant",
        "reversal_symmetric",
        "zero_on_convex",
    ),
    grid={"loss": "loss_convexity_gap", "accuracy": "accuracy_convexity_gap"},
)
def convexity_gap(values: ArrayLike, *, higher_is_better: bool = False) -> float:
    """Largest barrier height over every sub-segment of the curve (Juneja et al. 2023, eq. 4).

    For each pair of grid points ``i < j`` the points between them form a sub-curve with its own
    chord from ``v_i`` to ``v_j``; the convexity gap is the largest rise above any such chord. It
    is 0 exactly for convex curves and is never smaller than :func:`barrier_height`: a bump on a
    steep descent can hide under the global chord but not under a local one.

    Args:
        values: At least 2 finite values on an evenly spaced grid over [0, 1].
        higher_is_better: Whether higher values are better (accuracy) rather than lower (loss).

    Returns:
        The convexity gap, >= 0, in the units of ``values``.

    Raises:
        WeightscapeError: If ``values`` is not 1-D, has fewer than 2 values or a non-finite one.

    >>> barrier_height([4.0, 1.0, 1.5, 0.5, 0.0])  # the bump hides under the global chord
    0.0
    >>> round(convexity_gap([4.0, 1.0, 1.5, 0.5, 0.0]), 6)  # chord from 1.0 to 0.0 reveals it
    0.833333
    """
    curve = _curve(values, "convexity_gap", higher_is_better)
    # One (ends x inner points) slab per start point: O(n^2) memory, O(n^3) time, fine for the
    # grids of at most a few hundred points that a path is evaluated on.
    largest = 0.0
    for start in range(curve.size - 2):
        largest = max(largest, float(_excess_over_chords(curve, start).max()))
    return largest


@register_curve_summary(
    "auc",
    description="Area under the curve above its minimum along the path measured in Euclidean "
    "distance between its ends, trapezoid rule (Juneja et al.'s AreaUnderCurve).",
    # Path length 2: spacing 2/4; (0 / 2 + 0.75 + 1 + 0.75 + 0 / 2) * 2/4 = 1.25.
    example=CurveExample(PARABOLA, expected=1.25, length=2.0),
    needs=("length",),
    properties=("nonnegative", "offset_invariant", "scale_equivariant", "reversal_symmetric"),
    grid={"loss": "loss_auc"},
)
def auc(values: ArrayLike, *, length: float = 1.0) -> float:
    """Area under the curve above its minimum, by the trapezoid rule (as Juneja et al.).

    The minimum is subtracted first so that the area measures how far the path rises above its
    best point, independent of the curve's offset (Juneja et al., appendix I). Their code
    (``AreaUnderCurve(euc_dist, losses)``) spaces the points by ``euc_dist / (n - 1)``, the path
    measured in Euclidean distance between the two models; walks and grids pass that distance
    as ``length``, and report the area per unit t as :func:`auc_t`.

    Args:
        values: At least 2 finite values on an evenly spaced grid along the path.
        length: Length of the whole path, a finite number > 0; the spacing is
            ``length / (len(values) - 1)``. The default 1 is the area per unit t.

    Returns:
        The area, >= 0, in units of ``values`` times ``length``.

    Raises:
        WeightscapeError: For invalid ``values`` or ``length``.

    >>> auc([0.0, 1.0, 0.0])
    0.5
    >>> auc([3.0, 1.0], length=2.0)
    2.0
    """
    curve = _curve(values, "auc")
    valid_length = isinstance(length, numbers.Real) and not isinstance(length, bool)
    if not valid_length or not np.isfinite(length) or length <= 0:
        raise WeightscapeError(
            f"The 'length' parameter of auc must be a finite number > 0. Got {length!r} instead."
        )
    return float(_trapezoid(curve - curve.min(), dx=float(length) / (curve.size - 1)))


@register_curve_summary(
    "auc_t",
    description="Area under the curve above its minimum per unit t (the path from t = 0 to 1), "
    "trapezoid rule: auc divided by the path's length.",
    # (0 / 2 + 0.75 + 1 + 0.75 + 0 / 2) * 1/4; the exact integral of 4 t (1 - t) would be 2/3.
    example=CurveExample(PARABOLA, expected=0.625),
    properties=("nonnegative", "offset_invariant", "scale_equivariant", "reversal_symmetric"),
    grid={"loss": "loss_auc_t"},
)
def auc_t(values: ArrayLike) -> float:
    """Area under the curve above its minimum with the path measured in t from 0 to 1.

    The same area as :func:`auc` with ``length=1``; unlike :func:`auc` it does not grow with
    the distance between the two ends, so it compares the shape of paths of different lengths.

    >>> auc_t([0.0, 1.0, 0.0])
    0.5
    """
    return auc(values, length=1.0)


@register_curve_summary(
    "best_t",
    description="The t of the best value (the first, on ties).",
    example=CurveExample(PARABOLA, expected=0.5, higher_is_better=True),
    needs=("higher_is_better", "ts"),
    properties=("nonnegative", "offset_invariant"),
)
def best_t(
    values: ArrayLike, *, higher_is_better: bool = False, ts: ArrayLike | None = None
) -> float:
    """Where along the path the best value lies: the t of the lowest (or highest) value.

    Args:
        values: At least 2 finite values.
        higher_is_better: Whether higher values are better (accuracy) rather than lower (loss).
        ts: The t of each value; by default the even grid over [0, 1].

    >>> best_t([0.9, 0.2, 0.4]), best_t([0.9, 0.2, 0.4], higher_is_better=True)
    (0.5, 0.0)
    """
    curve = _curve(values, "best_t", higher_is_better)
    grid = np.arange(curve.size) / (curve.size - 1) if ts is None else np.asarray(ts, float)
    if grid.shape != curve.shape:
        raise WeightscapeError(
            f"The 'ts' parameter of best_t must hold one t per value ({curve.size}). "
            f"Got {grid.size} instead."
        )
    return float(grid[np.argmin(curve)])


@register_curve_summary(
    "best",
    description="The best value on the path: the lowest loss, the highest accuracy.",
    example=CurveExample(PARABOLA, expected=1.0, higher_is_better=True),
    needs=("higher_is_better",),
    properties=("scale_equivariant", "reversal_symmetric"),
)
def best_value(values: ArrayLike, *, higher_is_better: bool = False) -> float:
    """The best value of the curve: its minimum, or its maximum when higher is better.

    >>> best_value([0.9, 0.2, 0.4]), best_value([0.9, 0.2, 0.4], higher_is_better=True)
    (0.2, 0.9)
    """
    curve = _curve(values, "best_value", higher_is_better)
    return -float(curve.min()) if higher_is_better else float(curve.min())
