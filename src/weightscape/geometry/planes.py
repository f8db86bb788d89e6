"""The plane through three models, as coefficient rows over the three anchors.

Garipov et al. (2018) and Juneja et al. (2023) draw the loss surface on the plane through three
models ``theta_1, theta_2, theta_3`` with an orthonormal basis from Gram-Schmidt:

    u = d2 / ||d2||,   v = (d3 - <d3, u> u) / ||d3 - <d3, u> u||,   d_k = theta_k - theta_1,

and the point with plane coordinates ``(x, y)`` is ``theta_1 + x u + y v``. Since ``u`` and ``v``
are combinations of the anchors, so is every point of the plane: a coefficient row over
``(theta_1, theta_2, theta_3)`` that sums to 1. All of it follows from the 3 x 3 Gram matrix
``G_ij = <theta_i - b, theta_j - b>`` for any base ``b``; only the differences
``<d_a, d_b> = G_ab - G_a1 - G_1b + G_11`` enter. Pass the Gram matrix taken with ``b = theta_1``
(``gram_matrix(anchors, space, base=anchors[0])``): then those differences are read off directly,
instead of as small differences of the huge raw inner products ``<theta_i, theta_j>``, which
would lose most of their digits for nearby models.

Rows are computed as barycentric coordinates ``theta_1 + beta d2 + gamma d3``, so the models' own
coordinates give exact one-hot rows. Even so, evaluations include :func:`model_rows` as separate
points rather than rely on a floating coordinate landing on a model. numpy only.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from weightscape.errors import WeightscapeError
from weightscape.validation import check_int

__all__ = ["PlaneBasis", "model_rows", "plane_basis", "plane_coefficients", "plane_grid"]


@dataclass(frozen=True)
class PlaneBasis:
    """An orthonormal basis of the plane through three models, over the three anchors.

    Attributes:
        u: Coefficients (3,) of the first basis vector, along ``theta_2 - theta_1``.
        v: Coefficients (3,) of the second, orthogonal to ``u``, toward ``theta_3``.
        model_xy: Plane coordinates (3, 2) of the models: ``(0, 0)``, ``(||d2||, 0)`` and
            ``(<d3, u>, ||d3 - <d3, u> u||)``; the last y is > 0.
    """

    u: np.ndarray
    v: np.ndarray
    model_xy: np.ndarray


def plane_basis(
    gram: ArrayLike, names: Sequence[str] | None = None, rtol: float = 1e-6
) -> PlaneBasis:
    """Gram-Schmidt on ``theta_2 - theta_1`` and ``theta_3 - theta_1``, from inner products only.

    Args:
        gram: 3 x 3 Gram matrix of the models about any base (best: ``theta_1``, see the module).
        names: The three models' names, used in error messages.
        rtol: Smallest sine of the angle between ``d2`` and ``d3`` accepted as a plane.

    Raises:
        WeightscapeError: If the Gram matrix is not 3 x 3, symmetric and finite, or the models do
            not span a plane (two coincide, or all three lie on one line).

    >>> basis = plane_basis([[0, 0, 0], [0, 4, 2], [0, 2, 2]])  # 0, (2, 0), (1, 1)
    >>> basis.u.tolist(), basis.v.tolist()
    ([-0.5, 0.5, 0.0], [-0.5, -0.5, 1.0])
    >>> basis.model_xy.tolist()
    [[0.0, 0.0], [2.0, 0.0], [1.0, 1.0]]
    """
    g = _check_gram(gram)
    d22 = g[1, 1] - 2.0 * g[0, 1] + g[0, 0]  # ||d2||^2
    d23 = g[1, 2] - g[0, 1] - g[0, 2] + g[0, 0]  # <d2, d3>
    d33 = g[2, 2] - 2.0 * g[0, 2] + g[0, 0]  # ||d3||^2
    first, second, third = _labels(names)
    # squared distances within rounding of the inner products count as 0
    tiny = 64 * np.finfo(np.float64).eps * max(d22, d33, float(np.abs(np.diag(g)).max()))
    for (a, b), squared in (((second, first), d22), ((third, first), d33)):
        if squared <= tiny:
            raise _degenerate(f"{a} and {b} are the same point (distance 0)")
    if d22 - 2.0 * d23 + d33 <= tiny:
        raise _degenerate(f"{third} and {second} are the same point (distance 0)")
    norm2 = float(np.sqrt(d22))
    along = float(d23 / norm2)  # <d3, u>
    height = float(np.sqrt(max(d33 - along * along, 0.0)))
    if height <= rtol * np.sqrt(d33):
        raise _degenerate(
            f"{first}, {second} and {third} lie on one line (the angle at {first} is "
            f"{_degrees(along, d33)} degrees)"
        )
    u = np.array([-1.0, 1.0, 0.0]) / norm2
    v = (np.array([-1.0, 0.0, 1.0]) - along * u) / height
    return PlaneBasis(u=u, v=v, model_xy=np.array([[0.0, 0.0], [norm2, 0.0], [along, height]]))


def plane_coefficients(basis: PlaneBasis, x: ArrayLike, y: ArrayLike) -> np.ndarray:
    """Coefficient rows of the points ``theta_1 + x u + y v``; shape ``broadcast(x, y) + (3,)``.

    Each row is ``(1 - beta - gamma, beta, gamma)`` with ``beta = (x - a y / h) / ||d2||`` and
    ``gamma = y / h``, where ``theta_3`` sits at ``(a, h)``; rows sum to 1 (up to rounding) and
    the models' own coordinates give exact one-hot rows.

    >>> basis = plane_basis([[0, 0, 0], [0, 4, 2], [0, 2, 2]])  # 0, (2, 0), (1, 1)
    >>> plane_coefficients(basis, [0.0, 2.0, 1.0, 0.5], [0.0, 0.0, 1.0, 0.5]).tolist()
    [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.5, 0.0, 0.5]]
    """
    xs, ys = np.broadcast_arrays(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64))
    (_, _), (norm2, _), (along, height) = basis.model_xy
    gamma = ys / height
    beta = (xs - along * gamma) / norm2
    return np.stack([1.0 - beta - gamma, beta, gamma], axis=-1)


def plane_grid(
    basis: PlaneBasis, resolution: tuple[int, int] = (21, 21), margin: float = 0.2
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """An evenly spaced grid over the models' bounding box, widened by ``margin`` on every side.

    The box spans the three models' coordinates; each side moves out by ``margin`` times the box's
    size along that axis. Nodes within a billionth of a step of a model's coordinate are set to it
    exactly, so when the resolution lines up (for a box whose x range starts at theta_1, when
    ``(n - 1) * margin / (1 + 2 * margin)`` is an integer: margin 0.2 with n = 8, 15, 22;
    margin 0.25 with n = 7, 13, 19) a node lands exactly on the model and shares its result.

    Args:
        basis: The plane, from :func:`plane_basis`.
        resolution: Nodes ``(n, m)`` along x and y, each at least 2.
        margin: Fraction of the box's size added on each side, a finite number >= 0.

    Returns:
        ``(xs, ys, rows)``: xs (n,), ys (m,), and rows (m * n, 3) in row-major order, so row
        ``j * n + i`` is the point ``(xs[i], ys[j])`` and ``rows.reshape(m, n, 3)`` is the grid.

    >>> basis = plane_basis([[0, 0, 0], [0, 4, 2], [0, 2, 2]])  # 0, (2, 0), (1, 1)
    >>> xs, ys, rows = plane_grid(basis, resolution=(5, 3), margin=0.5)
    >>> xs.tolist(), ys.tolist(), rows.shape
    ([-1.0, 0.0, 1.0, 2.0, 3.0], [-0.5, 0.5, 1.5], (15, 3))
    """
    n, m = _check_resolution(resolution)
    valid = isinstance(margin, numbers.Real) and not isinstance(margin, bool)
    if not valid or not np.isfinite(margin) or margin < 0:
        raise WeightscapeError(
            "The 'margin' parameter of plane_grid must be a finite number >= 0. "
            f"Got {margin!r} instead."
        )
    xy = basis.model_xy
    axes = [_axis(xy[:, k], count, float(margin)) for k, count in ((0, n), (1, m))]
    xs, ys = axes
    grid_x, grid_y = np.meshgrid(xs, ys)  # (m, n) each
    return xs, ys, plane_coefficients(basis, grid_x.ravel(), grid_y.ravel())


def model_rows() -> np.ndarray:
    """The three models' own points: exact one-hot rows, so the engine reproduces them bit for bit.

    >>> model_rows().tolist()
    [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    """
    return np.eye(3)


def _axis(coordinates: np.ndarray, count: int, margin: float) -> np.ndarray:
    low, high = float(coordinates.min()), float(coordinates.max())
    pad = margin * (high - low)
    nodes = np.linspace(low - pad, high + pad, count)
    step = (high - low + 2 * pad) / (count - 1)
    for value in coordinates:
        nodes[np.abs(nodes - value) <= 1e-9 * step] = value
    return nodes + 0.0  # no -0.0


def _check_gram(gram: ArrayLike) -> np.ndarray:
    try:
        g = np.asarray(gram, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise WeightscapeError(
            f"The 'gram' parameter of plane_basis must be a 3 x 3 matrix. Got {gram!r} instead."
        ) from error
    if g.shape != (3, 3) or not np.all(np.isfinite(g)):
        raise WeightscapeError(
            "The 'gram' parameter of plane_basis must be a finite 3 x 3 matrix (inner products "
            f"of three models). Got shape {g.shape} instead."
        )
    if not np.allclose(g, g.T, rtol=1e-9, atol=1e-12 * max(np.abs(g).max(), 1.0)):
        raise WeightscapeError("The 'gram' parameter of plane_basis must be symmetric.")
    return (g + g.T) / 2.0


def _check_resolution(resolution: object) -> tuple[int, int]:
    if not isinstance(resolution, Sequence) or len(resolution) != 2:
        raise WeightscapeError(
            "The 'resolution' parameter of plane_grid must be a pair (n, m) of ints >= 2. "
            f"Got {resolution!r} instead."
        )
    return tuple(check_int(r, "resolution", "plane_grid", 2) for r in resolution)


def _labels(names: Sequence[str] | None) -> list[str]:
    if names is None:
        return [f"theta_{k}" for k in (1, 2, 3)]
    if len(names) != 3:
        raise WeightscapeError(
            f"The 'names' parameter of plane_basis must hold 3 names. Got {list(names)!r} instead."
        )
    return [f"theta_{k} ('{name}')" for k, name in enumerate(names, start=1)]


def _degrees(along: float, d33: float) -> str:
    cosine = np.clip(along / np.sqrt(d33), -1.0, 1.0)
    return f"{np.degrees(np.arccos(cosine)):.3g}"


def _degenerate(problem: str) -> WeightscapeError:
    return WeightscapeError(
        f"The three models span no plane: {problem}. Choose three distinct models that do not "
        "lie on one line in the parameter space (or widen the space)."
    )
