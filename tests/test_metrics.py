"""Golden hand-worked cases and property tests for the curve metrics.

Grid convention: n values sit at t_k = k / (n - 1). The barrier height (BH) is the largest
v_k - chord_k over the global chord from v_0 to v_last (never below 0); the convexity gap (CG) is
the largest such rise over the chord of any sub-segment [i, j]; AUC subtracts the minimum and
applies the trapezoid rule with spacing length / (n - 1).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import weightscape.metrics
from weightscape.errors import WeightscapeError
from weightscape.metrics import auc, barrier_height, convexity_gap

# (id, values, higher_is_better, BH, CG, AUC with length 1). Arithmetic worked by hand:
GOLDEN = [
    # Two points [3, 1]: no inner point, so BH = CG = 0.
    # AUC: minus min 1 -> [2, 0]; dx = 1; (2 + 0) / 2 * 1 = 1.
    ("two-points", [3.0, 1.0], False, 0.0, 0.0, 1.0),
    # Bump [0, 1, 0]: chord 0 at t = 0.5, rise 1 -> BH = 1; only sub-segment is [0, 2] -> CG = 1.
    # AUC: dx = 0.5; 0.5 * (0/2 + 1 + 0/2) = 0.5.
    ("three-point-bump", [0.0, 1.0, 0.0], False, 1.0, 1.0, 0.5),
    # Dip [1, 0, 1]: chord 1 at t = 0.5, 0 - 1 = -1 -> BH = 0; convex -> CG = 0.
    # AUC: min 0; dx = 0.5; 0.5 * (1/2 + 0 + 1/2) = 0.5.
    ("three-point-dip", [1.0, 0.0, 1.0], False, 0.0, 0.0, 0.5),
    # Flat [2, 2, 2, 2]: every chord is 2, every rise 0 -> BH = CG = 0; minus min -> all 0, AUC 0.
    ("flat", [2.0, 2.0, 2.0, 2.0], False, 0.0, 0.0, 0.0),
    # Early bump [0, 1, 0, 0, 0]: global chord 0 -> rises (1, 0, 0) -> BH = 1. Every chord over
    # k = 1 runs from v_0 = 0 to some v_j = 0, so CG = 1 too (others are lower: chord [1, 3] at
    # k = 2 is 0.5 > 0). AUC: dx = 0.25; 0.25 * (0 + 1 + 0 + 0 + 0) = 0.25.
    ("early-bump", [0.0, 1.0, 0.0, 0.0, 0.0], False, 1.0, 1.0, 0.25),
    # Bump hidden on a descent [4, 1, 1.5, 0.5, 0]: global chord 4 - 4t = (4, 3, 2, 1, 0) at
    # k = 1..3 gives rises (1-3, 1.5-2, 0.5-1) = (-2, -0.5, -0.5) -> BH = 0. Sub-segments:
    # [1, 3]: chord at k=2 is (1 + 0.5) / 2 = 0.75, rise 0.75; [1, 4]: chord 1 - (k-1)/3 is 2/3 at
    # k=2 (rise 1.5 - 2/3 = 5/6) and 1/3 at k=3 (rise 1/6); [0, 2], [0, 3], [2, 4] all negative
    # (e.g. [0, 3] at k=2: 4 - 2 * 3.5/3 = 5/3 > 1.5) -> CG = 5/6.
    # AUC: min 0; dx = 0.25; 0.25 * (4/2 + 1 + 1.5 + 0.5 + 0/2) = 0.25 * 5 = 1.25.
    ("hidden-bump", [4.0, 1.0, 1.5, 0.5, 0.0], False, 0.0, 5 / 6, 1.25),
    # Monotone, convex [4, 2, 1, 0.5] (differences -2, -1, -0.5 increase): global chord
    # 4 - 3.5t = (2.8333, 1.6667) at k = 1, 2 lies above (2, 1) -> BH = 0; [0, 2] at k=1: 2.5 > 2,
    # [1, 3] at k=2: 1.25 > 1 -> CG = 0. AUC: minus 0.5 -> [3.5, 1.5, 0.5, 0]; dx = 1/3;
    # (3.5/2 + 1.5 + 0.5 + 0/2) / 3 = 3.75 / 3 = 1.25.
    ("monotone-convex", [4.0, 2.0, 1.0, 0.5], False, 0.0, 0.0, 1.25),
    # Monotone with a concave stretch [4, 1, 0.75, 0.25, 0]: global chord (3, 2, 1) at k = 1..3 lies
    # above -> BH = 0. [1, 3]: chord at k=2 (1 + 0.25) / 2 = 0.625, rise 0.125; [1, 4]: chord 2/3
    # at k=2, rise 0.75 - 2/3 = 1/12; [0, 2], [0, 3], [2, 4] negative ([2, 4] at k=3: 0.375 > 0.25)
    # -> CG = 0.125. AUC: dx = 0.25; 0.25 * (4/2 + 1 + 0.75 + 0.25 + 0) = 0.25 * 4 = 1.
    ("monotone-concave-stretch", [4.0, 1.0, 0.75, 0.25, 0.0], False, 0.0, 0.125, 1.0),
    # Monotone, concave [4, 3.5, 2.5, 1] (differences -0.5, -1, -1.5): global chord (3, 2) at
    # k = 1, 2, rises (0.5, 0.5) -> BH = 0.5; [0, 2] at k=1: 3.5 - 3.25 = 0.25; [1, 3] at k=2:
    # 2.5 - 2.25 = 0.25 -> CG = 0.5. AUC: minus 1 -> [3, 2.5, 1.5, 0]; dx = 1/3;
    # (3/2 + 2.5 + 1.5 + 0) / 3 = 5.5 / 3 = 11/6.
    ("monotone-concave", [4.0, 3.5, 2.5, 1.0], False, 0.5, 0.5, 11 / 6),
    # Accuracy [0.9, 0.5, 0.8], higher is better: chord at t = 0.5 is 0.85, drop 0.85 - 0.5 = 0.35
    # -> BH = CG = 0.35. AUC ignores direction: minus 0.5 -> [0.4, 0, 0.3]; dx = 0.5;
    # 0.5 * (0.4/2 + 0 + 0.3/2) = 0.175.
    ("accuracy-drop", [0.9, 0.5, 0.8], True, 0.35, 0.35, 0.175),
]


@pytest.mark.parametrize(
    ("values", "higher_is_better", "bh", "cg", "area"),
    [case[1:] for case in GOLDEN],
    ids=[case[0] for case in GOLDEN],
)
def test_golden_cases(values, higher_is_better, bh, cg, area):
    assert barrier_height(values, higher_is_better=higher_is_better) == pytest.approx(bh, abs=1e-12)
    assert convexity_gap(values, higher_is_better=higher_is_better) == pytest.approx(cg, abs=1e-12)
    assert auc(values) == pytest.approx(area, abs=1e-12)


def test_accuracy_curve_as_loss_has_no_barrier():
    # [0.9, 0.5, 0.8] read as a loss dips below its chord (0.5 < 0.85): BH = 0.
    assert barrier_height([0.9, 0.5, 0.8]) == 0.0
    assert convexity_gap([0.9, 0.5, 0.8]) == 0.0


def test_auc_with_path_length():
    # [4, 2, 1, 0.5] minus 0.5 -> [3.5, 1.5, 0.5, 0]; length 3 -> dx = 1;
    # 3.5/2 + 1.5 + 0.5 + 0/2 = 3.75 (three times the length-1 area 1.25).
    assert auc([4.0, 2.0, 1.0, 0.5], length=3.0) == pytest.approx(3.75, abs=1e-12)


def test_accessible_from_package():
    assert weightscape.metrics.barrier_height([0.0, 1.0, 0.0]) == 1.0


def test_results_are_python_floats():
    for metric in (barrier_height, convexity_gap, auc):
        assert type(metric(np.array([0.0, 1.0, 0.0]))) is float


@pytest.mark.parametrize("metric", [barrier_height, convexity_gap, auc])
@pytest.mark.parametrize(
    ("values", "message"),
    [
        ([1.0], "at least 2 numbers"),
        ([], "at least 2 numbers"),
        ([[1.0, 2.0], [3.0, 4.0]], "shape"),
        ([1.0, float("nan"), 2.0], "index 1"),
        ([1.0, 2.0, float("inf")], "index 2"),
        (["a", "b"], "1-D sequence of numbers"),
    ],
)
def test_invalid_values(metric, values, message):
    with pytest.raises(WeightscapeError, match=message):
        metric(values)


@pytest.mark.parametrize("length", [0.0, -1.0, float("nan"), float("inf"), True, "1"])
def test_auc_invalid_length(length):
    with pytest.raises(WeightscapeError, match="'length' parameter of auc"):
        auc([1.0, 0.0], length=length)


# Property tests. Values are bounded so that float rounding stays far below the tolerances.
curves = st.lists(
    st.floats(min_value=-1e3, max_value=1e3, allow_nan=False, allow_infinity=False),
    min_size=2,
    max_size=30,
)
TOL = 1e-9


@given(curves)
def test_barrier_height_non_negative_and_below_convexity_gap(values):
    bh = barrier_height(values)
    assert bh >= 0.0
    assert convexity_gap(values) >= bh


@given(curves, st.floats(min_value=-1e3, max_value=1e3))
def test_barrier_height_invariant_to_offset(values, offset):
    shifted = [v + offset for v in values]
    assert barrier_height(shifted) == pytest.approx(barrier_height(values), abs=TOL)
    assert convexity_gap(shifted) == pytest.approx(convexity_gap(values), abs=TOL)


@given(curves, st.floats(min_value=0.01, max_value=100.0))
def test_barrier_height_scales_linearly(values, scale):
    scaled = [v * scale for v in values]
    assert barrier_height(scaled) == pytest.approx(scale * barrier_height(values), abs=TOL * 100)


@given(curves)
def test_higher_is_better_equals_negation(values):
    negated = [-v for v in values]
    assert barrier_height(values, higher_is_better=True) == barrier_height(negated)
    assert convexity_gap(values, higher_is_better=True) == convexity_gap(negated)


@given(
    st.floats(min_value=-100, max_value=100),
    st.floats(min_value=-100, max_value=100),
    st.lists(st.floats(min_value=0.0, max_value=10.0), min_size=0, max_size=28),
)
def test_convex_sequence_has_no_convexity_gap(start, slope, slope_increases):
    # Non-decreasing differences make a convex sequence.
    differences = slope + np.concatenate([[0.0], np.cumsum(slope_increases)])
    values = np.concatenate([[start], start + np.cumsum(differences)])
    assert convexity_gap(values) == pytest.approx(0.0, abs=TOL)
    assert barrier_height(values) == pytest.approx(0.0, abs=TOL)


@given(curves, st.floats(min_value=0.01, max_value=100.0))
def test_auc_non_negative_and_linear_in_length(values, length):
    area = auc(values)
    assert area >= 0.0
    assert auc(values, length=length) == pytest.approx(length * area, rel=1e-12, abs=TOL)


def test_convexity_gap_matches_brute_force():
    # Reference: literal double loop over sub-segments, against the vectorised implementation.
    rng = np.random.default_rng(0)
    for n in (2, 3, 7, 26):
        values = rng.normal(size=n)
        expected = 0.0
        for i in range(n):
            for j in range(i + 2, n):
                for k in range(i + 1, j):
                    chord = values[i] + (k - i) / (j - i) * (values[j] - values[i])
                    expected = max(expected, values[k] - chord)
        assert convexity_gap(values) == pytest.approx(expected, abs=1e-12)
        assert math.isfinite(convexity_gap(values))


# --- AUC units and binary F1 (issue 12) -------------------------------------------------------


def test_auc_per_unit_distance_on_an_analytic_curve():
    # f(t) = 4 t (1 - t) + 0.3 on n = 101 even points (h = 1/100); min 0.3 at both ends. The
    # trapezoid rule on a parabola errs by exactly -(b - a) h^2 f'' / 12 = +8 h^2 / 12, so the
    # area per unit t is 2/3 - 2 h^2 / 3. Measured in distance along a path of Euclidean length
    # D = 3 (Juneja et al.'s spacing euc_dist / (n - 1)), the area is D times that.
    h, distance = 0.01, 3.0
    t = np.linspace(0.0, 1.0, 101)
    values = 4 * t * (1 - t) + 0.3
    per_t = 2 / 3 - 2 * h**2 / 3
    assert weightscape.metrics.auc_t(values) == pytest.approx(per_t, rel=1e-12)
    assert auc(values, length=distance) == pytest.approx(distance * per_t, rel=1e-12)
    row = weightscape.metrics.get_curve_summary("auc")
    assert row(values, length=distance) == pytest.approx(2 - 2e-4, rel=1e-12)
    assert weightscape.metrics.get_curve_summary("auc_t")(values) == pytest.approx(per_t)


def test_binary_f1_is_the_f1_of_label_one():
    # labels (1, 1, 1, 0, 0, 0, 1, 0), predictions (1, 0, 1, 1, 0, 0, 0, 0):
    # class 1: TP 2 (examples 0, 2), FP 1 (example 3), FN 2 (examples 1, 6): 4 / (4 + 1 + 2).
    # (Class 0 would give TP 3, FP 2, FN 1: 6 / 9 = 2/3, a different number.)
    from weightscape.metrics.classification import binary_f1

    labels = np.array([1, 1, 1, 0, 0, 0, 1, 0])
    predictions = np.array([1, 0, 1, 1, 0, 0, 0, 0])
    losses = np.zeros(8, dtype=np.float32)
    assert binary_f1(labels, predictions, losses, 2) == pytest.approx(4 / 7, abs=1e-15)
    # No positive label and no positive prediction: 0 (scikit-learn's zero_division=0).
    assert binary_f1(np.zeros(3, int), np.zeros(3, int), np.zeros(3), 2) == 0.0
    assert weightscape.metrics.get_point_metric("binary_f1").higher_is_better
    metrics = weightscape.metrics.classification_metrics(labels, predictions, losses, 2)
    assert metrics["binary_f1"] == pytest.approx(4 / 7, abs=1e-15)
    with pytest.raises(WeightscapeError, match="2-class task"):
        binary_f1(labels, predictions, losses, 3)
    assert "binary_f1" not in weightscape.metrics.classification_metrics(
        labels, predictions, losses, 3
    )


def test_missing_metrics_are_filled_and_present_ones_kept():
    # A stored point from before binary_f1 existed: its other numbers are kept as stored (even
    # a deliberately odd loss of 9.0), and only the missing one is computed (here 4/7 as above).
    from weightscape.metrics.classification import missing_metrics

    labels = np.array([1, 1, 1, 0, 0, 0, 1, 0])
    predictions = np.array([1, 0, 1, 1, 0, 0, 0, 0])
    stored = {"loss": 9.0, "accuracy": 0.625, "macro_f1": 0.1, "mcc": 0.2}
    filled = missing_metrics(stored, labels, predictions, np.zeros(8), 2)
    assert list(filled) == ["loss", "accuracy", "macro_f1", "mcc", "binary_f1"]
    assert {k: filled[k] for k in stored} == stored
    assert filled["binary_f1"] == pytest.approx(4 / 7, abs=1e-15)
    assert missing_metrics(stored, labels, predictions, np.zeros(8), 3) == stored
