"""Adaptive barrier refinement: points where the curve along a path bends, not where it is flat.

A dense walk evaluates every point of a fixed grid (Qin et al.: 26 points, ``t = k/25``). Most
pairs of a basin have no barrier, and the barrier of those that do sits where the curve bends, so
the refinement evaluates a coarse subset of that dense grid (its *lattice*) and then adds lattice
points only where a barrier or a convexity gap could still hide. Every t it picks is a lattice
point, so its points are the dense walk's points: a store shared with a dense walk reuses them.
The coarse grid is 6 points, ``t = 0, 0.2, ..., 1``: the even grid that nests in ``k/25``
(25 = 5 x 5; 5 points would need ``t = 0.25``, off the lattice, and 26 points is no dyadic grid).

**The rule.** With ``e(t)`` the curve's height above the chord joining its two ends, after each
round every *gap* between neighbouring evaluated points that still holds unevaluated lattice
points gets

- its local concavity ``kappa``: the largest ``-v''`` of the three-point stencils at its two ends
  (0 where they are convex);
- a bound on what it can hide: under the assumption below, the curve inside rises at most
  ``safety * kappa * h**2 / 8`` above the segment joining its ends (``h`` its width), so the
  barrier inside is at most ``max(e_a, e_b) + safety * kappa * h**2 / 8``, and likewise for the
  largest rise of its ends above any chord spanning it (the convexity gap's sub-chords).

A gap is refined while either bound exceeds the current barrier (or convexity gap) by more than
``tol``: while some gap could raise the barrier only those are split, then those that could raise
the convexity gap. Of these the ``per_round`` most promising (the highest value predicted by the
parabolas through neighbouring points) are split at the lattice point nearest that parabola's
peak, kept at least a third of the gap from either end (a safeguarded parabolic step, as in
Brent's method), or at their middle when no parabola peaks inside. The walk stops when no gap can
hide more than ``tol`` (``"bound"``: one more round could then move neither estimate by more
than ``tol``), when every lattice point is evaluated (``"lattice"``), or when more is wanted but
``max_points`` are spent (``"budget"``: by default 40% of the lattice, 10 of 26).

**Assumption.** The curve is smooth on the scale of the coarse grid: inside a gap it bends no
more sharply (``-v''``) than ``safety`` times the stencils at the gap's ends measure. Convex
stretches (``v'' >= 0``, a basin's bowl, a monotone descent) are then certified from their ends
and cost nothing past the coarse grid; concave stretches (a barrier's top, a bump) are split until
their bound falls under ``tol`` or they reach the lattice's resolution. In practice: features
(bumps, steps) at least 0.08 wide (Gaussian sigma; 0.4 of the coarse spacing). On 15,730 such
seeded analytic curves (bowls, steps, broad barriers, bumps on bowls and slopes) the barrier came
within 0.003 of the dense 26-point one, with 6 points on convex curves and at most 10
(``tests/test_refine.py`` runs 1,500 of them).

**Failure mode.** A bump narrower than the coarse spacing that falls between two coarse points
can leave the coarse stencils convex (say, under a deep bowl): the rule then certifies that gap
and misses the bump (30 of 18,000 seeded curves, every one with features under 0.08 wide, missed
the dense barrier by more than 0.005). The dense grid has the same blind spot one level down (a
bump narrower than 1/25); more coarse points (``coarse``) narrow it at the cost of points. Curves
with several bumps can also run out of ``max_points`` before every bump is resolved
(``stopped == "budget"``).
``benchmarks/adaptive.py`` measures the error against dense walks of real pairs.

>>> settings = RefineSettings()
>>> coarse_indices(settings)
array([ 0,  5, 10, 15, 20, 25])
>>> result = refine_curve(lambda ts: 0.3 - 0.2 * ts * (1 - ts), settings)  # a convex bowl
>>> result.points_spent, result.barrier_height, result.stopped
(6, 0.0, 'bound')
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
from numpy.typing import ArrayLike

from weightscape.errors import WeightscapeError
from weightscape.validation import as_finite_1d, check_int

__all__ = [
    "RefineSettings",
    "Refinement",
    "auc_t_at",
    "barrier_height_at",
    "chord_excess",
    "coarse_indices",
    "convexity_gap_at",
    "next_indices",
    "refine_curve",
]


@dataclass(frozen=True)
class RefineSettings:
    """How an adaptive walk refines.

    Attributes:
        lattice: Points of the dense grid the refinement nests in, ``t = k / (lattice - 1)``;
            26 is Qin et al.'s grid.
        coarse: Evenly spaced lattice points evaluated first, both ends included;
            ``lattice - 1`` must be a multiple of ``coarse - 1`` (6 on 26: ``t = 0, 0.2, ... 1``).
        tol: The change of the barrier height or convexity gap worth another point.
        max_points: Most points one walk evaluates, the coarse ones included; ``None``: 40% of
            the lattice (10 of 26).
        per_round: Most gaps split per round (points evaluated together).
        safety: How much sharper than its ends measure a gap is assumed to bend at most.
    """

    lattice: int = 26
    coarse: int = 6
    tol: float = 0.001
    max_points: int | None = None
    per_round: int = 2
    safety: float = 2.0

    def __post_init__(self) -> None:
        owner = "RefineSettings"
        check_int(self.lattice, "lattice", owner, 3)
        check_int(self.coarse, "coarse", owner, 2)
        check_int(self.per_round, "per_round", owner, 1)
        if (self.lattice - 1) % (self.coarse - 1):
            raise WeightscapeError(
                f"The 'coarse' parameter of {owner} must nest in the lattice: lattice - 1 "
                f"({self.lattice - 1}) must be a multiple of coarse - 1. Got {self.coarse} instead."
            )
        if self.max_points is not None:
            check_int(self.max_points, "max_points", owner, self.coarse)
        for name in ("tol", "safety"):
            value = getattr(self, name)
            if not isinstance(value, numbers.Real) or isinstance(value, bool) or not value > 0:
                raise WeightscapeError(
                    f"The '{name}' parameter of {owner} must be a number > 0. "
                    f"Got {value!r} instead."
                )

    @property
    def budget(self) -> int:
        """The most points a walk evaluates."""
        if self.max_points is not None:
            return min(self.max_points, self.lattice)
        return max(self.coarse, math.floor(0.4 * self.lattice))

    def ts(self, indices: ArrayLike) -> np.ndarray:
        """The t of lattice indices, ``k / (lattice - 1)`` exactly as ``even_grid`` rounds it."""
        return np.asarray(indices, dtype=np.float64) / (self.lattice - 1)


@dataclass
class Refinement:
    """The outcome of :func:`refine_curve`: what was evaluated and what it shows.

    Attributes:
        indices: The evaluated lattice indices, increasing.
        ts: Their t.
        values: The curve at each t.
        barrier_height: :func:`barrier_height_at` of the evaluated points.
        convexity_gap: :func:`convexity_gap_at` of the evaluated points.
        rounds: Per round (the coarse grid is round 0): points so far, barrier, convexity gap.
        stopped: ``"bound"`` (no gap can hide more than ``tol``), ``"lattice"`` (every lattice
            point evaluated) or ``"budget"`` (``max_points`` reached).
        lattice: The dense grid's size, to compare the points spent with.
    """

    indices: np.ndarray
    ts: np.ndarray
    values: np.ndarray
    barrier_height: float
    convexity_gap: float
    stopped: str
    lattice: int
    rounds: list[tuple[int, float, float]] = field(default_factory=list)

    @property
    def points_spent(self) -> int:
        """Points evaluated (the ends included)."""
        return int(self.indices.size)


def coarse_indices(settings: RefineSettings) -> np.ndarray:
    """The lattice indices of the coarse grid: ``coarse`` evenly spaced, both ends included."""
    step = (settings.lattice - 1) // (settings.coarse - 1)
    return np.arange(0, settings.lattice, step)


def _curve(ts: ArrayLike, values: ArrayLike, owner: str) -> tuple[np.ndarray, np.ndarray]:
    t = as_finite_1d(ts, "ts", owner)
    v = as_finite_1d(values, "values", owner)
    if t.size != v.size or t.size < 2 or np.any(np.diff(t) <= 0):
        raise WeightscapeError(
            f"The 'ts' parameter of {owner} must hold at least 2 strictly increasing t, one per "
            f"value ({v.size}). Got {t.size} t instead."
        )
    return t, v


def chord_excess(ts: ArrayLike, values: ArrayLike) -> np.ndarray:
    """Height of each value above the chord joining the first and the last, at its t.

    >>> chord_excess([0.0, 0.3, 1.0], [1.0, 1.0, 0.0])
    array([0. , 0.3, 0. ])
    """
    t, v = _curve(ts, values, "chord_excess")
    fraction = (t - t[0]) / (t[-1] - t[0])
    excess = v - (v[0] + fraction * (v[-1] - v[0]))
    excess[[0, -1]] = 0.0  # exactly on the chord, whatever the rounding
    return excess


def barrier_height_at(ts: ArrayLike, values: ArrayLike) -> float:
    """Barrier height on any increasing t: the largest rise above the chord, never below 0.

    The chord is linear in t, so the definition of
    :func:`weightscape.metrics.curves.barrier_height` needs no even spacing; on an even grid the
    two agree.

    >>> barrier_height_at([0.0, 0.36, 1.0], [0.2, 0.9, 0.2])
    0.7
    """
    return float(max(0.0, chord_excess(ts, values).max()))


def convexity_gap_at(ts: ArrayLike, values: ArrayLike) -> float:
    """Convexity gap on any increasing t: the largest rise above the chord of any sub-segment
    (:func:`weightscape.metrics.curves.convexity_gap`, which assumes even spacing).

    >>> round(convexity_gap_at([0.0, 0.25, 0.5, 0.75, 1.0], [4.0, 1.0, 1.5, 0.5, 0.0]), 6)
    0.833333
    """
    t, v = _curve(ts, values, "convexity_gap_at")
    return float(max(0.0, _chord_rises(t, v).max(initial=0.0)))


def auc_t_at(ts: ArrayLike, values: ArrayLike) -> float:
    """Area above the curve's minimum per unit t by the trapezoid rule on any increasing t
    (:func:`weightscape.metrics.curves.auc_t`, which assumes even spacing).

    >>> auc_t_at([0.0, 0.2, 1.0], [1.0, 0.0, 1.0])
    0.5
    """
    t, v = _curve(ts, values, "auc_t_at")
    above = v - v.min()
    return float(np.sum(np.diff(t) * (above[1:] + above[:-1]) / 2))


def _chord_rises(t: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``rise[i, j, k]``: height of point ``k`` above the chord from ``i`` to ``j`` (``-inf``
    unless ``i < k < j``). O(n^3) memory, fine for the few dozen points of a walk."""
    n = t.size
    i, j, k = np.ix_(np.arange(n), np.arange(n), np.arange(n))
    inside = (i < k) & (k < j)
    with np.errstate(divide="ignore", invalid="ignore"):
        fraction = np.where(inside, (t[k] - t[i]) / (t[j] - t[i]), 0.0)
    chord = v[i] + fraction * (v[j] - v[i])
    return np.where(inside, v[k] - chord, -np.inf)


