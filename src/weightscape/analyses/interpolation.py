"""Walk a path between anchor checkpoints and measure its barrier.

Qin et al. (2022) evaluate 26 points (t = k/25) along the line between two minima; Juneja et al.
(2023) 10-11 points on 512 random examples, summarised by barrier height and convexity gap; Gueta
et al. (2023) extrapolate past the endpoints. All of them are one call here: a path type gives the
coefficient rows, the engine evaluates them through the store, the curve metrics summarise them.

A walk also measures the Euclidean distance between its first and last anchor over the engine's
parameter space: the AUC (``auc``) measures the path in that distance, as Juneja et al.'s code
does, and ``auc_t`` measures it in t (``auc = auc_t * endpoint_distance``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from weightscape.errors import WeightscapeError
from weightscape.evaluation.engine import Engine, EngineSpec
from weightscape.geometry import get_path
from weightscape.geometry.refine import (
    Refinement,
    RefineSettings,
    auc_t_at,
    barrier_height_at,
    convexity_gap_at,
    refine_curve,
)
from weightscape.metrics import CURVE_SUMMARIES, POINT_METRICS, point_metric_names
from weightscape.runtime.executor import evaluate_points, from_store
from weightscape.runtime.store import ResultStore

METRICS = point_metric_names()  # the point metrics registered at import, in result order
AUC_UNIT = (
    "auc: area above the curve's minimum with the path measured in Euclidean distance between "
    "its first and last anchor over the parameter space (from 0 to endpoint_distance), as "
    "Juneja et al.'s AreaUnderCurve; auc_t: the same area with the path measured in t (0 to 1); "
    "auc = auc_t * endpoint_distance"
)


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
    # Euclidean distance between the first and last anchor over the parameter space (the length
    # the AUC is measured in); None when unknown, and then the walk reports no `auc`.
    endpoint_distance: float | None = None

    def metric_names(self) -> tuple[str, ...]:
        """The registered point metrics every point carries, in registry order (binary F1 only
        on a 2-class task)."""
        return tuple(name for name in POINT_METRICS if all(name in p.metrics for p in self.points))

    def curve(self, metric: str) -> np.ndarray:
        """The values of ``metric`` along the path, in t order.

        Raises:
            WeightscapeError: For a metric the points do not carry (e.g. binary F1 on a task
                that does not have 2 classes).
        """
        if any(metric not in p.metrics for p in self.points):
            raise WeightscapeError(
                f"The points of this walk on task '{self.task}' carry no metric '{metric}'. "
                f"Available: {', '.join(self.metric_names())}."
            )
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
            "endpoint_distance": self.endpoint_distance,
            "points": [vars(p) for p in self.points],
        }


def walk_path(
    engine: Engine | EngineSpec,
    ts: Sequence[float] | np.ndarray,
    *,
    path: str = "linear",
    store: ResultStore | None = None,
    progress: bool = False,
) -> PathWalk:
    """Evaluate ``path`` over the engine's anchors at each t, through the store.

    The anchors themselves are evaluated too (one-hot rows); for a linear path they coincide with
    t = 0 and t = 1 and cost nothing extra, and across pairs each anchor is evaluated once.
    Given an :class:`EngineSpec` instead of an engine, the engine (its model, its tokenised
    batches) is built only when a point is missing from the store: a fully stored walk builds
    none.
    """
    ts = np.asarray(ts, dtype=np.float64)
    n = len(engine.anchors)
    rows = get_path(path, n).coefficients(ts)
    ends = np.eye(n)[[0, n - 1]]
    all_rows = np.vstack([ends, rows])
    evaluated = None
    if isinstance(engine, EngineSpec):
        evaluated = from_store(engine, all_rows, store)
        if evaluated is None:
            engine = engine.build()
    if evaluated is None:
        evaluated = evaluate_points(
            engine, all_rows, store, progress=progress, description=f"{path} path"
        )
    checkpoints = engine.anchors.checkpoints if isinstance(engine, Engine) else engine.anchors
    names = unique_names([c.name for c in checkpoints])
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
        endpoint_distance=endpoint_distance(engine),
    )
    walk.summary = summarise(ts, walk)
    return walk


def walk_path_adaptive(
    engine: Engine,
    settings: RefineSettings | None = None,
    *,
    path: str = "linear",
    store: ResultStore | None = None,
    progress: bool = False,
    metric: str = "loss",
) -> PathWalk:
    """Walk ``path`` on a coarse grid and refine it where a barrier could hide (adaptive walk).

    The t values are lattice points of the dense grid ``settings.lattice`` (26: ``t = k/25``)
    chosen by :func:`weightscape.geometry.refine.refine_curve` from ``metric``'s curve, so every
    point is one a dense walk of that grid evaluates: both go through the same store keys and
    reuse each other's points. Each round's points are evaluated (and stored) together.

    Returns:
        A :class:`PathWalk` whose points are the evaluated t, increasing, and whose summary holds
        the barrier height, convexity gap, area and best point of every point metric on those t
        (:func:`summarise_adaptive`) and ``summary["adaptive"]``: the points spent against the
        dense grid's, the rounds and why the refinement stopped.
    """
    settings = settings or RefineSettings()
    if metric not in POINT_METRICS:
        from weightscape.errors import unknown_name_error

        raise unknown_name_error("point metric", metric, POINT_METRICS)
    sign = -1.0 if POINT_METRICS[metric].higher_is_better else 1.0  # the rule looks for rises
    n = len(engine.anchors)
    path_type = get_path(path, n)
    walked: dict[float, WalkPoint] = {}
    found: list[Any] = []

    def evaluate(ts: np.ndarray) -> list[float]:
        rows = path_type.coefficients(ts)
        ends = np.eye(n)[[0, n - 1]] if not found else np.empty((0, n))
        evaluated = evaluate_points(
            engine, np.vstack([ends, rows]), store, progress=progress, description=f"{path} path"
        )
        found.extend(evaluated)
        points = evaluated[len(ends) :]
        for t, row, e in zip(ts, rows, points, strict=True):
            walked[float(t)] = WalkPoint(
                float(t), [float(c) for c in row], e.result.metrics, e.cached, e.key
            )
        return [sign * e.result.metrics[metric] for e in points]

    refinement = refine_curve(evaluate, settings)
    names = unique_names([c.name for c in engine.anchors.checkpoints])
    walk = PathWalk(
        path=path,
        anchors=names,
        task=engine.task.name,
        points=[walked[t] for t in sorted(walked)],
        endpoints={names[0]: found[0].result.metrics, names[-1]: found[1].result.metrics},
        computed=sum(not e.cached for e in found),
        endpoint_distance=endpoint_distance(engine),
    )
    walk.summary = summarise_adaptive(walk, refinement, settings, metric)
    return walk


def endpoint_distance(engine: Engine | EngineSpec) -> float:
    """Euclidean distance between the engine's first and last anchor over its parameter space
    (0 when they are one checkpoint); the length of a linear path between them. The tensors the
    engine does not mix (the heads, under a probe) are left out."""
    from weightscape.analyses.connectivity import anchor_distances

    if isinstance(engine, EngineSpec):
        checkpoints = list(engine.anchors)
        same = checkpoints[0].content_hash() == checkpoints[-1].content_hash()
        without_heads = engine.probe is not None  # a probe replaces every head
    else:
        checkpoints = engine.anchors.checkpoints
        same = engine.anchors.hashes[0] == engine.anchors.hashes[-1]
        without_heads = engine.anchors.ignore is not None
    first, last = checkpoints[0], checkpoints[-1]
    if same:
        return 0.0
    return float(anchor_distances([first, last], engine.space, without_heads=without_heads)[0, 1])


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

    ``summary[metric][name]`` for each point metric the points carry and each curve summary
    (barrier height, convexity gap, AUC, best t, best value, ...), in the metric's declared
    direction: losses rise on a barrier, accuracy drops. A summary that needs the path's length
    (``auc``) gets ``walk.endpoint_distance``; when that is unknown it is left out (``auc_t``,
    per unit t, is always there), and ``summary["auc_unit"]`` says which is which. Points outside
    [0, 1] (extrapolation) are left out of the summary; if the points inside do not form an
    evenly spaced grid with both ends the summary says so instead of guessing.
    """
    inside = (ts >= 0) & (ts <= 1)
    grid = ts[inside]
    if len(grid) < 2 or grid[0] != 0 or grid[-1] != 1 or not _even(grid):
        return {"note": "barrier metrics need evenly spaced t over [0, 1] with both ends"}
    distance = walk.endpoint_distance
    summary = _summary_head(len(grid), distance)
    summaries = {
        name: curve_summary
        for name, curve_summary in CURVE_SUMMARIES.items()
        if distance is not None or "length" not in curve_summary.needs
    }
    for name in walk.metric_names():
        metric = POINT_METRICS[name]
        values = np.array(
            [p.metrics[name] for p, keep in zip(walk.points, inside, strict=True) if keep]
        )
        summary[name] = {
            summary_name: curve_summary(
                values, higher_is_better=metric.higher_is_better, ts=grid, length=distance
            )
            for summary_name, curve_summary in summaries.items()
        }
    return summary


