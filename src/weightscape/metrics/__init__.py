"""Pure functions on measured results: curve metrics, clustering, correlation.

No torch, no data: metrics take plain arrays of numbers, as stored in the results store.
scipy and scikit-learn are imported inside the functions that need them.

Point metrics and curve summaries are registries (:mod:`weightscape.metrics.registry`) filled by
the modules imported here; every row declares its direction or the arguments it needs.
"""

from __future__ import annotations

from weightscape.metrics.classification import classification_metrics
from weightscape.metrics.clustering import (
    affinity_from_distances,
    canonical_labels,
    cluster_table,
    clustering_accuracy,
    default_delta,
    eigengap_k,
    per_group_f1,
    spectral_clusters,
)
from weightscape.metrics.correlation import correlate, membership_regression, predictor_regression
from weightscape.metrics.curves import (
    auc,
    auc_t,
    barrier_height,
    best_t,
    best_value,
    convexity_gap,
)
from weightscape.metrics.language_model import text_metrics
from weightscape.metrics.registry import (
    CURVE_SUMMARIES,
    POINT_METRICS,
    CurveSummary,
    PointMetric,
    get_curve_summary,
    get_point_metric,
    grid_matrices,
    point_metric_names,
    task_metric_names,
)

__all__ = [
    "CURVE_SUMMARIES",
    "POINT_METRICS",
    "CurveSummary",
    "PointMetric",
    "affinity_from_distances",
    "auc",
    "auc_t",
    "barrier_height",
    "best_t",
    "best_value",
    "canonical_labels",
    "classification_metrics",
    "cluster_table",
    "clustering_accuracy",
    "convexity_gap",
    "correlate",
    "default_delta",
    "eigengap_k",
    "get_curve_summary",
    "get_point_metric",
    "grid_matrices",
    "membership_regression",
    "per_group_f1",
    "point_metric_names",
    "predictor_regression",
    "spectral_clusters",
    "task_metric_names",
    "text_metrics",
]
