"""Path types: functions from t values to coefficient rows over anchor checkpoints.

Every point weightscape evaluates is ``theta(t) = sum_i c_i(t) * theta_i`` over the anchors of a
path, so a path type only has to say what the coefficients are; the evaluation engine mixes the
weights. A new path type is one class with a ``name`` and a ``_coefficients`` method plus one
``@register_path`` line, and the conformance suites in ``tests/test_geometry.py`` and
``tests/test_conformance.py`` check it through :data:`PATHS` automatically.

Rows at ``t = 0`` and ``t = 1`` are exact one-hot vectors (first and last anchor): the engine relies
on them to reproduce the anchors bit for bit and to reuse stored endpoint results.
"""

from __future__ import annotations

import math
import numbers
from typing import ClassVar

import numpy as np
from numpy.typing import ArrayLike

from weightscape.errors import WeightscapeError, unknown_name_error
from weightscape.validation import as_finite_1d

__all__ = [
    "PATHS",
    "BezierPath",
    "LinearPath",
    "PathType",
    "PolyChainPath",
    "get_path",
    "path_names",
    "register_path",
]


class PathType:
    """Base class of path types: validates anchors and t, then delegates to ``_coefficients``.

    Subclasses set the class attributes and implement ``_coefficients(t)``, which receives a finite
    float64 1-D array already checked against the path's domain.

    Attributes:
        name: Registry name, used in study files and on the command line.
        min_anchors: Fewest anchors the path accepts.
        max_anchors: Most anchors the path accepts (``None``: no limit).
        extrapolates: Whether t may lie outside [0, 1].
        affine: Whether every row sums to 1 (a point of the anchors' affine hull). A move toward
            the origin or along a direction is not affine; the conformance suite checks the sum
            where this is set.
        n_anchors: Number of anchors of this instance (first = ``t = 0``, last = ``t = 1``).
    """

    name: ClassVar[str]
    min_anchors: ClassVar[int] = 2
    max_anchors: ClassVar[int | None] = None
    extrapolates: ClassVar[bool] = False
    affine: ClassVar[bool] = True

    def __init__(self, n_anchors: int) -> None:
        low, high = self.min_anchors, self.max_anchors
        if high is None:
            requirement = f"an int >= {low}"
        elif high == low:
            requirement = f"exactly {low}"
        else:
            requirement = f"an int in [{low}, {high}]"
        is_int = isinstance(n_anchors, numbers.Integral) and not isinstance(n_anchors, bool)
        if not is_int or n_anchors < low or (high is not None and n_anchors > high):
            raise WeightscapeError(
                f"The 'n_anchors' parameter of path '{self.name}' must be {requirement}. "
                f"Got {n_anchors!r} instead."
            )
        self.n_anchors = int(n_anchors)

    def coefficients(self, t: ArrayLike) -> np.ndarray:
        """Coefficient rows over the anchors for each t.

        Args:
            t: A number or a 1-D sequence of numbers.

        Returns:
            float64 array of shape ``(len(t), n_anchors)``; a scalar t gives one row.

        Raises:
            WeightscapeError: If t is not finite, not 1-D, or outside [0, 1] for a path that
                does not extrapolate.
        """
        values = as_finite_1d(t, "t", f"path '{self.name}'")
        if not self.extrapolates and values.size:
            outside = np.flatnonzero((values < 0.0) | (values > 1.0))
            if outside.size:
                allowed = ", ".join(n for n in path_names() if PATHS[n].extrapolates) or "none"
                raise WeightscapeError(
                    f"The 't' values of path '{self.name}' must lie in [0, 1]. Got "
                    f"{values[outside[0]]} instead. Paths that extrapolate: {allowed}."
                )
        return self._coefficients(values)

    def _coefficients(self, t: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n_anchors={self.n_anchors})"


PATHS: dict[str, type[PathType]] = {}
"""Registry of path types by name; filled by :func:`register_path`."""


def register_path(cls: type[PathType]) -> type[PathType]:
    """Class decorator adding a path type to :data:`PATHS` under its ``name``."""
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name:
        raise TypeError(f"{cls.__name__} needs a non-empty class attribute 'name'.")
    if name in PATHS and PATHS[name] is not cls:
        raise ValueError(f"Path type '{name}' is already registered by {PATHS[name].__name__}.")
    PATHS[name] = cls
    return cls


