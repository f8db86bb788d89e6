"""Path types (conformance over the registry, analytic cases, properties) and grids of t."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from weightscape.errors import WeightscapeError
from weightscape.geometry import (
    PATHS,
    PathType,
    even_grid,
    get_path,
    log_extrapolation_grid,
    parse_t_values,
    path_names,
)

# Every registered path type with each anchor count it accepts, up to 5.
PATH_CASES = [
    (name, n)
    for name, cls in sorted(PATHS.items())
    for n in range(cls.min_anchors, min(cls.max_anchors or 5, 5) + 1)
]
T_INSIDE = np.array([0.0, 0.1, 0.25, 1 / 3, 0.5, 2 / 3, 0.75, 0.9, 1.0])


def one_hot(n: int, index: int) -> np.ndarray:
    row = np.zeros(n)
    row[index] = 1.0
    return row


# Conformance suite: every path type in the registry.
@pytest.mark.parametrize(("name", "n"), PATH_CASES)
def test_ends_are_exact_one_hot_anchors(name, n):
    path = get_path(name, n)
    ends = path.coefficients([0.0, 1.0])
    # Exact equality, not approx: the engine reproduces anchors bit for bit from these rows.
    assert np.array_equal(ends[0], one_hot(n, 0))
    assert np.array_equal(ends[1], one_hot(n, n - 1))
    assert np.array_equal(path.coefficients(0.0)[0], one_hot(n, 0))
    assert np.array_equal(path.coefficients(1)[0], one_hot(n, n - 1))


@pytest.mark.parametrize(("name", "n"), PATH_CASES)
def test_rows_sum_to_one_with_expected_shape_and_dtype(name, n):
    rows = get_path(name, n).coefficients(T_INSIDE)
    assert rows.shape == (T_INSIDE.size, n)
    assert rows.dtype == np.float64
    np.testing.assert_allclose(rows.sum(axis=1), 1.0, rtol=0, atol=1e-12)


@pytest.mark.parametrize(("name", "n"), PATH_CASES)
def test_scalar_and_empty_t(name, n):
    path = get_path(name, n)
    assert path.coefficients(0.5).shape == (1, n)
    assert path.coefficients([]).shape == (0, n)


@pytest.mark.parametrize(("name", "n"), PATH_CASES)
def test_non_finite_or_2d_t_rejected(name, n):
    path = get_path(name, n)
    with pytest.raises(WeightscapeError, match="index 1"):
        path.coefficients([0.0, float("nan")])
    with pytest.raises(WeightscapeError, match="shape"):
        path.coefficients([[0.0, 1.0]])


@pytest.mark.parametrize("name", sorted(PATHS))
def test_domain_outside_unit_interval(name):
    path = get_path(name, 2)
    if PATHS[name].extrapolates:
        assert path.coefficients([-1.0, 2.0]).shape == (2, 2)
    else:
        with pytest.raises(WeightscapeError, match=r"must lie in \[0, 1\]"):
            path.coefficients([0.5, 1.5])
        with pytest.raises(WeightscapeError, match=r"must lie in \[0, 1\]"):
            path.coefficients(-0.1)


def test_registry_names_and_classes():
    assert path_names() == ["bezier", "linear", "polychain"]
    assert all(issubclass(cls, PathType) and cls.name == name for name, cls in PATHS.items())


# Analytic cases.
def test_linear_rows_and_extrapolation():
    rows = get_path("linear", 2).coefficients([0.0, 0.25, 1.0, -1.0, 32.0])
    expected = [[1.0, 0.0], [0.75, 0.25], [0.0, 1.0], [2.0, -1.0], [-31.0, 32.0]]
    np.testing.assert_array_equal(rows, expected)


def test_bezier_quadratic_midpoint():
    # ((1-t)^2, 2t(1-t), t^2) at t = 0.5: (0.25, 0.5, 0.25).
    np.testing.assert_allclose(
        get_path("bezier", 3).coefficients(0.5)[0], [0.25, 0.5, 0.25], atol=1e-15
    )


def test_bezier_cubic():
    # (1-t)^3, 3t(1-t)^2, 3t^2(1-t), t^3 at t = 0.5 -> 1/8, 3/8, 3/8, 1/8;
    # at t = 0.25 -> 27/64, 27/64, 9/64, 1/64.
    rows = get_path("bezier", 4).coefficients([0.5, 0.25])
    np.testing.assert_allclose(rows[0], [1 / 8, 3 / 8, 3 / 8, 1 / 8], atol=1e-15)
    np.testing.assert_allclose(rows[1], [27 / 64, 27 / 64, 9 / 64, 1 / 64], atol=1e-15)


def test_bezier_with_two_anchors_is_the_line():
    t = np.linspace(0, 1, 11)
    np.testing.assert_allclose(
        get_path("bezier", 2).coefficients(t), get_path("linear", 2).coefficients(t), atol=1e-15
    )


def test_polychain_three_anchors():
    rows = get_path("polychain", 3).coefficients([0.25, 0.5, 0.75])
    np.testing.assert_allclose(rows[0], [0.5, 0.5, 0.0], atol=1e-15)
    np.testing.assert_array_equal(rows[1], [0.0, 1.0, 0.0])
    np.testing.assert_allclose(rows[2], [0.0, 0.5, 0.5], atol=1e-15)


@pytest.mark.parametrize("n", [3, 4, 5, 7, 11, 26])
def test_polychain_knots_written_as_floats_are_exact_one_hot(n):
    rows = get_path("polychain", n).coefficients(np.arange(n) / (n - 1))
    np.testing.assert_array_equal(rows, np.eye(n))


# Property tests.
@given(st.integers(min_value=2, max_value=12), st.floats(min_value=0.0, max_value=1.0))
def test_bezier_coefficients_non_negative_and_sum_to_one(n, t):
    row = get_path("bezier", n).coefficients(t)[0]
    assert (row >= 0.0).all()
    assert row.sum() == pytest.approx(1.0, abs=1e-12)


@given(st.floats(min_value=-1e3, max_value=1e3))
def test_linear_extrapolation_rows_sum_to_one(t):
    row = get_path("linear", 2).coefficients(t)[0]
    # (1 - t) rounds to the precision of |t|, so the tolerance grows with it.
    assert row.sum() == pytest.approx(1.0, abs=1e-15 * max(1.0, abs(t)))
    assert row[1] == t


@given(st.integers(min_value=2, max_value=12), st.floats(min_value=0.0, max_value=1.0))
def test_polychain_mixes_at_most_two_neighbouring_anchors(n, t):
    row = get_path("polychain", n).coefficients(t)[0]
    nonzero = np.flatnonzero(row)
    assert (row >= 0.0).all()
    assert 1 <= nonzero.size <= 2
    assert nonzero[-1] - nonzero[0] <= 1
    assert row.sum() == pytest.approx(1.0, abs=1e-12)


# Errors.
def test_unknown_path_suggests_closest():
    with pytest.raises(WeightscapeError) as error:
        get_path("bezeir", 3)
    assert str(error.value) == (
        "Unknown path 'bezeir'. Did you mean 'bezier'? Available: bezier, linear, polychain."
    )


@pytest.mark.parametrize(
    ("name", "n", "message"),
    [
        (
            "linear",
            3,
            "The 'n_anchors' parameter of path 'linear' must be exactly 2. Got 3 instead",
        ),
        ("linear", 1, "must be exactly 2. Got 1 instead"),
        ("linear", 2.0, "must be exactly 2. Got 2.0 instead"),
        ("bezier", 1, "The 'n_anchors' parameter of path 'bezier' must be an int >= 2. Got 1"),
        ("polychain", 0, "must be an int >= 2. Got 0 instead"),
        ("polychain", 2.5, "must be an int >= 2. Got 2.5 instead"),
        ("bezier", True, "must be an int >= 2. Got True instead"),
    ],
)
def test_wrong_number_of_anchors(name, n, message):
    with pytest.raises(WeightscapeError, match=message):
        get_path(name, n)


# Grids.
def test_even_grid_matches_fractions():
    grid = even_grid(26)
    assert grid.shape == (26,)
    assert grid[0] == 0.0 and grid[-1] == 1.0
    for k in range(26):
        assert abs(grid[k] - k / 25) <= 1e-15


def test_even_grid_two_points():
    np.testing.assert_array_equal(even_grid(2), [0.0, 1.0])


@pytest.mark.parametrize("n", [1, 0, -3, 2.0, True, "5"])
def test_even_grid_invalid(n):
    with pytest.raises(
        WeightscapeError, match="The 'n' parameter of even_grid must be an int >= 2"
    ):
        even_grid(n)


def test_log_extrapolation_grid_defaults():
    forward, backward = log_extrapolation_grid()
    assert forward.shape == backward.shape == (10,)
    assert forward[0] == 1.0 and forward[-1] == 32.0
    assert backward[0] == 0.0 and backward[-1] == -31.0
    np.testing.assert_allclose(np.diff(np.log(forward)), np.log(32.0) / 9, rtol=1e-12)
    np.testing.assert_array_equal(backward, 1.0 - forward)


def test_log_extrapolation_grid_exact_ends_for_any_reach():
    forward, backward = log_extrapolation_grid(steps=7, reach=10.0)
    assert forward[0] == 1.0 and forward[-1] == 10.0
    assert backward[0] == 0.0 and backward[-1] == -9.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"steps": 1}, "The 'steps' parameter of log_extrapolation_grid must be an int >= 2"),
        ({"reach": 1.0}, "The 'reach' parameter of log_extrapolation_grid"),
        ({"reach": float("inf")}, "must be a finite number > 1"),
        ({"reach": "32"}, "Got '32' instead"),
    ],
)
def test_log_extrapolation_grid_invalid(kwargs, message):
    with pytest.raises(WeightscapeError, match=message):
        log_extrapolation_grid(**kwargs)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0,0.25,0.5,1", [0.0, 0.25, 0.5, 1.0]),
        ("-1,0,1,2", [-1.0, 0.0, 1.0, 2.0]),
        (" 0.5 , 1e-3 ", [0.5, 0.001]),
        ("1", [1.0]),
    ],
)
def test_parse_t_values(text, expected):
    values = parse_t_values(text)
    assert values.dtype == np.float64
    np.testing.assert_array_equal(values, expected)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0,a", r"Could not read t value 'a' \(item 2 of '0,a'\)"),
        ("0,,1", r"Could not read t value '' \(item 2"),
        ("0,nan", r"t value 'nan'"),
        ("inf", r"t value 'inf'"),
        ("", "comma-separated list of numbers"),
        ("   ", "comma-separated list of numbers"),
    ],
)
def test_parse_t_values_invalid(text, message):
    with pytest.raises(WeightscapeError, match=message):
        parse_t_values(text)
