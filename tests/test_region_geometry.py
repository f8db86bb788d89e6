"""Region geometry and the PB metric against independent expectations."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from weightscape.errors import WeightscapeError
from weightscape.geometry.regions import (
    centroid_row,
    hull_samples,
    mean_distance_to_centroid,
    move_along_direction,
    move_toward_point,
    move_toward_zero,
)
from weightscape.metrics.regions import loss_distribution, pb


def _triangle_cells(rows: np.ndarray) -> np.ndarray:
    """Which of the 4 congruent sub-triangles (cut at the edge midpoints) each point is in."""
    a, b, c = rows.T
    cell = np.full(len(rows), 3)  # the middle triangle: every coordinate < 1/2
    cell[a >= 0.5], cell[b >= 0.5], cell[c >= 0.5] = 0, 1, 2
    return cell


def test_dirichlet_samples_are_uniform_on_the_simplex():
    rows = hull_samples(3, 20_000, seed=1)
    # Uniform on the triangle: the 4 midpoint sub-triangles have equal area, so equal mass.
    counts = np.bincount(_triangle_cells(rows), minlength=4)
    assert stats.chisquare(counts).pvalue > 0.001
    # Each coordinate of a uniform point of the 2-simplex is Beta(1, 2).
    for k in range(3):
        assert stats.kstest(rows[:, k], stats.beta(1, 2).cdf).pvalue > 0.001


def test_the_uniformity_check_rejects_a_non_uniform_sampler():
    # Normalised independent uniforms are a classic non-uniform simplex sampler: the same test
    # must reject it, or the test above proves nothing.
    raw = np.random.default_rng(1).random((20_000, 3))
    rows = raw / raw.sum(axis=1, keepdims=True)
    counts = np.bincount(_triangle_cells(rows), minlength=4)
    assert stats.chisquare(counts).pvalue < 1e-6


def test_hull_samples_are_seeded_and_convex():
    a, b = hull_samples(5, 50, seed=3), hull_samples(5, 50, seed=3)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, hull_samples(5, 50, seed=4))
    assert np.allclose(a.sum(axis=1), 1.0) and (a >= 0).all()


@pytest.mark.parametrize(
    ("inside", "outside", "expected"),
    [
        ([1.0, 2.0], [3.0, 4.0], 1.0),  # every In better
        ([3.0, 4.0], [1.0, 2.0], 0.0),  # every In worse
        ([1.0, 2.0], [1.5, 3.0], 0.75),
        ([2.0], [2.0, 2.0, 1.0], 2 / 3),  # ties count for In
        ([1.0, 1.0], [1.0], 1.0),
        ([0.5, 1.0, 1.5], [1.0], 2 / 3),  # 0.5 <= 1, 1 <= 1 (tie), 1.5 > 1
    ],
)
def test_pb_hand_worked_cases(inside, outside, expected):
    assert pb(inside, outside) == pytest.approx(expected)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(0, 5), min_size=1, max_size=8),
    st.lists(st.integers(0, 5), min_size=1, max_size=8),
)
def test_pb_equals_the_double_loop(inside, outside):
    pairs = list(itertools.product(inside, outside))
    assert pb(inside, outside) == pytest.approx(sum(i <= j for i, j in pairs) / len(pairs))


def test_pb_refuses_an_empty_group():
    with pytest.raises(WeightscapeError, match=r"ex_losses.*empty"):
        pb([1.0], [])


def test_loss_distribution_summary():
    summary = loss_distribution([4.0, 1.0, 3.0, 2.0])
    assert summary["n"] == 4 and summary["mean"] == 2.5 and summary["min"] == 1.0
    assert summary["max"] == 4.0 and summary["median"] == 2.5
    assert summary["std"] == pytest.approx(np.std([1, 2, 3, 4], ddof=1))


def _vectors(seed: int, n: int = 6, dim: int = 9) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, dim))


@pytest.mark.parametrize("seed", range(5))
def test_moves_have_the_asked_length_and_direction(seed):
    x = _vectors(seed)  # anchors: members 0-2, a point 3, a direction head 4 and tail 5
    gram = x @ x.T
    members = [0, 1, 2]
    centroid = x[members].mean(axis=0)
    spread = np.mean([np.linalg.norm(x[i] - centroid) for i in members])
    assert mean_distance_to_centroid(gram, members) == pytest.approx(spread)
    radii = np.array([0.0, 0.5, 2.0])

    points = move_toward_point(gram, members, 3, radii) @ x
    unit = (x[3] - centroid) / np.linalg.norm(x[3] - centroid)
    assert np.allclose(points, centroid + radii[:, None] * spread * unit)

    points = move_along_direction(gram, members, 4, 5, radii) @ x
    unit = (x[4] - x[5]) / np.linalg.norm(x[4] - x[5])
    assert np.allclose(points, centroid + radii[:, None] * spread * unit)

    points = move_toward_zero(gram, members, radii) @ x
    assert np.allclose(
        points, centroid - radii[:, None] * spread * centroid / np.linalg.norm(centroid)
    )


def test_moves_from_a_gram_about_another_base_agree():
    # Distances do not depend on the base the Gram matrix is taken about.
    x = _vectors(7)
    base = x[5]
    raw, shifted = x @ x.T, (x - base) @ (x - base).T
    for rows in (
        (move_toward_point(raw, [0, 1], 3, [1.0]), move_toward_point(shifted, [0, 1], 3, [1.0])),
        (
            move_along_direction(raw, [0, 1, 2], 4, 5, [3.0]),
            move_along_direction(shifted, [0, 1, 2], 4, 5, [3.0]),
        ),
    ):
        assert np.allclose(*rows)


def test_centroid_row_and_bad_members():
    assert centroid_row(3).tolist() == pytest.approx([1 / 3] * 3)
    with pytest.raises(WeightscapeError, match="'members'"):
        move_toward_point(np.eye(3), [0, 0], 2, [1.0])
    with pytest.raises(WeightscapeError, match=r"'point'.*3 anchors"):
        move_toward_point(np.eye(3), [0, 1], 3, [1.0])
    with pytest.raises(WeightscapeError, match="coincide"):
        move_toward_point(np.zeros((2, 2)), [0], 1, [1.0])


def test_a_move_toward_the_origin_hand_case():
    # x0 = (3, 1), x1 = (3, -1): centroid (3, 0), |c| = 3, each model 1 from it (D = 1).
    gram = np.array([[10.0, 8.0], [8.0, 10.0]])  # raw inner products (about theta = 0)
    rows = move_toward_zero(gram, [0, 1], [0.0, 1.0, 3.0])
    # r D / |c| = 0, 1/3, 1: the centroid, (2, 0) one unit toward 0, and 0 itself.
    np.testing.assert_allclose(rows, [[0.5, 0.5], [1 / 3, 1 / 3], [0.0, 0.0]], atol=1e-12)
    x = np.array([[3.0, 1.0], [3.0, -1.0]])
    np.testing.assert_allclose(rows @ x, [[3.0, 0.0], [2.0, 0.0], [0.0, 0.0]], atol=1e-12)
    with pytest.raises(WeightscapeError, match="the centroid is 0"):
        move_toward_zero(np.array([[1.0, -1.0], [-1.0, 1.0]]), [0, 1], [1.0])  # x1 = -x0
