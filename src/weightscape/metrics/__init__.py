"""Pure functions on measured results: curve metrics, clustering, correlation.

No torch, no data: metrics take plain arrays of numbers, as stored in the results store.
scipy and scikit-learn are imported inside the functions that need them.
"""

from __future__ import annotations

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
from weightscape.metrics.curves import auc, barrier_height, convexity_gap

__all__ = [
    "affinity_from_distances",
    "auc",
    "barrier_height",
    "canonical_labels",
    "cluster_table",
    "clustering_accuracy",
    "convexity_gap",
    "correlate",
    "default_delta",
    "eigengap_k",
    "membership_regression",
    "per_group_f1",
    "predictor_regression",
    "spectral_clusters",
]
