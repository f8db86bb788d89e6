"""N x N connectivity maps: the linear path between every pair of a zoo.

Juneja et al. (2023) interpolate every pair of 100 finetuned models and read basins off the
matrices of convexity gaps. Here every pair's path is a set of coefficient rows over all N anchors
(two non-zero entries), evaluated by one executor through the results store: the upper triangle
only, each endpoint once (a one-hot row shared by every pair), every point resumable.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from weightscape.evaluation.engine import EngineSpec
from weightscape.geometry import even_grid, get_path
from weightscape.metrics import grid_matrices
from weightscape.runtime.executor import Executor, InProcessExecutor
from weightscape.runtime.store import ResultStore


def curve_metrics() -> tuple[str, ...]:
    """The point metrics whose curves the grid keeps: those some grid matrix is built from.

    The matrices are declared by the curve-summary rows (their ``grid`` field), so a summary
    added there is computed here too.

    >>> curve_metrics()
    ('loss', 'accuracy')
    """
    return tuple(dict.fromkeys(metric.name for metric, _ in grid_matrices().values()))


# Snapshots at import, for name checks (e.g. a study's --matrix); the grid itself reads the
# registries when it runs, so it also picks up rows registered later.
MATRICES = grid_matrices()  # matrix name -> (point metric, curve summary)
CURVE_METRICS = curve_metrics()


@dataclass
class ConnectivityGrid:
    """Curves and matrices over every pair of a zoo.

    Attributes:
        names: Model names, in matrix order.
        ts: The t grid of every path (evenly spaced over [0, 1]).
        curves: metric -> array (N, N, len(ts)); entry [i, j] runs from model i to model j.
        matrices: name -> symmetric (N, N) array with a zero diagonal.
        endpoint_metrics: metric -> array (N,) of each model's own value.
        stats: what the run cost (rows asked for, points computed, seconds, forward passes).
        tags: each model's tags.
    """

    names: list[str]
    ts: np.ndarray
    curves: dict[str, np.ndarray]
    matrices: dict[str, np.ndarray]
    endpoint_metrics: dict[str, np.ndarray]
    stats: dict[str, Any] = field(default_factory=dict)
    tags: list[dict[str, Any]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    task: str = ""

    def save(self, folder: str | Path) -> Path:
        """Write ``grid.npz`` (arrays) and ``grid.json`` (names, tags, stats) into ``folder``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        arrays = {"ts": self.ts}
        arrays.update({f"curve_{k}": v for k, v in self.curves.items()})
        arrays.update({f"matrix_{k}": v for k, v in self.matrices.items()})
        arrays.update({f"endpoint_{k}": v for k, v in self.endpoint_metrics.items()})
        np.savez(folder / "grid.npz", **arrays)
        meta = {
            "names": self.names,
            "tags": self.tags,
            "stats": self.stats,
            "paths": self.paths,
            "task": self.task,
        }
        (folder / "grid.json").write_text(json.dumps(meta, indent=1, default=str))
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> ConnectivityGrid:
        """Read a grid written by :meth:`save`."""
        from weightscape.errors import WeightscapeError

        folder = Path(folder)
        if not (folder / "grid.npz").is_file() or not (folder / "grid.json").is_file():
            raise WeightscapeError(
                f"'{folder}' holds no grid (grid.npz and grid.json). Run "
                "`weightscape grid --out` into it first."
            )
        meta = json.loads((folder / "grid.json").read_text())
        with np.load(folder / "grid.npz") as data:

            def part(prefix: str) -> dict[str, np.ndarray]:
                return {k[len(prefix) :]: data[k] for k in data.files if k.startswith(prefix)}

            return cls(
                names=meta["names"],
                ts=data["ts"],
                curves=part("curve_"),
                matrices=part("matrix_"),
                endpoint_metrics=part("endpoint_"),
                stats=meta["stats"],
                tags=meta["tags"],
                paths=meta.get("paths", []),
                task=meta.get("task", ""),
            )


