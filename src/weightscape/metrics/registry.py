"""Registries of metrics: point metrics and curve summaries, each row declaring what it needs.

- A **point metric** is one number per evaluated point, computed from its per-example outcomes
  (loss, accuracy, macro-F1, MCC, binary F1). Its row declares ``higher_is_better``, so that
  walks, grids, best-point selection and reports read the direction instead of guessing it from
  a name, and, for a metric defined for one label-set size only (binary F1: 2 classes), that
  size: such a metric is computed, and shown, only for tasks of that size, never as a NaN.
  It also declares the task kinds it is defined for: ``classification`` (the default) and/or
  ``text`` (language-model losses, where a metric's arrays are per target token, not per
  example: see :mod:`weightscape.metrics.language_model`).
- A **curve summary** is one number per curve measured along a path (barrier height, convexity
  gap, AUC, the best value and where it lies). Its row declares the arguments its function takes
  besides the values (the direction, the t grid, the path length), the N x N matrices the
  connectivity grid builds from it, and the properties it has (offset invariance, ...). A
  summary that needs the ``length`` is measured along the path in units of weight-space
  distance (the Euclidean distance between the path's two ends), so walks and grids compute it
  only where they know that distance, never with a stand-in length of 1.

A plug-in is one function plus one decorator line in a module that :mod:`weightscape.metrics`
imports; every row carries a hand-worked example, and ``tests/test_conformance.py`` checks every
row (example, direction, declared properties) through these registries, so it needs no edit.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from weightscape.errors import WeightscapeError, unknown_name_error

__all__ = [
    "CURVE_ARGUMENTS",
    "CURVE_PROPERTIES",
    "CURVE_SUMMARIES",
    "POINT_METRICS",
    "TASK_KINDS",
    "CurveExample",
    "CurveSummary",
    "PointExample",
    "PointMetric",
    "get_curve_summary",
    "get_point_metric",
    "grid_matrices",
    "point_metric_names",
    "register_curve_summary",
    "register_point_metric",
    "task_metric_names",
]

PointFunction = Callable[[np.ndarray, np.ndarray, np.ndarray, int], float]

TASK_KINDS = ("classification", "text")
"""Kinds of task a point metric may be defined for: labelled examples, or documents scored by a
language model's per-token loss."""


@dataclass(frozen=True)
class PointExample:
    """A hand-worked case of a point metric: outcomes of a few examples and the value expected."""

    labels: tuple[int, ...]
    predictions: tuple[int, ...]
    losses: tuple[float, ...]
    num_labels: int
    expected: float

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        """The arguments of a point metric: labels, predictions, losses, number of labels."""
        return (
            np.array(self.labels, dtype=np.int64),
            np.array(self.predictions, dtype=np.int64),
            np.array(self.losses, dtype=np.float32),
            self.num_labels,
        )


@dataclass(frozen=True)
class PointMetric:
    """A registered point metric.

    Attributes:
        name: The key of the metric in every result (``PointResult.metrics``, the store).
        function: ``function(labels, predictions, losses, num_labels) -> float`` on the arrays
            of one point (shape (n,) each), in any example order.
        higher_is_better: Whether a higher value is a better model (accuracy) or a worse one
            (loss).
        description: One line saying what the number is.
        example: A hand-worked case the conformance suite checks.
        mean_over_examples: Whether the value is a mean over examples, so that the size-weighted
            mean of its value over batches equals its value on all of them.
        only_num_labels: The one label-set size the metric is defined for (binary F1: 2), or
            None when it is defined for every task. Results of other tasks do not carry it.
        kinds: The task kinds (:data:`TASK_KINDS`) the metric is defined for; results of other
            kinds do not carry it.
    """

    name: str
    function: PointFunction
    higher_is_better: bool
    description: str
    example: PointExample
    mean_over_examples: bool = False
    only_num_labels: int | None = None
    kinds: frozenset[str] = frozenset({"classification"})

    @property
    def sign(self) -> float:
        """+1 when higher is better, else -1: ``sign * value`` is larger for better values."""
        return 1.0 if self.higher_is_better else -1.0

    def applies(self, num_labels: int) -> bool:
        """Whether the metric is defined for a classification task with ``num_labels`` classes.

        >>> get_point_metric("binary_f1").applies(2), get_point_metric("binary_f1").applies(3)
        (True, False)
        """
        if "classification" not in self.kinds:
            return False
        return self.only_num_labels is None or int(num_labels) == self.only_num_labels

    def __call__(
        self, labels: np.ndarray, predictions: np.ndarray, losses: np.ndarray, num_labels: int
    ) -> float:
        return float(self.function(labels, predictions, losses, num_labels))