def _concavity(t: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``-v''`` at each point from its two neighbours (0 at the ends and where convex)."""
    out = np.zeros(t.size)
    if t.size > 2:
        slopes = np.diff(v) / np.diff(t)
        out[1:-1] = -2.0 * np.diff(slopes) / (t[2:] - t[:-2])
    return np.maximum(out, 0.0)


def _parabola_peak(t: np.ndarray, v: np.ndarray, lo: float, hi: float) -> tuple[float, float]:
    """Where in ``[lo, hi]`` the parabola through three points is highest, and its value there."""
    coefficients = np.polyfit(t - lo, v, 2)
    candidates = [0.0, hi - lo]
    if coefficients[0] < 0:
        vertex = -coefficients[1] / (2 * coefficients[0])
        if 0 < vertex < hi - lo:
            candidates.append(vertex)
    values = np.polyval(coefficients, candidates)
    best = int(np.argmax(values))
    return lo + candidates[best], float(values[best])


@dataclass(frozen=True)
class _Gap:
    """A stretch between neighbouring evaluated points that still holds lattice points."""

    left: int  # position in the evaluated points
    hidden: float  # how far the curve can rise above the segment inside, under the assumption
    barrier_bound: float
    gap_bound: float
    predicted: float  # the highest rise above the chord the neighbouring parabolas predict
    split: int  # the lattice index to evaluate next


def _gaps(indices: np.ndarray, t: np.ndarray, e: np.ndarray, safety: float) -> list[_Gap]:
    """Every gap with its bounds, its predicted height and where to split it."""
    kappa = _concavity(t, e)  # e differs from v by a linear function: same curvature
    rises = _chord_rises(t, e)
    gaps = []
    for a in np.flatnonzero(np.diff(indices) > 1):
        b = a + 1
        h = t[b] - t[a]
        hidden = safety * max(kappa[a], kappa[b]) * h * h / 8
        # The ends' largest rise above any chord that spans the gap (the convexity gap's chords).
        spanning = max(
            0.0, rises[: a + 1, b:, a].max(initial=0.0), rises[:b, b + 1 :, b].max(initial=0.0)
        )
        peak_t, predicted = float(t[a]), float(max(e[a], e[b]))
        for lo in (a - 1, a):  # the parabolas through (a-1, a, b) and (a, b, b+1)
            if lo >= 0 and lo + 2 < t.size:
                at, value = _parabola_peak(t[lo : lo + 3], e[lo : lo + 3], t[a], t[b])
                if value > predicted:
                    peak_t, predicted = at, value
        split = _split(indices[a], indices[b], peak_t, t[a], t[b])
        gaps.append(
            _Gap(int(a), hidden, max(e[a], e[b]) + hidden, spanning + hidden, predicted, split)
        )
    return gaps


def _split(left: int, right: int, peak_t: float, t_left: float, t_right: float) -> int:
    """The lattice index nearest a predicted peak inside the gap, else the gap's middle."""
    if t_left < peak_t < t_right:
        # Safeguarded, as Brent's parabolic steps: at least a third of the gap from either end,
        # so a peak predicted from far away still splits the gap instead of nibbling at its end.
        x = min(max((peak_t - t_left) / (t_right - t_left), 1 / 3), 2 / 3)
        k = left + round(x * (right - left))
    else:
        k = (left + right) // 2
    return int(min(max(k, left + 1), right - 1))


def next_indices(indices: ArrayLike, values: ArrayLike, settings: RefineSettings) -> np.ndarray:
    """The lattice indices to evaluate next; empty when no gap can hide more than ``tol``.

    Args:
        indices: The evaluated lattice indices, increasing, both ends (0 and ``lattice - 1``)
            included.
        values: The curve at each (lower is better: a loss).
        settings: The refinement's settings.

    Returns:
        Up to ``per_round`` new lattice indices, increasing, none already evaluated.

    >>> s = RefineSettings()
    >>> next_indices([0, 5, 10, 15, 20, 25], [0.0, 0.5, 0.9, 0.9, 0.5, 0.0], s)
    array([12, 17])
    """
    k = np.asarray(indices)
    if k.ndim != 1 or k.size < 2 or k[0] != 0 or k[-1] != settings.lattice - 1:
        raise WeightscapeError(
            "The 'indices' parameter of next_indices must be increasing lattice indices from 0 "
            f"to {settings.lattice - 1}. Got {k.tolist()!r} instead."
        )
    t, v = _curve(settings.ts(k), values, "next_indices")
    e = chord_excess(t, v)
    barrier = max(0.0, float(e.max()))
    gap = convexity_gap_at(t, e)
    tol = settings.tol
    open_gaps = [
        (g.barrier_bound > barrier + tol, g.predicted, g.hidden, g.split)
        for g in _gaps(k, t, e, settings.safety)
        if g.barrier_bound > barrier + tol or g.gap_bound > gap + tol
    ]
    # Only the barrier while it can still rise, then the convexity gap; of these, the gaps
    # predicted highest above the chord first.
    open_gaps.sort(reverse=True)
    if open_gaps and open_gaps[0][0]:
        open_gaps = [g for g in open_gaps if g[0]]
    return np.array(sorted({g[-1] for g in open_gaps[: settings.per_round]}), dtype=int)


def refine_curve(
    evaluate: Callable[[np.ndarray], ArrayLike], settings: RefineSettings | None = None
) -> Refinement:
    """Evaluate a curve on the coarse grid, then refine it round by round (the module's rule).

    Args:
        evaluate: Called once per round with the new t (lattice points, increasing); returns
            the curve's value at each (lower is better). A walk evaluates the path's points
            through its store here.
        settings: The refinement's settings; the defaults by default.

    Returns:
        The :class:`Refinement`.
    """
    settings = settings or RefineSettings()
    indices = coarse_indices(settings)
    values = as_finite_1d(evaluate(settings.ts(indices)), "values", "refine_curve")
    rounds = [_round(settings, indices, values)]
    stopped = "lattice"
    while indices.size < settings.lattice:
        room = settings.budget - indices.size
        per_round = max(1, min(settings.per_round, room))
        new = next_indices(indices, values, replace(settings, per_round=per_round))
        if new.size == 0 or room <= 0:
            stopped = "bound" if new.size == 0 else "budget"
            break
        new_values = as_finite_1d(evaluate(settings.ts(new)), "values", "refine_curve")
        order = np.argsort(np.concatenate([indices, new]), kind="stable")
        indices = np.concatenate([indices, new])[order]
        values = np.concatenate([values, new_values])[order]
        rounds.append(_round(settings, indices, values))
    ts = settings.ts(indices)
    return Refinement(
        indices=indices,
        ts=ts,
        values=values,
        barrier_height=barrier_height_at(ts, values),
        convexity_gap=convexity_gap_at(ts, values),
        stopped=stopped,
        lattice=settings.lattice,
        rounds=rounds,
    )


def _round(settings: RefineSettings, indices: np.ndarray, values: np.ndarray):
    ts = settings.ts(indices)
    return (int(indices.size), barrier_height_at(ts, values), convexity_gap_at(ts, values))