def pair_rows(n: int, ts: np.ndarray) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Coefficient rows over n anchors: the n one-hot endpoints, then each pair's path.

    Pairs are the upper triangle in row-major order, so consecutive pairs share their first
    anchor. Row ``n + p * len(ts) + k`` is point k of pair p.

    >>> rows, pairs = pair_rows(3, np.array([0.0, 0.5, 1.0]))
    >>> pairs
    [(0, 1), (0, 2), (1, 2)]
    >>> rows[3 + 2 * 3 + 1].tolist()   # pair (1, 2) at t = 0.5
    [0.0, 0.5, 0.5]
    """
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    line = get_path("linear", 2).coefficients(ts)
    rows = np.zeros((n + len(pairs) * len(ts), n))
    rows[:n] = np.eye(n)
    for p, (i, j) in enumerate(pairs):
        block = rows[n + p * len(ts) : n + (p + 1) * len(ts)]
        block[:, i], block[:, j] = line[:, 0], line[:, 1]
    return rows, pairs


def connectivity_grid(
    spec: EngineSpec,
    *,
    points: int = 11,
    store: ResultStore | None = None,
    executor: Executor | None = None,
    progress: bool = False,
) -> ConnectivityGrid:
    """Walk the line between every pair of ``spec.anchors`` and summarise each path."""
    ts = even_grid(points)
    n = len(spec.anchors)
    rows, pairs = pair_rows(n, ts)
    start = time.perf_counter()
    results = (executor or InProcessExecutor()).run(
        spec, rows, store, progress=progress, description=f"grid {n}x{n}"
    )
    seconds = time.perf_counter() - start
    values = {m: np.array([r.result.metrics[m] for r in results]) for m in curve_metrics()}
    curves = {m: _curve_tensor(v[n:], pairs, n, len(ts)) for m, v in values.items()}
    computed = sum(not r.cached for r in results)
    stats = {
        "models": n,
        "pairs": len(pairs),
        "points_per_path": len(ts),
        "rows": len(rows),
        "unique_points": len({r.key for r in results}),
        "computed_points": computed,
        "seconds": round(seconds, 2),
        "examples": len(spec.task),
        "batches_per_point": _batches(len(spec.task), spec),
    }
    stats["forward_passes"] = computed * stats["batches_per_point"]
    return ConnectivityGrid(
        names=[c.name for c in spec.anchors],
        ts=ts,
        curves=curves,
        matrices=matrices_from_curves(curves),
        stats=stats,
        endpoint_metrics={m: v[:n] for m, v in values.items()},
        tags=[dict(c.tags) for c in spec.anchors],
        paths=[str(c.path.resolve()) for c in spec.anchors],
        task=spec.task.name,
    )


def _batches(examples: int, spec: EngineSpec) -> int:
    return -(-examples // spec.settings.batch_size)


def _curve_tensor(values: np.ndarray, pairs, n: int, k: int) -> np.ndarray:
    curves = np.full((n, n, k), np.nan)
    for p, (i, j) in enumerate(pairs):
        curve = values[p * k : (p + 1) * k]
        curves[i, j], curves[j, i] = curve, curve[::-1]
    return curves


def matrices_from_curves(curves: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every grid matrix the curve-summary rows declare (barrier height, convexity gap, AUC, ...).

    Each summary is applied in its point metric's declared direction to the curve from i to j;
    the matrix is symmetric because grid summaries are declared reversal-symmetric.
    """
    n = next(iter(curves.values())).shape[0]
    out = {}
    for name, (metric, summary) in grid_matrices().items():
        matrix = np.zeros((n, n))
        for i in range(n):
            for j in range(i + 1, n):
                curve = curves[metric.name][i, j]
                value = summary(curve, higher_is_better=metric.higher_is_better)
                matrix[i, j] = matrix[j, i] = value
        out[name] = matrix
    return out