POINT_METRICS: dict[str, PointMetric] = {}
"""Registry of point metrics by name, in registration order; filled by
:func:`register_point_metric`."""


def register_point_metric(
    name: str,
    *,
    higher_is_better: bool,
    description: str,
    example: PointExample,
    mean_over_examples: bool = False,
    only_num_labels: int | None = None,
    kinds: tuple[str, ...] = ("classification",),
) -> Callable[[PointFunction], PointFunction]:
    """Register the decorated function as the point metric ``name``; the function is unchanged.

    ``only_num_labels`` restricts the metric to tasks with that many classes (binary F1: 2); its
    hand-worked example must be such a task. ``kinds`` names the task kinds the metric is
    defined for (:data:`TASK_KINDS`).
    """
    if not kinds or set(kinds) - set(TASK_KINDS):
        raise ValueError(
            f"Point metric '{name}' must declare kinds among {TASK_KINDS}. Got {kinds!r} instead."
        )
    if not isinstance(higher_is_better, bool):
        raise TypeError(f"Point metric '{name}' must declare higher_is_better as True or False.")
    if only_num_labels is not None and (
        not isinstance(only_num_labels, int)
        or isinstance(only_num_labels, bool)
        or only_num_labels < 2
        or example.num_labels != only_num_labels
    ):
        raise ValueError(
            f"Point metric '{name}' must declare only_num_labels as None or an int >= 2 that its "
            f"example's num_labels matches. Got {only_num_labels!r} instead."
        )

    def register(function: PointFunction) -> PointFunction:
        row = PointMetric(
            name,
            function,
            higher_is_better,
            description,
            example,
            mean_over_examples,
            only_num_labels,
            frozenset(kinds),
        )
        _add(POINT_METRICS, "Point metric", row)
        return function

    return register


def get_point_metric(name: str) -> PointMetric:
    """The point metric registered as ``name``.

    Raises:
        WeightscapeError: For an unknown name (with the closest valid one).

    >>> get_point_metric("accuracy").higher_is_better, get_point_metric("loss").sign
    (True, -1.0)
    """
    if name not in POINT_METRICS:
        raise unknown_name_error("metric", str(name), POINT_METRICS)
    return POINT_METRICS[name]


def point_metric_names(
    num_labels: int | None = None, *, kind: str | None = None
) -> tuple[str, ...]:
    """The registered point metrics, in registration order (the order results list them).

    Args:
        num_labels: Only the metrics defined for a classification task with this many classes;
            None: all (of ``kind`` when given).
        kind: Only the metrics defined for this task kind (``"text"``: language-model losses).

    >>> point_metric_names()
    ('loss', 'accuracy', 'macro_f1', 'mcc', 'binary_f1', 'perplexity')
    >>> point_metric_names(3)
    ('loss', 'accuracy', 'macro_f1', 'mcc')
    >>> point_metric_names(kind="text")
    ('loss', 'accuracy', 'perplexity')
    """
    if kind is not None:
        return tuple(name for name, metric in POINT_METRICS.items() if kind in metric.kinds)
    if num_labels is None:
        return tuple(POINT_METRICS)
    return tuple(name for name, metric in POINT_METRICS.items() if metric.applies(num_labels))


