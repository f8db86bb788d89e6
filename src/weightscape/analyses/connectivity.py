"""N x N connectivity maps: the linear path between every pair of a zoo.

Juneja et al. (2023) interpolate every pair of 100 finetuned models and read basins off the
matrices of convexity gaps. Here every pair's path is a set of coefficient rows over all N anchors
(two non-zero entries), evaluated by one executor through the results store: the upper triangle
only, each endpoint once (a one-hot row shared by every pair), every point resumable.

The grid also holds the pairwise Euclidean distances over the parameter space (``euclidean``),
the length of each pair's line: the AUC matrix ``loss_auc`` measures the path in that distance,
as Juneja et al.'s ``AreaUnderCurve(euc_dist, losses)`` does, and ``loss_auc_t`` in t (per unit
t; ``loss_auc = loss_auc_t * euclidean``).
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from weightscape.evaluation.engine import EngineSpec
from weightscape.geometry import even_grid, get_path
from weightscape.metrics import grid_matrices
from weightscape.models.checkpoint import Checkpoint
from weightscape.models.space import ParameterSpace
from weightscape.outputs import save_npz, write_json
from weightscape.runtime.executor import Executor, InProcessExecutor
from weightscape.runtime.store import ResultStore

GRID_FORMAT = 2
"""Version of ``grid.json``/``grid.npz``. 2: ``loss_auc`` is per unit Euclidean distance and
``loss_auc_t`` per unit t. A file without the field (format 1) holds ``loss_auc`` per unit t;
:meth:`ConnectivityGrid.load` recomputes it, never relabels it."""


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
        matrices: name -> symmetric (N, N) array with a zero diagonal: every grid matrix the
            curve summaries declare, and ``euclidean``, the distance between the two models of
            each pair over the parameter space (the length of their line).
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
        save_npz(folder / "grid.npz", **arrays)
        meta = {
            "grid_format": GRID_FORMAT,
            "names": self.names,
            "tags": self.tags,
            "stats": self.stats,
            "paths": self.paths,
            "task": self.task,
        }
        write_json(folder / "grid.json", meta, default=str)
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> ConnectivityGrid:
        """Read a grid written by :meth:`save`.

        A grid saved before ``grid_format`` 2 holds ``loss_auc`` per unit t: it is recomputed
        from the stored curves, per unit Euclidean distance from the stored ``euclidean``
        matrix (or left out, with a warning, when the grid has none), and ``loss_auc_t`` is
        added; a number is never read under a name whose unit it does not have.

        Raises:
            WeightscapeError: When ``folder`` holds no grid, or one of a newer format.
        """
        from weightscape.errors import WeightscapeError

        folder = Path(folder)
        if not (folder / "grid.npz").is_file() or not (folder / "grid.json").is_file():
            raise WeightscapeError(
                f"'{folder}' holds no grid (grid.npz and grid.json). Run "
                "`weightscape grid --out` into it first."
            )
        try:
            return cls._read(folder)
        except (ValueError, KeyError, TypeError, OSError, EOFError) as err:
            raise WeightscapeError(
                f"The grid in '{folder}' is incomplete or damaged ({type(err).__name__}: {err}); "
                "a run killed while writing it, or an edited file. Rerun `weightscape grid` into "
                "it (stored points are reused)."
            ) from None

    @classmethod
    def _read(cls, folder: Path) -> ConnectivityGrid:
        from weightscape.errors import WeightscapeError

        meta = json.loads((folder / "grid.json").read_text())
        version = meta.get("grid_format", 1)
        if version > GRID_FORMAT:
            raise WeightscapeError(
                f"The grid in '{folder}' has format {version}; this weightscape reads up to "
                f"{GRID_FORMAT}. Upgrade weightscape, or rerun `weightscape grid`."
            )
        with np.load(folder / "grid.npz") as data:

            def part(prefix: str) -> dict[str, np.ndarray]:
                return {k[len(prefix) :]: data[k] for k in data.files if k.startswith(prefix)}

            grid = cls(
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
        if version < 2:
            _upgrade_length_matrices(grid, folder)
        return grid


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


def anchor_distances(
    checkpoints: Iterable[Checkpoint],
    space: ParameterSpace | None = None,
    *,
    without_heads: bool = False,
) -> np.ndarray:
    """Pairwise Euclidean distances between checkpoints over a parameter space's tensors.

    ``||theta_i - theta_j||`` over every floating-point tensor the space selects (integer
    buffers such as ``position_ids`` are no weights), as Juneja et al.'s ``interpolate_1d.py``
    computes ``euclidean_dist`` (a square root of the summed squared differences, over the whole
    state dict there: the default space). The Gram matrix is taken about the first checkpoint,
    so that the distance of two nearby models is not the small difference of two large norms.

    Args:
        checkpoints: N checkpoints of one architecture.
        space: Which tensors take part; all of them by default.
        without_heads: Leave the task heads out, as an engine with a probe does (it mixes no
            head, and the anchors' heads may differ in shape).

    Returns:
        An (N, N) symmetric float64 array with a zero diagonal.
    """
    from weightscape.analyses.weight_stats import cached_gram_matrix, euclidean_distances
    from weightscape.models.space import HEAD_PATTERNS

    models = list(checkpoints)
    space = space or ParameterSpace()
    if without_heads:
        space = space.model_copy(update={"exclude": (*space.exclude, *HEAD_PATTERNS)})
    # Kept by the anchors' content hashes: a stored rerun does not read every anchor again.
    return euclidean_distances(cached_gram_matrix(models, space, base=models[0]))


def connectivity_grid(
    spec: EngineSpec,
    *,
    points: int = 11,
    store: ResultStore | None = None,
    executor: Executor | None = None,
    progress: bool = False,
) -> ConnectivityGrid:
    """Walk the line between every pair of ``spec.anchors`` and summarise each path.

    The matrices are every grid matrix the curve summaries declare, and ``euclidean``: the
    distance of each pair over ``spec.space`` (its heads left out under a probe, which mixes
    none), the length the AUC (``loss_auc``) is measured in.
    """
    ts = even_grid(points)
    n = len(spec.anchors)
    rows, pairs = pair_rows(n, ts)
    start = time.perf_counter()
    executor = executor or InProcessExecutor()
    passes = getattr(executor, "forward_passes", None)  # an in-process executor counts them
    before = passes(spec) if passes is not None else None
    results = executor.run(spec, rows, store, progress=progress, description=f"grid {n}x{n}")
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
        # batched forward passes run for the points computed now (None: another executor)
        "forward_passes": passes(spec) - before if passes is not None else None,
    }
    distances = anchor_distances(spec.anchors, spec.space, without_heads=spec.probe is not None)
    return ConnectivityGrid(
        names=[c.name for c in spec.anchors],
        ts=ts,
        curves=curves,
        matrices={**matrices_from_curves(curves, distances), "euclidean": distances},
        stats=stats,
        endpoint_metrics={m: v[:n] for m, v in values.items()},
        tags=[dict(c.tags) for c in spec.anchors],
        paths=[str(c.path.resolve()) for c in spec.anchors],
        task=spec.task.name,
    )


def _curve_tensor(values: np.ndarray, pairs, n: int, k: int) -> np.ndarray:
    curves = np.full((n, n, k), np.nan)
    for p, (i, j) in enumerate(pairs):
        curve = values[p * k : (p + 1) * k]
        curves[i, j], curves[j, i] = curve, curve[::-1]
    return curves


def matrices_from_curves(
    curves: dict[str, np.ndarray], distances: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Every grid matrix the curve-summary rows declare (barrier height, convexity gap, AUC, ...).

    Each summary is applied in its point metric's declared direction to the curve from i to j;
    the matrix is symmetric because grid summaries are declared reversal-symmetric. A summary
    that needs the path's length (the AUC per unit distance) gets ``distances[i, j]``, the
    Euclidean distance between models i and j; without ``distances`` its matrix is left out,
    never computed with a length of 1 under its name.
    """
    n = next(iter(curves.values())).shape[0]
    out = {}
    for name, (metric, summary) in grid_matrices().items():
        needs_length = "length" in summary.needs
        if needs_length and distances is None:
            continue
        matrix = np.zeros((n, n))
        for i in range(n):
            for j in range(i + 1, n):
                curve = curves[metric.name][i, j]
                length = float(distances[i, j]) if needs_length else 1.0
                value = summary(curve, higher_is_better=metric.higher_is_better, length=length)
                matrix[i, j] = matrix[j, i] = value
        out[name] = matrix
    return out


def _upgrade_length_matrices(grid: ConnectivityGrid, folder: Path) -> None:
    """Recompute, from a format-1 grid's curves, the matrices whose unit changed in format 2.

    Format 1 stored ``loss_auc`` per unit t. Every matrix of a summary that needs the length is
    dropped and recomputed from the stored curves with the stored ``euclidean`` distances (left
    out, with a warning, when there are none), and matrices new in format 2 (``loss_auc_t``) are
    computed from the curves too.
    """
    distances = grid.matrices.get("euclidean")
    declared = grid_matrices()
    for name, (_, summary) in declared.items():
        if "length" in summary.needs:
            grid.matrices.pop(name, None)
    recomputed = matrices_from_curves(grid.curves, distances)
    for name, matrix in recomputed.items():
        if name not in grid.matrices:
            grid.matrices[name] = matrix
    lost = [name for name in declared if name not in grid.matrices]
    if lost:
        warnings.warn(
            f"The grid in '{folder}' predates grid format 2, when 'loss_auc' was per unit t, "
            f"and holds no 'euclidean' matrix, so {', '.join(lost)} (per unit Euclidean "
            "distance) cannot be recomputed and is left out; 'loss_auc_t' (per unit t) is "
            "there. Rerun `weightscape grid` into it: every point is in its results store.",
            stacklevel=3,
        )