def summarise_adaptive(
    walk: PathWalk, refinement: Refinement, settings: RefineSettings, metric: str = "loss"
) -> dict[str, Any]:
    """The curve summaries of an adaptive walk, on its uneven t, and what the refinement cost.

    ``summary[metric][name]`` as :func:`summarise` gives for the barrier height, convexity gap,
    area (``auc_t`` by the trapezoid rule on the evaluated t; ``auc`` times the distance between
    the ends) and best point; ``summary["adaptive"]`` holds the points spent, the dense grid's
    count and the saving, the refinement's rounds (points, barrier, convexity gap of ``metric``
    after each) and why it stopped. Only the summaries that hold on uneven t are given: those
    built on chords, the trapezoid area, and the best point; any other registered summary assumes
    an even grid and is left out.
    """
    ts = np.array([p.t for p in walk.points])
    distance = walk.endpoint_distance
    spent = refinement.points_spent
    summary = _summary_head(len(ts), distance)
    summary |= {
        "adaptive": {
            "metric": metric,
            "points_spent": spent,
            "dense_points": settings.lattice,
            "saving": 1 - spent / settings.lattice,
            "stopped": refinement.stopped,
            "rounds": [
                {"points": k, "barrier_height": b, "convexity_gap": g}
                for k, b, g in refinement.rounds
            ],
            "settings": vars(settings) | {"max_points": settings.budget},
        },
    }
    for name in walk.metric_names():
        higher_is_better = POINT_METRICS[name].higher_is_better
        values = walk.curve(name)
        rises = -values if higher_is_better else values  # accuracy's barrier is a drop
        metric_summary = {
            "barrier_height": barrier_height_at(ts, rises),
            "convexity_gap": convexity_gap_at(ts, rises),
            "auc_t": auc_t_at(ts, values),  # as auc_t: the area above the minimum, either way
        }
        if distance is not None:
            metric_summary["auc"] = metric_summary["auc_t"] * distance
        for key in ("best_t", "best"):
            metric_summary[key] = CURVE_SUMMARIES[key](
                values, higher_is_better=higher_is_better, ts=ts
            )
        summary[name] = metric_summary
    return summary


def _summary_head(points: int, distance: float | None) -> dict[str, Any]:
    """What every walk summary starts with: its points, the path's length and the AUC's unit."""
    return {
        "grid_points": points,
        "endpoint_distance": distance,
        "auc_unit": AUC_UNIT
        if distance is not None
        else "auc left out: the distance between the end points is unknown; auc_t is per unit t",
    }


def _even(grid: np.ndarray) -> bool:
    steps = np.diff(grid)
    return bool(np.all(steps > 0) and np.allclose(steps, steps[0], rtol=1e-9, atol=1e-12))
