"""Bookkeeping of task knowledge along a path: which examples flip between consecutive points.

Qin et al. (2022, §Q3) walk from a source minimum (phi_0) to a target minimum (phi_J) and call an
example *memorised* at phi_j when phi_j classifies it correctly. With ``correct`` the (J+1, n)
boolean matrix of one task's examples at the points, for each step j = 1..J:

* **newly forgotten**: right at phi_{j-1}, wrong at phi_j (Qin's F_j, on source examples);
* **newly learned**: wrong at phi_{j-1}, right at phi_j (Qin's M_j, on target examples);
* **re-learned**: newly learned at j and right at some point before j-1 (known, lost, back);
* **re-forgotten**: newly forgotten at j and wrong at some point before j-1 (lost, regained,
  lost again).

Qin et al. found source examples seldom come back, so they only count F_j and M_j; the two
re- counts say whether that holds here. numpy only: the analysis in
:mod:`weightscape.analyses.knowledge` turns evaluated points into ``correct`` matrices.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from weightscape.errors import WeightscapeError

__all__ = ["Flips", "flips", "set_means", "trend"]


@dataclass(frozen=True)
class Flips:
    """Per-step flip masks of one task's examples, each of shape (J, n): row j-1 is step j."""

    forgotten: np.ndarray
    learned: np.ndarray
    relearned: np.ndarray
    reforgotten: np.ndarray

    def counts(self) -> dict[str, list[int]]:
        """How many examples fall in each set at each step."""
        return {
            name: getattr(self, name).sum(axis=1).astype(int).tolist()
            for name in ("forgotten", "learned", "relearned", "reforgotten")
        }


def flips(correct: object) -> Flips:
    """The examples newly forgotten, newly learned, re-learned and re-forgotten at each step.

    Args:
        correct: Correctness of each example at each point, shape (J+1, n), points in path order.

    >>> f = flips([[1, 1, 0], [0, 1, 1], [1, 0, 1]])
    >>> f.counts()
    {'forgotten': [1, 1], 'learned': [1, 1], 'relearned': [0, 1], 'reforgotten': [0, 0]}
    """
    right = np.asarray(correct)
    if right.ndim != 2 or right.shape[0] < 2:
        raise WeightscapeError(
            "The 'correct' parameter of flips must be a 2-D array (points, examples) with at "
            f"least 2 points. Got shape {right.shape} instead."
        )
    if not np.all((right == 0) | (right == 1)):
        raise WeightscapeError("The 'correct' parameter of flips must hold booleans (or 0/1).")
    right = right.astype(bool)
    before, after = right[:-1], right[1:]
    forgotten = before & ~after
    learned = ~before & after
    # Whether an example was right (wrong) at any point before the previous one: at step j
    # (row j-1) that is points 0..j-2, so step 1 has no such history.
    ever_right = np.vstack([np.zeros_like(right[:1]), np.logical_or.accumulate(right[:-2])])
    ever_wrong = np.vstack([np.zeros_like(right[:1]), np.logical_or.accumulate(~right[:-2])])
    return Flips(
        forgotten=forgotten,
        learned=learned,
        relearned=learned & ever_right,
        reforgotten=forgotten & ever_wrong,
    )


def set_means(masks: object, values: object) -> np.ndarray:
    """The mean of ``values`` over each row's selected examples; NaN where a row selects none.

    Args:
        masks: Which examples each set holds, shape (sets, n).
        values: One number per example (a cartography statistic), shape (n,).

    >>> set_means([[1, 0, 1], [0, 0, 0]], [0.2, 0.5, 0.6]).round(6).tolist()
    [0.4, nan]
    """
    selected = np.asarray(masks).astype(bool)
    numbers = np.asarray(values, dtype=np.float64)
    if selected.ndim != 2 or numbers.shape != selected.shape[1:]:
        raise WeightscapeError(
            "The 'masks' parameter of set_means must have shape (sets, n) and 'values' shape "
            f"(n,). Got {selected.shape} and {numbers.shape} instead."
        )
    counts = selected.sum(axis=1)
    sums = selected.astype(np.float64) @ numbers
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def trend(values: object) -> float:
    """Spearman's rank correlation of a per-step series with the step; NaN steps are skipped.

    Positive: the series rises along the path (Qin et al. see the mean confidence of F_j rise,
    hard source examples forgotten first). NaN when fewer than 3 steps have values or they are
    all equal: no ordering to speak of.

    >>> trend([0.5, float("nan"), 0.6, 0.9]), trend([0.3, 0.2, 0.1]), trend([0.4, 0.4, 0.4])
    (1.0, -1.0, nan)
    """
    series = np.asarray(values, dtype=np.float64)
    steps = np.flatnonzero(np.isfinite(series))
    if steps.size < 3 or np.ptp(series[steps]) == 0:
        return float("nan")
    from scipy.stats import spearmanr

    return float(spearmanr(steps, series[steps]).statistic)
