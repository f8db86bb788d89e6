"""Curves averaged over seeds, with their spread (Qin et al. 2022, Section 4: "All experiments
are conducted 3 times with random seeds and we report the average results").

An experiment that compares two minima is repeated with several seeds: each repetition is a pair
of checkpoints walked on the same t grid. :func:`mean_curves` stacks the pairs' curves point by
point and gives, for every metric, the mean and a band: the sample standard deviation (n - 1
degrees of freedom) around the mean, or the range (min to max) over the pairs; and the same for
each pair's curve summaries (barrier height, convexity gap, AUC, ...).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from weightscape.analyses.interpolation import PathWalk
from weightscape.errors import WeightscapeError

Band = Literal["std", "minmax"]
BANDS = ("std", "minmax")


def spread(values: np.ndarray, axis: int = 0) -> dict[str, np.ndarray]:
    """Mean, sample std (n - 1; 0 for a single value), min and max of ``values`` along ``axis``.

    >>> {k: v.tolist() for k, v in spread(np.array([[1.0, 4.0], [2.0, 4.0], [3.0, 4.0]])).items()}
    {'mean': [2.0, 4.0], 'std': [1.0, 0.0], 'min': [1.0, 4.0], 'max': [3.0, 4.0]}
    """
    values = np.asarray(values, dtype=float)
    n = values.shape[axis]
    std = values.std(axis=axis, ddof=1) if n > 1 else np.zeros_like(values.mean(axis=axis))
    return {
        "mean": values.mean(axis=axis),
        "std": std,
        "min": values.min(axis=axis),
        "max": values.max(axis=axis),
    }


@dataclass
class MeanCurve:
    """Several walks of one experiment (one per seed), averaged point by point.

    Attributes:
        ts: The t grid every walk shares.
        pairs: Each walk's label (``a -> b``).
        band: ``std`` (mean +- sample std) or ``minmax`` (min to max over the walks).
        curves: metric -> (walks, points) array of the walks' values.
        summaries: metric -> summary -> {"mean", "std", "min", "max", "values"} over the walks.
        walks: The walks themselves.
    """

    ts: list[float]
    pairs: list[str]
    band: str
    curves: dict[str, np.ndarray]
    summaries: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    walks: list[PathWalk] = field(default_factory=list)

    def stats(self, metric: str) -> dict[str, np.ndarray]:
        """Mean, std, min and max of ``metric`` at each t."""
        return spread(self.curves[metric])

    def bounds(self, metric: str) -> tuple[np.ndarray, np.ndarray]:
        """The band's lower and upper curve of ``metric``."""
        s = self.stats(metric)
        if self.band == "std":
            return s["mean"] - s["std"], s["mean"] + s["std"]
        return s["min"], s["max"]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form."""
        return {
            "ts": self.ts,
            "pairs": self.pairs,
            "band": self.band,
            "curves": {
                metric: {
                    "values": values.tolist(),
                    **{k: v.tolist() for k, v in self.stats(metric).items()},
                }
                for metric, values in self.curves.items()
            },
            "summaries": self.summaries,
        }


def mean_curves(walks: Sequence[PathWalk], band: Band = "std") -> MeanCurve:
    """Average walks that differ only in seed, point by point, with their spread.

    Every metric all walks hold is averaged; so is every numeric curve summary they share.

    Raises:
        WeightscapeError: For fewer than two walks, walks on different t grids, or an unknown
            ``band``.
    """
    if band not in BANDS:
        raise WeightscapeError(
            f"The 'band' parameter must be one of {', '.join(BANDS)}. Got {band!r} instead."
        )
    if len(walks) < 2:
        raise WeightscapeError(f"Averaging over seeds needs at least 2 walks. Got {len(walks)}.")
    ts = [p.t for p in walks[0].points]
    for walk in walks[1:]:
        if [p.t for p in walk.points] != ts:
            raise WeightscapeError(
                "The walks must share one t grid to be averaged; "
                f"'{' -> '.join(walk.anchors)}' has another."
            )
    metrics = [
        m for m in walks[0].points[0].metrics if all(m in w.points[0].metrics for w in walks)
    ]
    curves = {m: np.array([w.curve(m) for w in walks]) for m in metrics}
    labels = [" -> ".join(w.anchors) for w in walks]
    return MeanCurve(ts, labels, band, curves, _summaries(walks, metrics), list(walks))


def _summaries(walks: Sequence[PathWalk], metrics: list[str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for metric in metrics:
        tables = [w.summary.get(metric) for w in walks]
        if not all(isinstance(t, dict) for t in tables):
            continue  # no summary (an uneven grid)
        names = [
            n
            for n, v in tables[0].items()
            if isinstance(v, int | float) and all(isinstance(t.get(n), int | float) for t in tables)
        ]
        for name in names:
            values = np.array([t[name] for t in tables], dtype=float)
            stats = {k: float(v) for k, v in spread(values).items()}
            out.setdefault(metric, {})[name] = {**stats, "values": values.tolist()}
    return out
