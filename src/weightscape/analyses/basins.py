"""Basins: cluster a zoo by linear connectivity and ask what the clusters predict.

Juneja et al. (2023) cluster finetuned models by spectral clustering on the convexity-gap matrix
of their in-domain loss surface, place each model by its distances to the cluster centroids in
weight space (||w - c1|| - ||w - c2||), and find that this predicts out-of-distribution behaviour
(HANS) far better than epsilon-sharpness does. This module composes those steps from the grid,
the streamed weight statistics and the clustering and correlation metrics.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from weightscape.analyses.connectivity import ConnectivityGrid
from weightscape.analyses.weight_stats import (
    centroid_distances_from_distances,
    centroid_distances_from_gram,
    centroid_margin,
    gram_matrix,
)
from weightscape.errors import WeightscapeError
from weightscape.metrics.clustering import cluster_table, default_delta, spectral_clusters
from weightscape.metrics.correlation import correlate, membership_regression, predictor_regression
from weightscape.models.checkpoint import Checkpoint
from weightscape.models.space import ParameterSpace


@dataclass
class BasinAnalysis:
    """Clusters of a zoo and what they predict.

    Attributes:
        names: Model names (grid order).
        matrix: Name of the grid matrix clustered (e.g. ``loss_convexity_gap``).
        labels: Cluster of each model (canonical: cluster 0 holds the first model).
        centroid_distances: (N, k) distance of each model to each cluster's weight centroid.
        margin: (N,) ||w - c_0|| - min_{j != 0} ||w - c_j|| (Juneja et al.'s ||w-c1|| - ||w-c2||).
        model_metrics: per-model measurements (ID metrics, diagnostics, sharpness).
        correlations: metric -> correlation of the margin with it (Pearson and Spearman).
        regressions: metric -> fit of the metric on cluster membership.
        baselines: metric -> {predictor name -> fit on that continuous predictor}.
        table: per-cluster mean, std and overlap of every metric (Juneja et al.'s Table 1).
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

    @property
    def k(self) -> int:
        """Number of clusters."""
        return int(self.labels.max()) + 1

    def order_by(self, metric: str) -> np.ndarray:
        """Model indices sorted by a per-model metric (ascending)."""
        return np.argsort(self.model_metrics[metric], kind="stable")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form."""
        return {
            "matrix": self.matrix,
            "k": self.k,
            "delta": self.delta,
            "models": [
                {
                    "name": n,
                    "cluster": int(c),
                    "margin": float(m),
                    "centroid_distances": d.tolist(),
                    **{k: float(v[i]) for k, v in self.model_metrics.items()},
                }
                for i, (n, c, m, d) in enumerate(
                    zip(self.names, self.labels, self.margin, self.centroid_distances, strict=True)
                )
            ],
            "correlations": self.correlations,
            "regressions": _jsonable(self.regressions),
            "baselines": _jsonable(self.baselines),
            "table": _jsonable(self.table),
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
    """
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
    margin = centroid_margin(centroid_d) if centroid_d.shape[1] > 1 else np.zeros(len(labels))
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
        margin=margin,
        model_metrics={k_: np.asarray(v, float) for k_, v in metrics.items()},
        delta=float(delta if delta is not None else default_delta(distances)),
    )
    _explain(analysis, [b for b in baselines if b in metrics])
    return analysis


def _explain(analysis: BasinAnalysis, baselines: list[str]) -> None:
    n_clusters = analysis.k
    for name, values in analysis.model_metrics.items():
        if name in baselines or np.ptp(values) == 0:
            continue
        if len(values) >= 3 and n_clusters > 1:
            analysis.correlations[name] = correlate(analysis.margin, values)
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