def path_names() -> list[str]:
    """Sorted names of the registered path types.

    >>> path_names()
    ['bezier', 'linear', 'polychain']
    """
    return sorted(PATHS)


def get_path(name: str, n_anchors: int) -> PathType:
    """Build the path type registered as ``name`` over ``n_anchors`` anchors.

    Args:
        name: A name from :func:`path_names`.
        n_anchors: Number of anchors, first at ``t = 0`` and last at ``t = 1``.

    Raises:
        WeightscapeError: For an unknown name (with the closest valid one) or a number of anchors
            the path type does not accept.

    >>> get_path("bezier", 3).coefficients(0.5)
    array([[0.25, 0.5 , 0.25]])
    """
    if name not in PATHS:
        raise unknown_name_error("path", str(name), PATHS)
    return PATHS[name](n_anchors)


@register_path
class LinearPath(PathType):
    """The straight line ``(1 - t, t)`` between two anchors; t outside [0, 1] extrapolates.

    Extrapolation past either end is how Gueta et al. probe where a region of good models ends.

    >>> LinearPath(2).coefficients([0.0, 0.25, 2.0])
    array([[ 1.  ,  0.  ],
           [ 0.75,  0.25],
           [-1.  ,  2.  ]])
    """

    name = "linear"
    max_anchors = 2
    extrapolates = True

    def _coefficients(self, t: np.ndarray) -> np.ndarray:
        # 1 - 0 and 1 - 1 are exact, so the end rows are exact one-hot vectors.
        return np.stack([1.0 - t, t], axis=1)


@register_path
class BezierPath(PathType):
    """Bezier curve over ``(a, controls..., b)``: the Bernstein basis of order ``n_anchors - 1``.

    ``c_k(t) = C(n-1, k) t^k (1-t)^(n-1-k)``; with one control point this is the quadratic curve
    ``((1-t)^2, 2t(1-t), t^2)`` used to find low-loss curves (Garipov et al.), and with no control
    point it is the line.

    >>> BezierPath(3).coefficients([0.0, 0.5, 1.0])
    array([[1.  , 0.  , 0.  ],
           [0.25, 0.5 , 0.25],
           [0.  , 0.  , 1.  ]])
    """

    name = "bezier"

    def _coefficients(self, t: np.ndarray) -> np.ndarray:
        order = self.n_anchors - 1
        k = np.arange(self.n_anchors)
        binomials = np.array([math.comb(order, i) for i in k], dtype=np.float64)
        # 0.0 ** 0 == 1.0, so t = 0 and t = 1 give exact one-hot rows.
        return binomials * t[:, None] ** k * (1.0 - t[:, None]) ** (order - k)


@register_path
class PolyChainPath(PathType):
    """Polygonal chain through the anchors in order, the knots equally spaced in t.

    Segment ``j`` covers ``t`` in ``[j/(n-1), (j+1)/(n-1)]`` and mixes anchors ``j`` and ``j+1``
    linearly; the coefficient of anchor ``i`` is the hat function ``max(0, 1 - |t (n-1) - i|)``.

    >>> PolyChainPath(3).coefficients([0.25, 0.5])
    array([[0.5, 0.5, 0. ],
           [0. , 1. , 0. ]])
    """

    name = "polychain"

    def _coefficients(self, t: np.ndarray) -> np.ndarray:
        position = t * (self.n_anchors - 1)  # in anchor units: knot i sits at position i
        # A knot written as a float (t = 1/3) lands within a few ulps of an integer; snap it so
        # that the row is an exact one-hot vector and the anchor is reproduced bit for bit.
        nearest = np.rint(position)
        snap = np.abs(position - nearest) <= 4 * np.finfo(np.float64).eps * np.maximum(1.0, nearest)
        position = np.where(snap, nearest, position)
        anchors = np.arange(self.n_anchors)
        return np.maximum(0.0, 1.0 - np.abs(position[:, None] - anchors))
