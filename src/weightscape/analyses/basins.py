"""Basins: cluster a zoo by linear connectivity and ask what the clusters predict.

Juneja et al. (2023) cluster finetuned models by spectral clustering on the convexity-gap matrix
of their in-domain loss surface, place each model by its distances to the cluster centroids
(||w - c1|| - ||w - c2||, their Fig. 3a), and find that this predicts out-of-distribution
behaviour (HANS) far better than epsilon-sharpness does. Their released code measures those
distances in the spectral embedding of the convexity-gap affinity (``margin="spectral"``, the
default); weightscape also measures them between weight vectors and the clusters' weight-space
means (``margin="weights"``), a different quantity, and reports the correlations of both. Fig. 1
groups the models best and worst on a diagnostic and averages the interpolation curves along
the pairs within and between the two groups (:func:`extreme_groups`,
:func:`extreme_group_curves`). This module composes those steps from the grid, the streamed
weight statistics and the clustering and correlation metrics.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike

from weightscape.analyses.connectivity import ConnectivityGrid
from weightscape.analyses.weight_stats import (
    centroid_distances_from_distances,
    centroid_distances_from_gram,
    centroid_margin,
    gram_matrix,
)
from weightscape.errors import WeightscapeError
from weightscape.metrics.clustering import (
    cluster_table,
    default_delta,
    embedding_centroid_distances,
    spectral_clusters,
    spectral_embedding,
)
from weightscape.metrics.correlation import correlate, membership_regression, predictor_regression
from weightscape.models.checkpoint import Checkpoint
from weightscape.models.space import ParameterSpace

Margin = Literal["spectral", "weights"]
MARGINS: tuple[str, ...] = ("spectral", "weights")
PAIR_TYPES: tuple[str, ...] = ("gen-gen", "heur-heur", "gen-heur")


@dataclass
class BasinAnalysis:
    """Clusters of a zoo and what they predict.

    Attributes:
        names: Model names (grid order).
        matrix: Name of the grid matrix clustered (e.g. ``loss_convexity_gap``).
        labels: Cluster of each model (canonical: cluster 0 holds the first model).
        centroid_distances: (N, k) distance of each model to each cluster's weight centroid.
        margin: (N,) ||w - c_0|| - min_{j != 0} ||w - c_j|| (Juneja et al.'s ||w-c1|| - ||w-c2||)
            of the kind ``margin_kind``.
        model_metrics: per-model measurements (ID metrics, diagnostics, sharpness).
        correlations: metric -> correlation of ``margin`` with it (Pearson and Spearman).
        regressions: metric -> fit of the metric on cluster membership.
        baselines: metric -> {predictor name -> fit on that continuous predictor}.
        table: per-cluster mean, std, overlap and Juneja et al.'s Table 1 separations.
        margin_kind: ``"spectral"`` (distances in the spectral embedding of the affinity, as
            Juneja et al.'s code) or ``"weights"`` (distances between weight vectors).
        margins: both kinds of margin, by kind.
        spectral_distances: (N, k) distance of each model to each cluster's mean in the
            spectral embedding.
        margin_correlations: kind -> metric -> correlation of that kind of margin with it.
        convexity: per cluster, the epsilon-convexity check (filled by the basins study).
        groups: Juneja et al.'s Fig. 1 groups and curves (filled by the basins study).
        settings: what produced the numbers that are not in the config (e.g. sharpness).
    """

    names: list[str]
    matrix: str
    labels: np.ndarray
    centroid_distances: np.ndarray
    margin: np.ndarray
    model_metrics: dict[str, np.ndarray]
    correlations: dict[str, dict[str, Any]] = field(default_factory=dict)
    regressions: dict[str, dict[str, Any]] = field(default_factory=dict)
    baselines: dict[str, dict[str, Any]] = field(default_factory=dict)
    table: list[dict[str, Any]] = field(default_factory=list)
    delta: float = 0.0
    margin_kind: str = "spectral"
    margins: dict[str, np.ndarray] = field(default_factory=dict)
    spectral_distances: np.ndarray | None = None
    margin_correlations: dict[str, dict[str, Any]] = field(default_factory=dict)
    convexity: list[dict[str, Any]] = field(default_factory=list)
    groups: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def k(self) -> int:
        """Number of clusters."""
        return int(self.labels.max()) + 1

    def order_by(self, metric: str) -> np.ndarray:
        """Model indices sorted by a per-model metric (ascending)."""
        return np.argsort(self.model_metrics[metric], kind="stable")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form."""
        spectral = self.spectral_distances
        return {
            "matrix": self.matrix,
            "k": self.k,
            "delta": self.delta,
            "margin": self.margin_kind,
            "models": [
                {
                    "name": n,
                    "cluster": int(c),
                    "margin": float(m),
                    **{f"margin_{kind}": float(v[i]) for kind, v in self.margins.items()},
                    "centroid_distances": d.tolist(),
                    **({} if spectral is None else {"spectral_distances": spectral[i].tolist()}),
                    **{k: float(v[i]) for k, v in self.model_metrics.items()},
                }
                for i, (n, c, m, d) in enumerate(
                    zip(self.names, self.labels, self.margin, self.centroid_distances, strict=True)
                )
            ],
            "correlations": self.correlations,
            "margin_correlations": _jsonable(self.margin_correlations),
            "regressions": _jsonable(self.regressions),
            "baselines": _jsonable(self.baselines),
            "table": _jsonable(self.table),
            "convexity": _jsonable(self.convexity),
            "groups": _jsonable(self.groups),
            "settings": _jsonable(self.settings),
        }


def analyse_basins(
    grid: ConnectivityGrid,
    checkpoints: Sequence[Checkpoint],
    *,
    matrix: str = "loss_convexity_gap",
    k: int | None = None,
    delta: float | None = None,
    space: ParameterSpace | None = None,
    base: Checkpoint | None = None,
    model_metrics: Mapping[str, np.ndarray] | None = None,
    baselines: Sequence[str] = ("sharpness",),
    seed: int = 0,
    margin: Margin = "spectral",
) -> BasinAnalysis:
    """Cluster the zoo on one grid matrix and relate the clusters to per-model metrics.

    Args:
        grid: The connectivity grid of ``checkpoints`` (same order).
        checkpoints: The models, to compute centroid distances in weight space (streamed).
        matrix: Which grid matrix is the distance (convexity gap by default, as Juneja et al.).
        k: Number of clusters; None chooses it by the eigengap.
        delta: Affinity length scale; None uses the median distance.
        space: Tensors that count for centroid distances (all by default), used only when the
            grid has no ``euclidean`` matrix; otherwise that matrix (over the grid's own
            parameter space) gives the centroid distances without reading the weights again.
        base: Subtracted before the Gram matrix for conditioning (does not change distances).
        model_metrics: Per-model measurements to explain (e.g. HANS accuracy); the grid's own
            endpoint metrics are added as ``id_loss`` and ``id_accuracy``.
        baselines: Names in ``model_metrics`` that are alternative predictors (sharpness):
            every other metric is also regressed on each of them, for comparison.
        seed: Seed of the spectral eigensolver.
        margin: Which centroid margin ``correlations`` and the plots use: ``"spectral"``
            (Juneja et al.'s code: distances in the spectral embedding of the affinity the
            clusters come from) or ``"weights"`` (distances between weight vectors and the
            clusters' weight-space means). Both are computed and correlated
            (``margin_correlations``).
    """
    if margin not in MARGINS:
        raise WeightscapeError(
            f"Unknown margin '{margin}' in analyse_basins. Available: {', '.join(MARGINS)}."
        )
    if matrix not in grid.matrices:
        raise WeightscapeError(
            f"The grid has no matrix '{matrix}'. Available: {', '.join(sorted(grid.matrices))}."
        )
    if [c.name for c in checkpoints] != list(grid.names):
        raise WeightscapeError(
            "The checkpoints do not match the grid's models (names and "
            f"order): grid has {', '.join(grid.names)}."
        )
    distances = grid.matrices[matrix]
    labels = spectral_clusters(distances, k=k, delta=delta, seed=seed)
    if "euclidean" in grid.matrices:  # the grid streamed the weights already: reuse it
        centroid_d = centroid_distances_from_distances(grid.matrices["euclidean"], labels)
    else:
        centroid_d = centroid_distances_from_gram(gram_matrix(checkpoints, space, base), labels)
    n_clusters = int(labels.max()) + 1
    spectral_d = embedding_centroid_distances(
        spectral_embedding(distances, max(n_clusters, 2), delta, seed), labels
    )
    margins = {
        kind: centroid_margin(d) if n_clusters > 1 else np.zeros(len(labels))
        for kind, d in (("spectral", spectral_d), ("weights", centroid_d))
    }
    metrics = {
        "id_loss": grid.endpoint_metrics["loss"],
        "id_accuracy": grid.endpoint_metrics["accuracy"],
        **dict(model_metrics or {}),
    }
    analysis = BasinAnalysis(
        names=list(grid.names),
        matrix=matrix,
        labels=labels,
        centroid_distances=centroid_d,
        margin=margins[margin],
        model_metrics={k_: np.asarray(v, float) for k_, v in metrics.items()},
        delta=float(delta if delta is not None else default_delta(distances)),
        margin_kind=margin,
        margins=margins,
        spectral_distances=spectral_d,
    )
    _explain(analysis, [b for b in baselines if b in metrics])
    return analysis


def extreme_groups(values: ArrayLike, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Juneja et al.'s Fig. 1 groups: the ``k`` models highest and the ``k`` lowest on a metric.

    As their ``plot/peak_valley_plains.py``: the models sorted by the metric in ascending order
    (a stable sort, so ties keep the zoo's order); the last ``k`` are the top group ("gen.", e.g.
    best on HANS-LO), the first ``k`` the bottom group ("heur."). ``k`` is capped at half the
    zoo so that the groups are disjoint (their code lets them overlap).

    Args:
        values: One finite value per model, at least 2.
        k: Models per group, an int >= 1.

    Returns:
        ``(top, bottom)``: model indices, each in ascending order of the metric.

    >>> extreme_groups([0.3, 0.9, 0.1, 0.5, 0.7, 0.2], k=2)
    (array([4, 1]), array([2, 5]))
    """
    array = np.asarray(values, dtype=np.float64)
    integral = isinstance(k, numbers.Integral) and not isinstance(k, bool)
    if array.ndim != 1 or array.size < 2 or not np.all(np.isfinite(array)):
        raise WeightscapeError(
            "The 'values' parameter of extreme_groups must hold one finite number per model, "
            f"at least 2. Got shape {array.shape} instead."
        )
    if not integral or k < 1:
        raise WeightscapeError(
            f"The 'k' parameter of extreme_groups must be an int >= 1. Got {k!r} instead."
        )
    k = min(int(k), array.size // 2)
    order = np.argsort(array, kind="stable")
    return order[array.size - k :], order[:k]


def group_pair_curves(
    curves: ArrayLike, top: Sequence[int], bottom: Sequence[int]
) -> dict[str, dict[str, Any]]:
    """Mean and spread of the curves along the pairs within and between the two groups.

    ``curves[i, j]`` is the curve from model i (t = 0) to model j (t = 1). As Juneja et al.'s
    Fig. 1 (``plot/peak_valley_plains.py``), a within-group mean runs over both orders of each
    pair (so it is symmetric in t) and the between-group mean runs from the top model (t = 0) to
    the bottom model (t = 1).

    Returns:
        pair type (``gen-gen``, ``heur-heur``, ``gen-heur``) -> ``{"mean", "std", "pairs"}``:
        the mean and population std at each t, and the number of distinct pairs; a group of one
        model has no pairs (``mean`` and ``std`` None).

    >>> c = np.zeros((3, 3, 2)); c[0, 1] = [1, 3]; c[1, 0] = [3, 1]; c[0, 2] = [5, 7]
    >>> out = group_pair_curves(c, top=[0, 1], bottom=[2])
    >>> out["gen-gen"]["mean"], out["gen-gen"]["pairs"], out["heur-heur"]["pairs"]
    ([2.0, 2.0], 1, 0)
    >>> out["gen-heur"]["mean"]  # (0 -> 2) and (1 -> 2)
    [2.5, 3.5]
    """
    array = np.asarray(curves, dtype=np.float64)
    ordered = {
        "gen-gen": [(i, j) for i in top for j in top if i != j],
        "heur-heur": [(i, j) for i in bottom for j in bottom if i != j],
        "gen-heur": [(i, j) for i in top for j in bottom],
    }
    out = {}
    for name, pairs in ordered.items():
        distinct = len({frozenset(pair) for pair in pairs})
        if not pairs:
            out[name] = {"mean": None, "std": None, "pairs": 0}
            continue
        stack = np.stack([array[i, j] for i, j in pairs])
        out[name] = {
            "mean": stack.mean(axis=0).tolist(),
            "std": stack.std(axis=0).tolist(),
            "pairs": distinct,
        }
    return out


def extreme_group_curves(
    grid: ConnectivityGrid,
    values: ArrayLike,
    by: str,
    *,
    k: int = 5,
    diagnostics: Mapping[str, ConnectivityGrid] | None = None,
) -> dict[str, Any]:
    """Juneja et al.'s Fig. 1: groups by a diagnostic, and the mean curves along their pairs.

    Args:
        grid: The in-distribution grid (its curves are the ID curves).
        values: The ranking metric, one value per model of ``grid`` (e.g. HANS-LO accuracy).
        by: The ranking metric's name, for the record.
        k: Models per group (capped at half the zoo).
        diagnostics: task name -> a grid over (at least) the two groups' models on that task,
            with the same t values, e.g. from :func:`~weightscape.analyses.connectivity.
            connectivity_grid` on the group members; matched to ``grid`` by model name.

    Returns:
        ``{"by", "k", "top", "bottom", "top_values", "bottom_values", "ts", "id_task",
        "curves": {"in_distribution": {metric: {pair type: {"mean", "std", "pairs"}}},
        "diagnostics": {task: {metric: ...}}}}``.
    """
    values = np.asarray(values, dtype=np.float64)
    top, bottom = extreme_groups(values, k)
    sources = {}
    for task, other in (diagnostics or {}).items():
        if not np.allclose(other.ts, grid.ts):
            raise WeightscapeError(
                f"The diagnostic grid for '{task}' has other t values than the grid "
                f"({len(other.ts)} points against {len(grid.ts)})."
            )
        position = {name: i for i, name in enumerate(other.names)}
        missing = [grid.names[i] for i in (*top, *bottom) if grid.names[i] not in position]
        if missing:
            raise WeightscapeError(
                f"The diagnostic grid for '{task}' lacks the models {', '.join(missing)}."
            )
        sources[task] = (other, [position.get(name, -1) for name in grid.names])

    def summary(source: ConnectivityGrid, index: list[int]) -> dict[str, Any]:
        rows_top, rows_bottom = [index[i] for i in top], [index[i] for i in bottom]
        return {
            metric: group_pair_curves(tensor, rows_top, rows_bottom)
            for metric, tensor in source.curves.items()
        }

    curves = {
        "in_distribution": summary(grid, list(range(len(grid.names)))),
        "diagnostics": {task: summary(*source) for task, source in sources.items()},
    }
    return {
        "by": by,
        "k": len(top),
        "top": [grid.names[i] for i in top],
        "bottom": [grid.names[i] for i in bottom],
        "top_values": values[top].tolist(),
        "bottom_values": values[bottom].tolist(),
        "ts": np.asarray(grid.ts).tolist(),
        "id_task": grid.task,
        "curves": curves,
    }


def _explain(analysis: BasinAnalysis, baselines: list[str]) -> None:
    n_clusters = analysis.k
    for name, values in analysis.model_metrics.items():
        if name in baselines or np.ptp(values) == 0:
            continue
        if len(values) >= 3 and n_clusters > 1:
            analysis.correlations[name] = correlate(analysis.margin, values)
            for kind, margin in analysis.margins.items():
                analysis.margin_correlations.setdefault(kind, {})[name] = correlate(margin, values)
            analysis.regressions[name] = membership_regression(analysis.labels, values)
        analysis.baselines[name] = {
            b: predictor_regression(analysis.model_metrics[b], values) for b in baselines
        }
    analysis.table = cluster_table(analysis.labels, analysis.model_metrics)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value
