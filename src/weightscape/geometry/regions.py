"""Points of a region of models, as coefficient rows over anchors (Gueta et al. 2023).

A group of ``n`` finetuned models spans a region. Its points, as coefficients over anchors:

- the centroid: ``1/n`` each;
- a sample of the convex hull (the paper's *In'*): Dirichlet(1, ..., 1) weights, which are
  uniform on the simplex, hence uniform over the hull when the models are affinely independent;
- a move from the centroid ``c`` by ``r`` times the mean model-to-centroid distance ``D``:
  toward a point ``p`` (the pretrained model, the origin of task-vector space):
  ``c + (r D / ||p - c||) (p - c)``; toward the zero vector (the origin of raw weight space):
  ``(1 - r D / ||c||) c``; or along a direction ``q - b`` between two anchors (a random
  direction ``q = b + v`` added to the pretrained ``b``): ``c + (r D / ||q - b||) (q - b)``.

Every length comes from the Gram matrix of the anchors (inner products about any common base),
so nothing here touches a tensor. numpy only.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from weightscape.errors import WeightscapeError
from weightscape.validation import as_finite_1d, check_int

__all__ = [
    "centroid_row",
    "distances_to_centroid",
    "hull_samples",
    "mean_distance_to_centroid",
    "move_along_direction",
    "move_toward_point",
    "move_toward_zero",
]


def centroid_row(n_members: int, n_anchors: int | None = None) -> np.ndarray:
    """Coefficients of the centroid of the first ``n_members`` of ``n_anchors`` anchors.

    >>> centroid_row(2, 3)
    array([0.5, 0.5, 0. ])
    """
    n_members = check_int(n_members, "n_members", "centroid_row", 1)
    total = n_members if n_anchors is None else check_int(n_anchors, "n_anchors", "centroid_row", 1)
    if total < n_members:
        raise WeightscapeError(
            f"The 'n_anchors' parameter of centroid_row must be >= n_members ({n_members}). "
            f"Got {total} instead."
        )
    row = np.zeros(total)
    row[:n_members] = 1.0 / n_members
    return row


def hull_samples(n_members: int, n_samples: int, seed: int = 0) -> np.ndarray:
    """Rows drawn uniformly from the simplex: points uniform in the members' convex hull.

    Returns:
        (n_samples, n_members) nonnegative rows that sum to 1 (Dirichlet with all alphas 1).

    >>> rows = hull_samples(3, 4, seed=0)
    >>> rows.shape, bool(np.allclose(rows.sum(axis=1), 1.0)), bool((rows >= 0).all())
    ((4, 3), True, True)
    """
    n_members = check_int(n_members, "n_members", "hull_samples", 2)
    n_samples = check_int(n_samples, "n_samples", "hull_samples", 1)
    seed = check_int(seed, "seed", "hull_samples", 0)
    return np.random.default_rng(seed).dirichlet(np.ones(n_members), size=n_samples)


def distances_to_centroid(gram: ArrayLike, members: Sequence[int]) -> np.ndarray:
    """Euclidean distance of each of the ``members`` to their centroid, from the Gram matrix.

    ``||w_i - c||^2 = G_ii - 2 mean_j G_ij + mean_jk G_jk`` over the members ``j, k``.

    >>> distances_to_centroid([[4.0, 0.0], [0.0, 0.0]], [0, 1])  # 2 e1 and 0: centroid e1
    array([1., 1.])
    """
    g = _gram(gram, "distances_to_centroid")
    idx = _members(members, len(g), "distances_to_centroid")
    block = g[np.ix_(idx, idx)]
    squared = np.diag(block) - 2 * block.mean(axis=1) + block.mean()
    return np.sqrt(np.clip(squared, 0.0, None))


def mean_distance_to_centroid(gram: ArrayLike, members: Sequence[int]) -> float:
    """Mean Euclidean distance of the ``members`` to their centroid (the unit of moves).

    >>> mean_distance_to_centroid([[1.0, 0.0], [0.0, 1.0]], [0, 1])  # e1, e2: centroid (.5, .5)
    0.7071067811865476
    """
    return float(distances_to_centroid(gram, members).mean())


def move_toward_point(
    gram: ArrayLike, members: Sequence[int], point: int, radii: ArrayLike
) -> np.ndarray:
    """Rows ``c + (r D / ||p - c||)(p - c)``: from the centroid toward anchor ``point``.

    Args:
        gram: Gram matrix of all anchors about any common base.
        members: Anchor indices of the group whose centroid ``c`` is the start.
        point: Anchor index of the target ``p`` (e.g. the pretrained model).
        radii: Distances from ``c`` in units of ``D``, the members' mean distance to ``c``.

    Returns:
        (len(radii), n_anchors) rows; each sums to 1.

    >>> g = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]])  # e1, e2, origin
    >>> move_toward_point(g, [0, 1], 2, [0.0, 1.0]).round(4).tolist()
    [[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]]
    """
    g = _gram(gram, "move_toward_point")
    idx = _members(members, len(g), "move_toward_point")
    point = _index(point, len(g), "point", "move_toward_point")
    radii = as_finite_1d(radii, "radii", "move_toward_point")
    centroid = centroid_over(idx, len(g))
    gap = _norm(g, np.eye(len(g))[point] - centroid, "the point and the centroid coincide")
    alphas = radii * mean_distance_to_centroid(g, idx) / gap
    return centroid[None, :] + alphas[:, None] * (np.eye(len(g))[point] - centroid)[None, :]


def move_toward_zero(gram: ArrayLike, members: Sequence[int], radii: ArrayLike) -> np.ndarray:
    """Rows ``(1 - r D / ||c||) c``: from the centroid toward the zero vector (raw-weight origin).

    The ``gram`` must hold raw inner products (base zero) here: ``||c||`` is a raw norm.
    Rows sum to ``1 - r D / ||c||``, which the working model handles like any combination.
    """
    g = _gram(gram, "move_toward_zero")
    idx = _members(members, len(g), "move_toward_zero")
    radii = as_finite_1d(radii, "radii", "move_toward_zero")
    centroid = centroid_over(idx, len(g))
    scale = radii * mean_distance_to_centroid(g, idx) / _norm(g, centroid, "the centroid is 0")
    return (1.0 - scale)[:, None] * centroid[None, :]


def move_along_direction(
    gram: ArrayLike, members: Sequence[int], head: int, tail: int, radii: ArrayLike
) -> np.ndarray:
    """Rows ``c + (r D / ||q - b||)(q - b)``: from the centroid along the direction ``q - b``.

    ``q`` is anchor ``head`` and ``b`` anchor ``tail`` (a random direction drawn about the
    pretrained model is ``q = b + v``). Rows sum to 1.

    >>> g = np.diag([1.0, 1.0, 4.0, 0.0])  # e1, e2, 2 e3, origin
    >>> move_along_direction(g, [0, 1], 2, 3, [1.0]).round(4).tolist()
    [[0.5, 0.5, 0.3536, -0.3536]]
    """
    g = _gram(gram, "move_along_direction")
    idx = _members(members, len(g), "move_along_direction")
    head = _index(head, len(g), "head", "move_along_direction")
    tail = _index(tail, len(g), "tail", "move_along_direction")
    radii = as_finite_1d(radii, "radii", "move_along_direction")
    direction = np.eye(len(g))[head] - np.eye(len(g))[tail]
    betas = radii * mean_distance_to_centroid(g, idx) / _norm(g, direction, "head equals tail")
    return centroid_over(idx, len(g))[None, :] + betas[:, None] * direction[None, :]


def centroid_over(members: Sequence[int], n_anchors: int) -> np.ndarray:
    """Coefficients ``1/len(members)`` on the given anchor indices, 0 elsewhere."""
    row = np.zeros(n_anchors)
    row[list(members)] = 1.0 / len(members)
    return row


def _norm(gram: np.ndarray, row: np.ndarray, degenerate: str) -> float:
    squared = float(row @ gram @ row)
    scale = max(float(np.abs(gram).max()), 1e-300)
    if squared <= 1e-12 * scale:
        raise WeightscapeError(f"Cannot move from the centroid: {degenerate} (length 0).")
    return float(np.sqrt(squared))


def _gram(gram: ArrayLike, owner: str) -> np.ndarray:
    g = np.asarray(gram, dtype=np.float64)
    if g.ndim != 2 or g.shape[0] != g.shape[1] or not np.isfinite(g).all():
        raise WeightscapeError(
            f"The 'gram' parameter of {owner} must be a finite square matrix. "
            f"Got shape {g.shape} instead."
        )
    return g


def _members(members: Sequence[int], n: int, owner: str) -> list[int]:
    idx = [_index(m, n, "members", owner) for m in members]
    if not idx or len(set(idx)) != len(idx):
        raise WeightscapeError(
            f"The 'members' parameter of {owner} must be distinct anchor indices, at least one. "
            f"Got {list(members)!r} instead."
        )
    return idx


def _index(value: object, n: int, name: str, owner: str) -> int:
    index = check_int(value, name, owner, 0)
    if index >= n:
        raise WeightscapeError(
            f"The '{name}' parameter of {owner} must index one of the {n} anchors. "
            f"Got {index} instead."
        )
    return index
