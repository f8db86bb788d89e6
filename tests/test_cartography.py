"""Dataset cartography statistics against hand-computed values, and the region split."""

from __future__ import annotations

import math

import numpy as np
import pytest

from weightscape.errors import WeightscapeError
from weightscape.metrics.cartography import (
    REGIONS,
    cartography,
    cartography_regions,
    confidence,
    correctness,
    variability,
)

# 3 recorded points x 3 examples.
P_TRUE = [[0.2, 0.9, 0.5], [0.6, 0.7, 0.5], [0.4, 0.8, 0.5]]
PREDICTIONS = [[0, 1, 1], [1, 1, 1], [0, 1, 0]]
LABELS = [1, 1, 0]


def test_confidence_is_the_mean_true_label_probability():
    # (0.2 + 0.6 + 0.4) / 3, (0.9 + 0.7 + 0.8) / 3, 0.5
    assert confidence(P_TRUE) == pytest.approx([0.4, 0.8, 0.5])


def test_variability_is_the_population_standard_deviation():
    # deviations (-0.2, 0.2, 0) and (0.1, -0.1, 0): sqrt(0.08 / 3), sqrt(0.02 / 3), 0
    expected = [math.sqrt(0.08 / 3), math.sqrt(0.02 / 3), 0.0]
    assert variability(P_TRUE) == pytest.approx(expected)


def test_correctness_is_the_fraction_of_points_predicted_right():
    # example 0: right at point 1 only; example 1: always; example 2: at point 2 only
    assert correctness(PREDICTIONS, LABELS) == pytest.approx([1 / 3, 1.0, 1 / 3])


def test_cartography_bundles_the_three():
    stats = cartography(P_TRUE, PREDICTIONS, LABELS)
    assert stats.confidence == pytest.approx([0.4, 0.8, 0.5])
    assert stats.variability[2] == 0.0
    assert stats.correctness[1] == 1.0
    assert set(stats.to_dict()) == {"confidence", "variability", "correctness"}


def test_one_recorded_point_has_zero_variability():
    assert variability([[0.3, 0.7]]).tolist() == [0.0, 0.0]


def test_regions_on_a_constructed_map():
    # variability sorted: 0, .01, .02, .05, .25, .30; the 2/3 quantile is .05 + (1/3)(.20)
    # = .1167, so the two above it (examples 2 and 5) are ambiguous; the rest split at 0.5.
    conf = [0.9, 0.8, 0.5, 0.1, 0.2, 0.5]
    var = [0.0, 0.05, 0.3, 0.02, 0.01, 0.25]
    codes = cartography_regions(conf, var)
    assert [REGIONS[c] for c in codes] == [
        "easy-to-learn",
        "easy-to-learn",
        "ambiguous",
        "hard-to-learn",
        "hard-to-learn",
        "ambiguous",
    ]


def test_region_thresholds_are_parameters():
    conf, var = [0.9, 0.55, 0.3, 0.6], [0.0, 0.1, 0.2, 0.3]
    # the top half by variability (quantile 0.5 = 0.15): examples 2 and 3
    assert cartography_regions(conf, var, ambiguous_fraction=0.5).tolist() == [0, 0, 1, 1]
    assert cartography_regions(conf, var, confidence_threshold=0.6).tolist() == [0, 2, 2, 1]


def test_equal_variabilities_make_nothing_ambiguous():
    codes = cartography_regions([0.9, 0.1, 0.5], [0.0, 0.0, 0.0])
    assert codes.tolist() == [0, 2, 0]


@pytest.mark.parametrize(
    "call",
    [
        lambda: confidence([0.2, 0.3]),  # 1-D
        lambda: variability([[0.2, 1.3]]),  # not a probability
        lambda: correctness([[0, 1]], [0, 1, 1]),  # lengths differ
        lambda: cartography_regions([0.1, 0.2], [0.1]),
        lambda: cartography_regions([0.1], [0.1], ambiguous_fraction=1.0),
    ],
)
def test_bad_input_is_a_weightscape_error(call):
    with pytest.raises(WeightscapeError, match=r"parameters? of"):
        call()


def test_arrays_are_float64_per_example():
    stats = cartography(np.array(P_TRUE, dtype=np.float32), PREDICTIONS, LABELS)
    assert stats.confidence.dtype == np.float64
    assert stats.confidence.shape == stats.variability.shape == stats.correctness.shape == (3,)