def task_metric_names(task: Any) -> tuple[str, ...]:
    """The point metrics the results of ``task`` carry, in result order.

    A classification task's by its number of labels (binary F1 only with 2); a task with no
    labels (``num_labels`` None: a text task, scored by a language model's loss) the ``text``
    ones. Duck-typed on ``task.num_labels``, so this module needs no data import.

    >>> from types import SimpleNamespace
    >>> task_metric_names(SimpleNamespace(num_labels=None))
    ('loss', 'accuracy', 'perplexity')
    >>> task_metric_names(SimpleNamespace(num_labels=3))
    ('loss', 'accuracy', 'macro_f1', 'mcc')
    """
    num_labels = getattr(task, "num_labels", None)
    if num_labels is None:
        return point_metric_names(kind="text")
    return point_metric_names(num_labels)


CURVE_ARGUMENTS = ("higher_is_better", "ts", "length")
"""Keyword arguments a curve summary may declare it needs, besides the values."""

CURVE_PROPERTIES = {
    "nonnegative": "never below 0",
    "offset_invariant": "unchanged when a constant is added to every value",
    "scale_equivariant": "multiplied by a when every value is (a > 0)",
    "reversal_symmetric": "unchanged when the curve is walked from the other end",
    "zero_on_convex": "0 on a convex curve (a straight line included), the direction applied",
}
"""Properties a curve summary may declare; the conformance suite checks each declared one."""


@dataclass(frozen=True)
class CurveExample:
    """A hand-worked case of a curve summary: values on an even grid over [0, 1] and the result."""

    values: tuple[float, ...]
    expected: float
    higher_is_better: bool = False
    length: float = 1.0


@dataclass(frozen=True)
class CurveSummary:
    """A registered curve summary.

    Attributes:
        name: The key of the summary in a walk's summary (``summary[metric][name]``).
        function: ``function(values, **needed) -> float``; ``values`` are measured on an evenly
            spaced grid of t over [0, 1], first at t = 0 and last at t = 1.
        description: One line saying what the number is.
        example: A hand-worked case the conformance suite checks.
        needs: The keyword arguments of :data:`CURVE_ARGUMENTS` the function takes.
        properties: Names from :data:`CURVE_PROPERTIES` the summary has.
        grid: Point metric -> name of the N x N matrix the connectivity grid builds by applying
            the summary to that metric's curve between every pair.
    """

    name: str
    function: Callable[..., float]
    description: str
    example: CurveExample
    needs: tuple[str, ...] = ()
    properties: frozenset[str] = frozenset()
    grid: Mapping[str, str] = field(default_factory=dict)

    def __call__(
        self,
        values: ArrayLike,
        *,
        higher_is_better: bool = False,
        ts: ArrayLike | None = None,
        length: float | None = None,
    ) -> float:
        """Summarise ``values``, passing the function only the arguments its row declares.

        ``ts=None`` leaves the t grid to the function, whose default is the even grid over [0, 1].
        A summary that needs the ``length`` measures the path in distance, so on a path of
        length 0 (two end points with the same weights over the space: every point of the path
        is the same model) it is 0, as in Juneja et al.'s ``AreaUnderCurve`` (step size 0),
        rather than an error.

        Raises:
            WeightscapeError: When the summary needs the ``length`` and none is given: a
                distance-based number is never computed with a stand-in length.
        """
        if "length" in self.needs:
            if length is None:
                raise WeightscapeError(
                    f"Curve summary '{self.name}' measures the path in distance and needs its "
                    "length (the Euclidean distance between its end points); pass length=..., "
                    "or use a per-t summary (auc_t) instead."
                )
            if length == 0:
                return 0.0
        given: dict[str, Any] = {"higher_is_better": higher_is_better, "ts": ts, "length": length}
        return float(self.function(values, **{need: given[need] for need in self.needs}))


