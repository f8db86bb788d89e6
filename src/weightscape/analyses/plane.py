"""The loss surface on the plane through three models (Garipov et al. 2018; Juneja et al. 2023).

The plane's basis comes from the three models' Gram matrix, streamed tensor by tensor over the
parameter space with ``theta_1`` as the base (inner products of differences, well conditioned for
nearby models; see :mod:`weightscape.geometry.planes`). Every grid node is then a coefficient row
over the three anchors, evaluated by one executor through the results store, so an interrupted
plane resumes and a repeated one is free. The models' own points are evaluated as exact one-hot
rows, separately from the grid, so their metrics are exactly those of the models.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from weightscape.analyses.weight_stats import gram_matrix
from weightscape.errors import WeightscapeError
from weightscape.evaluation.engine import EngineSpec
from weightscape.geometry.planes import PlaneBasis, model_rows, plane_basis, plane_grid
from weightscape.metrics import point_metric_names, task_metric_names
from weightscape.outputs import save_npz, write_json
from weightscape.runtime.executor import Executor, InProcessExecutor
from weightscape.runtime.store import ResultStore

METRICS = point_metric_names()  # every registered point metric, in result order


@dataclass
class PlaneResult:
    """Metrics over a grid on the plane through three models.

    Attributes:
        names: The three models' names (theta_1, theta_2, theta_3).
        xs: Grid coordinates along u (n,); u points from theta_1 to theta_2.
        ys: Grid coordinates along v (m,); v is orthogonal to u, toward theta_3.
        surfaces: metric -> array (m, n); entry [j, i] is the point ``(xs[i], ys[j])``.
        model_xy: The models' plane coordinates (3, 2).
        model_metrics: metric -> array (3,) of each model's own value (from one-hot rows).
        u: Coefficients (3,) of u over the three anchors.
        v: Coefficients (3,) of v over the three anchors.
        gram: The Gram matrix (3, 3) about theta_1 the basis was built from.
        stats: What the run cost (rows, distinct points, points computed, seconds).
        paths: The models' checkpoint paths.
        task: Name of the task evaluated on.
    """

    names: list[str]
    xs: np.ndarray
    ys: np.ndarray
    surfaces: dict[str, np.ndarray]
    model_xy: np.ndarray
    model_metrics: dict[str, np.ndarray]
    u: np.ndarray
    v: np.ndarray
    gram: np.ndarray
    stats: dict[str, Any] = field(default_factory=dict)
    paths: list[str] = field(default_factory=list)
    task: str = ""

    @property
    def loss(self) -> np.ndarray:
        """Mean loss over the grid, shape (len(ys), len(xs))."""
        return self.surfaces["loss"]

    @property
    def accuracy(self) -> np.ndarray:
        """Accuracy over the grid, shape (len(ys), len(xs))."""
        return self.surfaces["accuracy"]

    def save(self, folder: str | Path) -> Path:
        """Write ``plane.npz`` (arrays) and ``plane.json`` (names, stats) into ``folder``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        arrays = {"xs": self.xs, "ys": self.ys, "coordinates": self.model_xy, "u": self.u}
        arrays.update({"v": self.v, "gram": self.gram})
        arrays.update({f"surface_{k}": a for k, a in self.surfaces.items()})
        arrays.update({f"model_{k}": a for k, a in self.model_metrics.items()})
        save_npz(folder / "plane.npz", **arrays)
        meta = {"names": self.names, "stats": self.stats, "paths": self.paths, "task": self.task}
        write_json(folder / "plane.json", meta, default=str)
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> PlaneResult:
        """Read a plane written by :meth:`save`."""
        folder = Path(folder)
        if not (folder / "plane.npz").is_file() or not (folder / "plane.json").is_file():
            raise WeightscapeError(
                f"'{folder}' holds no plane (plane.npz and plane.json). Run "
                "`weightscape plane --out` into it first."
            )
        meta = json.loads((folder / "plane.json").read_text())
        with np.load(folder / "plane.npz") as data:

            def part(prefix: str) -> dict[str, np.ndarray]:
                return {k[len(prefix) :]: data[k] for k in data.files if k.startswith(prefix)}

            return cls(
                names=meta["names"],
                xs=data["xs"],
                ys=data["ys"],
                surfaces=part("surface_"),
                model_xy=data["coordinates"],
                model_metrics=part("model_"),
                u=data["u"],
                v=data["v"],
                gram=data["gram"],
                stats=meta["stats"],
                paths=meta.get("paths", []),
                task=meta.get("task", ""),
            )


def plane_through(spec: EngineSpec) -> tuple[PlaneBasis, np.ndarray]:
    """The plane through ``spec``'s three anchors over its parameter space, and their Gram matrix.

    The Gram matrix is taken about ``theta_1`` (streamed, float64), so it holds the inner
    products of the differences the basis needs, without cancellation.

    Raises:
        WeightscapeError: If there are not exactly three anchors or they span no plane.
    """
    anchors = list(spec.anchors)
    if len(anchors) != 3:
        raise WeightscapeError(
            f"A plane needs exactly 3 models (theta_1, theta_2, theta_3). Got {len(anchors)}: "
            f"{', '.join(c.name for c in anchors) or 'none'}."
        )
    gram = gram_matrix(anchors, spec.space, base=anchors[0])
    return plane_basis(gram, names=[c.name for c in anchors]), gram


def evaluate_plane(
    spec: EngineSpec,
    *,
    resolution: tuple[int, int] = (21, 21),
    margin: float = 0.2,
    store: ResultStore | None = None,
    executor: Executor | None = None,
    progress: bool = False,
) -> PlaneResult:
    """Evaluate a grid on the plane through ``spec``'s three anchors, plus the models themselves.

    Args:
        spec: Engine spec with exactly three anchors; its space decides which tensors span the
            plane (the others come from the reference anchor at every point).
        resolution: Grid nodes ``(n, m)`` along u and v.
        margin: How far the grid reaches past the models' bounding box, as a fraction of its size.
        store: Where results are looked up and committed; None evaluates without storing.
        executor: How points are evaluated; in process by default.
        progress: Show a progress bar (on stderr).

    Raises:
        WeightscapeError: If there are not three anchors, they span no plane, or the grid
            options are invalid.
    """
    basis, gram = plane_through(spec)
    xs, ys, grid_rows = plane_grid(basis, resolution, margin)
    rows = np.vstack([model_rows(), grid_rows])
    start = time.perf_counter()
    results = (executor or InProcessExecutor()).run(
        spec, rows, store, progress=progress, description=f"plane {len(xs)}x{len(ys)}"
    )
    seconds = time.perf_counter() - start
    names = task_metric_names(spec.task)  # binary_f1 only on 2-class tasks; LM metrics on text
    values = {m: np.array([r.result.metrics[m] for r in results]) for m in names}
    stats = {
        "resolution": [len(xs), len(ys)],
        "margin": margin,
        "rows": len(rows),
        "unique_points": len({r.key for r in results}),
        "computed_points": sum(not r.cached for r in results),
        "seconds": round(seconds, 2),
        "examples": len(spec.task),
    }
    return PlaneResult(
        names=[c.name for c in spec.anchors],
        xs=xs,
        ys=ys,
        surfaces={m: v[3:].reshape(len(ys), len(xs)) for m, v in values.items()},
        model_xy=basis.model_xy,
        model_metrics={m: v[:3] for m, v in values.items()},
        u=basis.u,
        v=basis.v,
        gram=gram,
        stats=stats,
        paths=[str(c.path.resolve()) for c in spec.anchors],
        task=spec.task.name,
    )
