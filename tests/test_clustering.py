"""Spectral clustering of planted structure, cluster scoring, cluster tables and correlations.

Planted distance matrices: models in the same group are 0.1-0.2 apart, models in different
groups 1.0-1.2 apart (uniform noise, symmetrised), as convexity gaps within and between basins.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from weightscape.errors import WeightscapeError
from weightscape.metrics.clustering import (
    affinity_from_distances,
    canonical_labels,
    cluster_table,
    clustering_accuracy,
    eigengap_k,
    per_group_f1,
    spectral_clusters,
)
from weightscape.metrics.correlation import (
    correlate,
    membership_regression,
    predictor_regression,
)


def planted(sizes: list[int], seed: int = 0, within: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """A noisy distance matrix with groups of the given sizes, and the group of each model."""
    rng = np.random.default_rng(seed)
    groups = np.repeat(np.arange(len(sizes)), sizes)
    same = groups[:, None] == groups[None, :]
    distances = np.where(same, within, 1.0) + rng.uniform(0, 0.2, size=same.shape)
    distances = (distances + distances.T) / 2
    np.fill_diagonal(distances, 0.0)
    return distances, groups


# --- affinity --------------------------------------------------------------------------------


def test_affinity_hand_case_and_default_delta():
    # Off-diagonal distances 1, 2, 3: median 2, so A_ij = exp(-d^2 / 8).
    d = np.array([[0.0, 1.0, 2.0], [1.0, 0.0, 3.0], [2.0, 3.0, 0.0]])
    expected = np.exp(-(d**2) / 8.0)
    np.testing.assert_allclose(affinity_from_distances(d), expected, rtol=1e-15)
    np.testing.assert_allclose(affinity_from_distances(d, delta=1.0), np.exp(-(d**2) / 2.0))


def test_affinity_default_delta_ignores_zero_distances():
    # Convexity gaps are 0 within a basin: four zeros and two 2s -> the positive median is 2.
    groups = np.array([0, 0, 0, 1])
    d = np.where(groups[:, None] == groups[None, :], 0.0, 2.0)
    affinity = affinity_from_distances(d)
    assert affinity[0, 3] == pytest.approx(math.exp(-0.5))
    assert affinity[0, 1] == 1.0


@pytest.mark.parametrize(
    ("distances", "message"),
    [
        (np.zeros((2, 3)), "square matrix"),
        ([[0.0, 1.0], [2.0, 0.0]], "must be symmetric. Got [0, 1] = 1.0 but [1, 0] = 2.0"),
        ([[0.0, -1.0], [-1.0, 0.0]], "must be non-negative"),
        ([[0.0, np.nan], [np.nan, 0.0]], "finite numbers. Got nan at [0, 1]"),
        ([[1.0, 1.0], [1.0, 0.0]], "zero diagonal"),
        (np.zeros((3, 3)), "all zeros"),
        ([[0.0]], "at least 2 x 2"),
    ],
)
def test_affinity_rejects_bad_distances(distances, message):
    with pytest.raises(WeightscapeError, match=re.escape(message)):
        affinity_from_distances(distances)


@pytest.mark.parametrize("delta", [0.0, -1.0, float("inf"), True, "1"])
def test_affinity_rejects_bad_delta(delta):
    with pytest.raises(WeightscapeError, match="'delta' parameter of affinity_from_distances"):
        affinity_from_distances([[0.0, 1.0], [1.0, 0.0]], delta=delta)


# --- eigengap --------------------------------------------------------------------------------


@pytest.mark.parametrize("blocks", [2, 3, 4])
def test_eigengap_counts_the_blocks_of_a_clean_block_matrix(blocks):
    affinity = np.kron(np.eye(blocks), np.ones((3, 3))) + 1e-3
    assert eigengap_k(affinity) == blocks


def test_eigengap_checks_its_inputs():
    with pytest.raises(WeightscapeError, match="at least 3 models"):
        eigengap_k(np.ones((2, 2)))
    message = "The 'k_max' parameter of eigengap_k must be an int in [2, 5] for 6 models. Got 6"
    with pytest.raises(WeightscapeError, match=re.escape(message)):
        eigengap_k(np.ones((6, 6)), k_max=6)


# --- spectral clusters -----------------------------------------------------------------------


@pytest.mark.parametrize("sizes", [[4, 5], [3, 4, 5], [5, 5, 5]])
@pytest.mark.parametrize("given_k", [True, False])
def test_spectral_clusters_recover_planted_groups(sizes, given_k):
    distances, groups = planted(sizes, seed=len(sizes))
    labels = spectral_clusters(distances, k=len(sizes) if given_k else None)
    assert clustering_accuracy(groups, labels) == 1.0
    assert labels.tolist() == canonical_labels(groups).tolist()


def test_spectral_clusters_recover_basins_with_zero_gaps_inside():
    groups = np.array([0, 1, 0, 0, 1, 0, 0, 1, 0, 0])
    distances = np.where(groups[:, None] == groups[None, :], 0.0, 0.4)
    labels = spectral_clusters(distances)
    assert labels.tolist() == canonical_labels(groups).tolist()  # first model in cluster 0


def test_spectral_clusters_are_canonical_and_follow_a_reordering():
    distances, groups = planted([4, 3, 5], seed=7)
    order = np.random.default_rng(1).permutation(groups.size)
    labels = spectral_clusters(distances, k=3)
    shuffled = spectral_clusters(distances[np.ix_(order, order)], k=3)
    assert shuffled.tolist() == canonical_labels(labels[order]).tolist()
    assert labels[0] == 0 and shuffled[0] == 0


def test_spectral_clusters_rejects_bad_k():
    distances, _ = planted([4, 5])
    message = "The 'k' parameter of spectral_clusters must be an int in [2, 9] for 9 models. Got 1"
    with pytest.raises(WeightscapeError, match=re.escape(message)):
        spectral_clusters(distances, k=1)


# --- clustering accuracy and F1 --------------------------------------------------------------

partitions = st.lists(st.integers(0, 3), min_size=1, max_size=20)


@given(partitions, st.permutations(range(4)), st.data())
def test_accuracy_ignores_label_names(true, renaming, data):
    pred = data.draw(st.lists(st.integers(0, 3), min_size=len(true), max_size=len(true)))
    renamed = [renaming[p] for p in pred]
    assert clustering_accuracy(true, renamed) == clustering_accuracy(true, pred)
    assert clustering_accuracy(pred, true) == pytest.approx(clustering_accuracy(true, pred))


@given(partitions, st.permutations(["w", "x", "y", "z"]))
def test_accuracy_of_identical_partitions_is_one(true, names):
    assert clustering_accuracy(true, [names[t] for t in true]) == 1.0
    assert set(per_group_f1(true, true).values()) == {1.0}


def test_accuracy_and_f1_hand_case_with_unequal_group_counts():
    # Contingency (rows a, b, c; columns 0, 1): a = (2, 1), b = (0, 2), c = (0, 1).
    # Best matching a-0 (2) and b-1 (2): accuracy 4/6; c is left unmatched.
    # F1: a vs cluster 0: precision 2/2, recall 2/3 -> 0.8; b vs cluster 1: 2/4, 2/2 -> 2/3.
    true = ["a", "a", "a", "b", "b", "c"]
    pred = [0, 0, 1, 1, 1, 1]
    assert clustering_accuracy(true, pred) == pytest.approx(4 / 6)
    f1 = per_group_f1(true, pred)
    assert f1 == pytest.approx({"a": 0.8, "b": 2 / 3, "c": 0.0})


def test_accuracy_with_more_clusters_than_groups():
    assert clustering_accuracy([0, 0, 0, 0], [0, 0, 1, 2]) == 0.5
    assert per_group_f1([0, 0, 0, 0], [0, 0, 1, 2]) == pytest.approx({0: 2 / 3})


def test_accuracy_rejects_mismatched_lengths():
    with pytest.raises(WeightscapeError, match=r"same models\. Got 2 and 3 labels"):
        clustering_accuracy([0, 1], [0, 1, 1])


# --- cluster table ---------------------------------------------------------------------------


def test_cluster_table_hand_case():
    # Cluster 0: 0.1, 0.2, 0.5: mean 0.8/3, squares about the mean 0.30 - 0.64/3 = 0.26/3, sample
    # std sqrt(0.13/3). Cluster 1 spans [0.4, 0.9], which holds 0.5 -> overlap 1/3.
    # Cluster 1: 0.4, 0.9 (sample std sqrt(0.125)); cluster 0 spans [0.1, 0.5], which holds 0.4
    # -> overlap 1/2.
    rows = cluster_table([0, 0, 0, 1, 1], {"acc": [0.1, 0.2, 0.5, 0.4, 0.9]})
    assert [(r["cluster"], r["size"]) for r in rows] == [(0, 3), (1, 2)]
    first, second = rows[0]["metrics"]["acc"], rows[1]["metrics"]["acc"]
    assert first == pytest.approx(
        {"mean": 0.8 / 3, "std": math.sqrt(0.13 / 3), "min": 0.1, "max": 0.5, "overlap": 1 / 3}
    )
    assert second["overlap"] == 0.5 and second["std"] == pytest.approx(math.sqrt(0.125))


def test_cluster_table_overlap_uses_each_other_cluster_range():
    # Cluster 1 (4, 5) lies between cluster 0 (0, 3) and cluster 2 (6, 9): inside the pooled
    # range [0, 9] of the others but inside neither range, so its overlap is 0.
    rows = cluster_table([0, 0, 1, 1, 2, 2], {"f": [0, 3, 4, 5, 6, 9], "g": [1, 1, 1, 1, 1, 1]})
    assert [r["metrics"]["f"]["overlap"] for r in rows] == [0.0, 0.0, 0.0]
    assert [r["metrics"]["g"]["overlap"] for r in rows] == [1.0, 1.0, 1.0]


def test_cluster_table_single_cluster_and_bad_metric():
    (row,) = cluster_table(["x", "x"], {"f": [1.0, 2.0]})
    assert row["cluster"] == "x" and math.isnan(row["metrics"]["f"]["overlap"])
    with pytest.raises(WeightscapeError, match=r"metric 'f' .* one finite number per model"):
        cluster_table([0, 1], {"f": [1.0]})


# --- correlation and regression --------------------------------------------------------------


def test_correlate_hand_cases():
    exact = correlate([0, 1, 2, 3, 4], [1, 3, 5, 7, 9])  # y = 2x + 1
    assert exact["pearson_r"] == pytest.approx(1.0) and exact["spearman_rho"] == pytest.approx(1.0)
    assert exact["pearson_p"] < 1e-6 and exact["n"] == 5
    # x = (1, 2, 3), y = (1, 3, 2): deviations (-1, 0, 1) and (-1, 1, 0): r = 1 / sqrt(2 * 2).
    half = correlate([1, 2, 3], [1, 3, 2])
    assert half["pearson_r"] == pytest.approx(0.5) and half["spearman_rho"] == pytest.approx(0.5)
    assert correlate([1, 2, 3, 4], [4, 3, 2, 1])["pearson_r"] == pytest.approx(-1.0)


def test_correlate_rejects_bad_input():
    with pytest.raises(WeightscapeError, match="'x' and 'y' parameters of correlate"):
        correlate([1, 2, 3], [1, 2, 3, 4])
    with pytest.raises(WeightscapeError, match=r"'y' parameter of correlate .* at least 3"):
        correlate([1, 2, 3], [1, 2, np.nan])


def test_membership_regression_explains_a_function_of_membership():
    fit = membership_regression(["s", "u", "s", "s", "u"], [0.3, 0.1, 0.3, 0.3, 0.1])
    assert fit["r2"] == pytest.approx(1.0) and fit["k"] == 2
    assert fit["coefficients"] == pytest.approx({"s": 0.3, "u": 0.1})


def test_membership_regression_r2_is_squared_point_biserial():
    labels = np.array([0, 0, 0, 1, 1, 1, 1])
    y = np.array([0.2, 0.4, 0.3, 0.5, 0.9, 0.6, 0.7])
    fit = membership_regression(labels, y)
    assert fit["r2"] == pytest.approx(correlate(labels, y)["pearson_r"] ** 2)
    assert fit["coefficients"] == pytest.approx({0: 0.3, 1: 0.675})
    # Adjusted R^2 with n = 7 and 1 predictor: 1 - (1 - R^2) * 6 / 5.
    assert fit["adjusted_r2"] == pytest.approx(1 - (1 - fit["r2"]) * 6 / 5)


def test_predictor_regression_fits_a_line():
    fit = predictor_regression([0.0, 1.0, 2.0, 3.0], [1.0, 3.0, 5.0, 7.0])
    assert fit == pytest.approx(
        {"r2": 1.0, "adjusted_r2": 1.0, "slope": 2.0, "intercept": 1.0, "n": 4}
    )
