"""The best point on a path (Qin et al. 2022, Tables 1-2), on hand-made walks.

Expected values are read off the hand data: t is the dev-best point, the test value is the test
walk's value at that t, and the endpoint baseline is the endpoint better on the named split.
"""

from __future__ import annotations

import pytest

from weightscape.analyses.best_point import best_of_walks, better_endpoint, choose_t
from weightscape.analyses.interpolation import PathWalk, WalkPoint
from weightscape.errors import WeightscapeError

TS = (0.0, 0.5, 1.0)


def _walk(accuracy, loss, path="linear") -> PathWalk:
    """A walk over TS whose endpoints are its first and last points."""
    points = [
        WalkPoint(t, [1 - t, t], {"accuracy": acc, "loss": lo}, False, f"k{t}")
        for t, acc, lo in zip(TS, accuracy, loss, strict=True)
    ]
    ends = {"a": points[0].metrics, "b": points[-1].metrics}
    return PathWalk(path, ["a", "b"], "hand", points, ends)


# dev: the middle is best (0.80) and a is the better endpoint on dev (0.76 > 0.75);
# test: b is the better endpoint on test (0.78 > 0.70), and beats the dev-chosen middle (0.74).
DEV = _walk([0.76, 0.80, 0.75], [0.50, 0.40, 0.45])
TEST = _walk([0.70, 0.74, 0.78], [0.60, 0.55, 0.35])


def test_choose_t_takes_the_dev_best_and_breaks_ties_toward_the_middle():
    assert choose_t([0.0, 0.25, 0.5, 0.75, 1.0], [0.1, 0.3, 0.2, 0.0, 0.3]) == 1  # 0.25 vs 1.0
    assert choose_t(TS, [0.9, 0.9, 0.9]) == 1
    assert choose_t(TS, [0.95, 0.9, 0.9]) == 0  # an endpoint wins when nothing beats it
    with pytest.raises(WeightscapeError, match="one score per t"):
        choose_t(TS, [0.1, 0.2])


def test_best_point_is_chosen_on_dev_and_reported_on_test():
    best = best_of_walks(DEV, TEST)
    assert best["t"] == 0.5 and best["path"] == "linear"
    assert best["dev"]["accuracy"] == 0.80 and best["test"]["accuracy"] == 0.74
    # Qin et al.'s baseline: the endpoint better on the reported (test) split.
    assert best["endpoint_split"] == "test" and best["better_endpoint"] == "b"
    assert best["endpoint_test"]["accuracy"] == 0.78 and best["endpoint_dev"]["accuracy"] == 0.75
    assert best["test_gain"] == pytest.approx(0.74 - 0.78)


def test_endpoint_chosen_on_dev_when_asked():
    best = best_of_walks(DEV, TEST, endpoint_split="dev")
    assert (best["endpoint_split"], best["better_endpoint"]) == ("dev", "a")
    assert best["test_gain"] == pytest.approx(0.74 - 0.70)


def test_a_lower_is_better_metric_chooses_the_lowest():
    best = best_of_walks(DEV, TEST, metric="loss")
    assert best["t"] == 0.5 and best["test"]["loss"] == 0.55
    assert best["better_endpoint"] == "b"  # test loss 0.35 < 0.60
    assert better_endpoint({"a": {"loss": 0.2}, "b": {"loss": 0.3}}, "loss") == "a"


def test_bad_arguments_are_explained():
    with pytest.raises(WeightscapeError, match="Unknown metric"):
        best_of_walks(DEV, TEST, metric="acc")
    with pytest.raises(WeightscapeError, match="'endpoint_split' parameter"):
        best_of_walks(DEV, TEST, endpoint_split="validation")
    shifted = _walk([0.7, 0.8, 0.9], [0.1, 0.1, 0.1])
    shifted.points[1].t = 0.4
    with pytest.raises(WeightscapeError, match="same t"):
        best_of_walks(DEV, shifted)


def test_curve_table_has_a_curved_row_chosen_on_its_own_dev_walk():
    """Qin et al.'s Table 1: Linear, Curved and Endpoint rows. The curve shares the line's
    endpoints; its dev-best point (0.78 at t = 0.5) is reported at its own test value (0.77)."""
    from weightscape.studies.curve import table_rows

    curve_dev = _walk([0.76, 0.78, 0.75], [0.50, 0.42, 0.45], path="bezier")
    curve_test = _walk([0.70, 0.77, 0.78], [0.60, 0.40, 0.35], path="bezier")
    rows = table_rows({"line": DEV, "curve": curve_dev}, {"line": TEST, "curve": curve_test})
    assert [r["method"] for r in rows] == [
        "linear (best t = 0.50 on dev)",
        "curved (bezier) (best t = 0.50 on dev)",
        "better endpoint on test (b)",
    ]
    assert [r["test"]["accuracy"] for r in rows] == [0.74, 0.77, 0.78]
    assert [r["dev"]["accuracy"] for r in rows] == [0.80, 0.78, 0.75]
    assert rows[2]["chosen_on"] == "test" and rows[2]["endpoint"] == "b"
    on_dev = table_rows(
        {"line": DEV, "curve": curve_dev}, {"line": TEST, "curve": curve_test}, "dev"
    )
    assert on_dev[2]["method"] == "better endpoint on dev (a)"
    assert on_dev[2]["test"]["accuracy"] == 0.70
