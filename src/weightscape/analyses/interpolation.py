"""Walk a path between anchor checkpoints and measure its barrier.

Qin et al. (2022) evaluate 26 points (t = k/25) along the line between two minima; Juneja et al.
(2023) 10-11 points on 512 random examples, summarised by barrier height and convexity gap; Gueta
et al. (2023) extrapolate past the endpoints. All of them are one call here: a path type gives the
coefficient rows, the engine evaluates them through the store, the curve metrics summarise them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from weightscape.evaluation.engine import Engine
from weightscape.geometry import get_path
from weightscape.metrics import CURVE_SUMMARIES, POINT_METRICS, point_metric_names
from weightscape.runtime.executor import evaluate_points
from weightscape.runtime.store import ResultStore

METRICS = point_metric_names()  # the point metrics registered at import, in result order


@dataclass
class WalkPoint:
    """One evaluated point of a path."""

    t: float
    coefficients: list[float]
    metrics: dict[str, float]
    cached: bool
    key: str


@dataclass
class PathWalk:
    """A walked path: its points, the anchors' own results, and curve summaries."""

    path: str
    anchors: list[str]
    task: str
    points: list[WalkPoint]
    endpoints: dict[str, dict[str, float]]
    summary: dict[str, Any] = field(default_factory=dict)
    computed: int = 0  # points evaluated by this walk (not found in the store or repeated)

    def curve(self, metric: str) -> np.ndarray:
        """The values of ``metric`` along the path, in t order."""
        return np.array([p.metrics[metric] for p in self.points])

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form."""
        return {
            "path": self.path,
            "anchors": self.anchors,
            "task": self.task,
            "endpoints": self.endpoints,
            "summary": self.summary,
            "computed": self.computed,
            "points": [vars(p) for p in self.points],
        }


def walk_path(
    engine: Engine,
    ts: Sequence[float] | np.ndarray,
    *,
    path: str = "linear",
    store: ResultStore | None = None,
    progress: bool = False,
) -> PathWalk:
    """Evaluate ``path`` over the engine's anchors at each t, through the store.

    The anchors themselves are evaluated too (one-hot rows); for a linear path they coincide with
    t = 0 and t = 1 and cost nothing extra, and across pairs each anchor is evaluated once.
    """
    ts = np.asarray(ts, dtype=np.float64)
    n = len(engine.anchors)
    rows = get_path(path, n).coefficients(ts)
    ends = np.eye(n)[[0, n - 1]]
    evaluated = evaluate_points(
        engine, np.vstack([ends, rows]), store, progress=progress, description=f"{path} path"
    )
    names = unique_names([c.name for c in engine.anchors.checkpoints])
    endpoints = {names[0]: evaluated[0].result.metrics, names[-1]: evaluated[1].result.metrics}
    points = [
        WalkPoint(float(t), [float(c) for c in row], e.result.metrics, e.cached, e.key)
        for t, row, e in zip(ts, rows, evaluated[2:], strict=True)
    ]
    walk = PathWalk(
        path=path,
        anchors=names,
        task=engine.task.name,
        points=points,
        endpoints=endpoints,
        computed=sum(not e.cached for e in evaluated),
    )
    walk.summary = summarise(ts, walk)
    return walk


def unique_names(names: Sequence[str]) -> list[str]:
    """Names made distinct (``a``, ``a#2``) so results keyed by name never collide.

    >>> unique_names(["step-150", "step-150", "b"])
    ['step-150', 'step-150#2', 'b']
    """
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}#{seen[name]}")
    return out


def summarise(ts: np.ndarray, walk: PathWalk) -> dict[str, Any]:
    """Every curve summary of every point metric, on the evenly spaced part of [0, 1].

    ``summary[metric][name]`` for each registered point metric and curve summary (barrier height,
    convexity gap, AUC, best t, best value, ...), in the metric's declared direction: losses rise
    on a barrier, accuracy drops. Points outside [0, 1] (extrapolation) are left out of the
    summary; if the points inside do not form an evenly spaced grid with both ends the summary
    says so instead of guessing.
    """
    inside = (ts >= 0) & (ts <= 1)
    grid = ts[inside]
    if len(grid) < 2 or grid[0] != 0 or grid[-1] != 1 or not _even(grid):
        return {"note": "barrier metrics need evenly spaced t over [0, 1] with both ends"}
    summary: dict[str, Any] = {"grid_points": len(grid)}
    for metric in POINT_METRICS.values():
        values = np.array(
            [p.metrics[metric.name] for p, keep in zip(walk.points, inside, strict=True) if keep]
        )
        summary[metric.name] = {
            name: curve_summary(values, higher_is_better=metric.higher_is_better, ts=grid)
            for name, curve_summary in CURVE_SUMMARIES.items()
        }
    return summary


def _even(grid: np.ndarray) -> bool:
    steps = np.diff(grid)
    return bool(np.all(steps > 0) and np.allclose(steps, steps[0], rtol=1e-9, atol=1e-12))