CURVE_SUMMARIES: dict[str, CurveSummary] = {}
"""Registry of curve summaries by name, in registration order; filled by
:func:`register_curve_summary`."""


def register_curve_summary(
    name: str,
    *,
    description: str,
    example: CurveExample,
    needs: tuple[str, ...] = (),
    properties: tuple[str, ...] = (),
    grid: Mapping[str, str] | None = None,
) -> Callable[[Callable[..., float]], Callable[..., float]]:
    """Register the decorated function as the curve summary ``name``; the function is unchanged.

    Raises:
        ValueError: For a need or property that is not known, a need the function does not take,
            or grid matrices from a summary that is not reversal-symmetric (the grid fills entry
            [j, i] from the curve of [i, j] walked backwards).
    """
    unknown = sorted(set(needs) - set(CURVE_ARGUMENTS)) + sorted(
        set(properties) - set(CURVE_PROPERTIES)
    )
    if unknown:
        raise ValueError(
            f"Curve summary '{name}' declares unknown needs or properties {unknown}. Needs: "
            f"{', '.join(CURVE_ARGUMENTS)}; properties: {', '.join(CURVE_PROPERTIES)}."
        )
    if grid and "reversal_symmetric" not in properties:
        raise ValueError(
            f"Curve summary '{name}' builds grid matrices but is not declared reversal_symmetric."
        )

    def register(function: Callable[..., float]) -> Callable[..., float]:
        missing = [need for need in needs if need not in inspect.signature(function).parameters]
        if missing:
            raise ValueError(f"Curve summary '{name}' needs {missing}, which it does not take.")
        row = CurveSummary(
            name,
            function,
            description,
            example,
            tuple(needs),
            frozenset(properties),
            MappingProxyType(dict(grid or {})),
        )
        _add(CURVE_SUMMARIES, "Curve summary", row)
        return function

    return register


def get_curve_summary(name: str) -> CurveSummary:
    """The curve summary registered as ``name``.

    Raises:
        WeightscapeError: For an unknown name (with the closest valid one).

    >>> get_curve_summary("auc")(np.array([0.0, 1.0, 0.0]), length=2.0)
    1.0
    """
    if name not in CURVE_SUMMARIES:
        raise unknown_name_error("curve summary", str(name), CURVE_SUMMARIES)
    return CURVE_SUMMARIES[name]


def grid_matrices() -> dict[str, tuple[PointMetric, CurveSummary]]:
    """Matrix name -> (point metric, curve summary) for every matrix the grid rows declare.

    Ordered by point metric, then by summary, in registration order.

    Raises:
        ValueError: If a row names an unregistered point metric or a matrix name twice.

    >>> list(grid_matrices())  # doctest: +NORMALIZE_WHITESPACE
    ['loss_barrier', 'loss_convexity_gap', 'loss_auc', 'loss_auc_t', 'accuracy_drop',
     'accuracy_convexity_gap']
    """
    matrices: dict[str, tuple[PointMetric, CurveSummary]] = {}
    for summary in CURVE_SUMMARIES.values():
        unknown = sorted(set(summary.grid) - set(POINT_METRICS))
        if unknown:
            raise ValueError(f"Curve summary '{summary.name}' has grid metrics {unknown}.")
    for metric in POINT_METRICS.values():
        for summary in CURVE_SUMMARIES.values():
            name = summary.grid.get(metric.name)
            if name is None:
                continue
            if name in matrices:
                raise ValueError(f"Grid matrix '{name}' is declared twice.")
            matrices[name] = (metric, summary)
    return matrices


def _add(registry: dict[str, Any], kind: str, row: Any) -> None:
    if not isinstance(row.name, str) or not row.name:
        raise ValueError(f"{kind} rows need a non-empty name. Got {row.name!r}.")
    if row.name in registry:
        raise ValueError(f"{kind} '{row.name}' is registered twice.")
    registry[row.name] = row
