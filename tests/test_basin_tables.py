"""Juneja et al.'s per-cluster statistics and groupings, on hand-worked numbers.

* Table 1: (mu_C1 - mu_C2) / sigma_C1 and (mu_C1 - max_C2) / sigma_C1, C1 the larger cluster,
  sigma the population std (np.std, as their plot/cluster_wise_means_std_max.py);
* the spectral embedding their centroid margin is measured in (Fig. 3a), against numpy's eigh;
* Fig. 1's top-k / bottom-k groups and the mean curves along their pairs;
* the epsilon-convexity arithmetic (largest gap inside a cluster, Jensen gaps).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from weightscape.analyses.basins import extreme_groups, group_pair_curves
from weightscape.analyses.convexity import jensen_gaps, largest_within_cluster
from weightscape.analyses.weight_stats import centroid_margin
from weightscape.errors import WeightscapeError
from weightscape.metrics.clustering import (
    cluster_table,
    embedding_centroid_distances,
    spectral_embedding,
)

# --- Table 1 separation ------------------------------------------------------------------------


def test_separation_hand_case():
    # C1 = cluster 0 (3 models): 0.1, 0.2, 0.5, mean 0.8/3; squares about the mean sum to
    # 0.26/3, so the population variance is 0.26/9. C2 = cluster 1: 0.4, 0.9 (mean 0.65, max 0.9).
    rows = cluster_table([0, 0, 0, 1, 1], {"acc": [0.1, 0.2, 0.5, 0.4, 0.9]})
    sigma = math.sqrt(0.26 / 9)
    assert [r["c1"] for r in rows] == [True, False]
    assert rows[1]["separation"]["acc"] == pytest.approx(
        {"mean": (0.8 / 3 - 0.65) / sigma, "max": (0.8 / 3 - 0.9) / sigma}
    )
    assert all(math.isnan(v) for v in rows[0]["separation"]["acc"].values())
    # the existing statistic is untouched and still there, under its own name
    assert rows[1]["metrics"]["acc"]["overlap"] == 0.5


def test_separation_reproduces_juneja_table_1_arithmetic():
    # A C1 of values mu +- sigma has mean mu and population std sigma: mu_C1 = 0.5, sigma_C1 =
    # 0.1. A C2 of mean 0.25 and max 0.4 then lies 2.5 and 1.0 sigma below mu_C1, the shape of
    # Table 1's MNLI row ("only 1 standard deviation below the mean on MNLI validation").
    values = [0.4, 0.6, 0.4, 0.6, 0.1, 0.25, 0.4]
    labels = ["a", "a", "a", "a", "b", "b", "b"]
    rows = cluster_table(labels, {"mnli": values})
    assert rows[1]["separation"]["mnli"] == pytest.approx({"mean": 2.5, "max": 1.0})


def test_c1_is_the_larger_cluster_whatever_its_label_and_ties_go_to_the_first():
    rows = cluster_table([0, 1, 1, 1, 2], {"f": [5.0, 1.0, 2.0, 3.0, 0.0]})
    assert [r["c1"] for r in rows] == [False, True, False]
    sigma = np.std([1.0, 2.0, 3.0])  # C1 = cluster 1: mean 2
    assert rows[0]["separation"]["f"]["mean"] == pytest.approx((2 - 5) / sigma)
    assert rows[2]["separation"]["f"]["max"] == pytest.approx((2 - 0) / sigma)
    tie = cluster_table(["y", "x", "x", "y"], {"f": [1.0, 2.0, 4.0, 3.0]})
    assert [r["c1"] for r in tie] == [True, False]  # "x" sorts first
    (single,) = cluster_table([0, 0], {"f": [1.0, 2.0]})
    assert single["c1"] and math.isnan(single["separation"]["f"]["mean"])


# --- the spectral embedding of Juneja et al.'s centroid margin ----------------------------------

D = np.array(
    [
        [0.0, 0.3, 2.0, 2.2, 1.9],
        [0.3, 0.0, 1.7, 2.5, 2.1],
        [2.0, 1.7, 0.0, 0.4, 0.7],
        [2.2, 2.5, 0.4, 0.0, 0.5],
        [1.9, 2.1, 0.7, 0.5, 0.0],
    ]
)


def hand_embedding(distances: np.ndarray, delta: float, k: int) -> np.ndarray:
    """u = D^{-1/2} x for the k smallest eigenvectors x of I - D^{-1/2} W D^{-1/2}, where W is
    the Gaussian affinity without self-loops and D its degrees (von Luxburg 2007, sec. 3.2)."""
    w = np.exp(-(distances**2) / (2 * delta**2))
    np.fill_diagonal(w, 0.0)
    degree = w.sum(axis=1)
    laplacian = np.eye(len(w)) - w / np.sqrt(np.outer(degree, degree))
    _, vectors = np.linalg.eigh(laplacian)
    return vectors[:, :k] / np.sqrt(degree)[:, None]


def hand_margin(points: np.ndarray, labels: np.ndarray) -> np.ndarray:
    centres = [points[labels == c].mean(axis=0) for c in np.unique(labels)]
    d = np.array([[np.linalg.norm(p - c) for c in centres] for p in points])
    return d[:, 0] - np.delete(d, 0, axis=1).min(axis=1)


@pytest.mark.parametrize(("k", "labels"), [(2, [0, 0, 1, 1, 1]), (3, [0, 0, 1, 1, 2])])
def test_spectral_margin_matches_a_hand_eigendecomposition(k, labels):
    labels = np.array(labels)
    embedding = spectral_embedding(D, k, delta=1.0)
    assert embedding.shape == (5, k)
    ours = centroid_margin(embedding_centroid_distances(embedding, labels))
    # eigenvector signs are arbitrary, distances are not
    np.testing.assert_allclose(ours, hand_margin(hand_embedding(D, 1.0, k), labels), atol=1e-9)


def test_embedding_centroid_distances_hand_case():
    points = np.array([[0.0, 0.0], [2.0, 0.0], [1.0, 3.0], [1.0, 5.0]])
    out = embedding_centroid_distances(points, ["b", "b", "a", "a"])  # "a" sorts first
    # means: "a" (1, 4), "b" (1, 0)
    np.testing.assert_allclose(out[0], [math.sqrt(17), 1.0])
    np.testing.assert_allclose(out[3], [1.0, 5.0])
    with pytest.raises(WeightscapeError, match="one row per label"):
        embedding_centroid_distances(points, [0, 1])


# --- Fig. 1 groups -----------------------------------------------------------------------------


def test_extreme_groups_hand_cases():
    values = [0.3, 0.9, 0.1, 0.5, 0.7, 0.2]
    top, bottom = extreme_groups(values, k=2)
    assert top.tolist() == [4, 1] and bottom.tolist() == [2, 5]  # 0.7, 0.9 and 0.1, 0.2
    top, bottom = extreme_groups(values, k=5)  # capped at half the zoo: disjoint groups of 3
    assert top.tolist() == [3, 4, 1] and bottom.tolist() == [2, 5, 0]
    top, bottom = extreme_groups([0.5, 0.5, 0.5, 0.5], k=1)  # ties keep the zoo's order
    assert top.tolist() == [3] and bottom.tolist() == [0]
    with pytest.raises(WeightscapeError, match="'k' parameter of extreme_groups"):
        extreme_groups(values, k=0)


def test_group_pair_curves_hand_case():
    # 4 models; curve [i, j] from i to j is (10 i + j, 10 j + i): its reverse is [j, i].
    n = 4
    curves = np.array([[[10 * i + j, 10 * j + i] for j in range(n)] for i in range(n)], float)
    out = group_pair_curves(curves, top=[2, 3], bottom=[0, 1])
    # within the top: (2 -> 3) = (23, 32) and (3 -> 2) = (32, 23): mean (27.5, 27.5)
    assert out["gen-gen"] == {"mean": [27.5, 27.5], "std": [4.5, 4.5], "pairs": 1}
    # between: 2 -> 0 (20, 2), 2 -> 1 (21, 12), 3 -> 0 (30, 3), 3 -> 1 (31, 13)
    assert out["gen-heur"]["mean"] == [25.5, 7.5] and out["gen-heur"]["pairs"] == 4
    assert out["heur-heur"]["mean"] == [5.5, 5.5]


# --- epsilon-convexity arithmetic --------------------------------------------------------------


def test_largest_gap_inside_each_cluster():
    gaps = np.array(
        [
            [0.0, 0.2, 5.0, 5.0, 5.0],
            [0.2, 0.0, 5.0, 5.0, 5.0],
            [5.0, 5.0, 0.0, 0.1, 0.4],
            [5.0, 5.0, 0.1, 0.0, 0.3],
            [5.0, 5.0, 0.4, 0.3, 0.0],
        ]
    )
    rows = largest_within_cluster(gaps, [1, 1, 0, 0, 0])
    assert [(r["cluster"], r["max"], r["pair"]) for r in rows] == [
        (0, 0.4, (2, 4)),
        (1, 0.2, (0, 1)),
    ]
    (alone, rest) = largest_within_cluster(gaps[:2, :2], [0, 1])
    assert math.isnan(alone["max"]) and alone["pair"] is None and rest["members"] == [1]


def test_jensen_gap_is_the_loss_of_the_mix_minus_the_mix_of_the_losses():
    # members' losses 1, 2, 4; weights (0.5, 0.25, 0.25) mix them to 2.0; the mix's loss 2.5
    gaps = jensen_gaps([[0.5, 0.25, 0.25], [1.0, 0.0, 0.0]], [2.5, 1.0], [1.0, 2.0, 4.0])
    np.testing.assert_allclose(gaps, [0.5, 0.0])
    with pytest.raises(WeightscapeError, match="convex weights"):
        jensen_gaps([[0.5, 0.6, -0.1]], [1.0], [1.0, 2.0, 3.0])
