"""Classification metrics of one evaluated point, from its per-example outcomes.

Each metric is a row of :data:`~weightscape.metrics.registry.POINT_METRICS`, declaring whether
higher is better and carrying a hand-worked example; :func:`classification_metrics` computes every
registered row that applies to the task (binary F1 only for 2-class tasks), so a new metric is one
function and one decorator here.
"""

from __future__ import annotations

import warnings

import numpy as np

from weightscape.errors import WeightscapeError
from weightscape.metrics.registry import POINT_METRICS, PointExample, register_point_metric

# Four examples of a binary task: one positive predicted negative.
_BINARY = {"labels": (0, 1, 1, 0), "predictions": (0, 1, 0, 0), "num_labels": 2}
_LOSSES = (0.1, 0.2, 1.5, 0.2)


@register_point_metric(
    "loss",
    higher_is_better=False,
    description="Mean cross-entropy of the true label (text tasks: of each target token, "
    "averaged over tokens).",
    example=PointExample(**_BINARY, losses=_LOSSES, expected=0.5),  # 2.0 / 4
    mean_over_examples=True,
    kinds=("classification", "text"),
)
def mean_loss(
    labels: np.ndarray, predictions: np.ndarray, losses: np.ndarray, num_labels: int
) -> float:
    """Mean of the per-example losses."""
    return float(np.mean(losses))


@register_point_metric(
    "accuracy",
    higher_is_better=True,
    description="Fraction of examples whose predicted label is the true one (text tasks: of "
    "target tokens that are the model's argmax).",
    example=PointExample(**_BINARY, losses=_LOSSES, expected=0.75),  # 3 of 4 right
    mean_over_examples=True,
    kinds=("classification", "text"),
)
def accuracy(
    labels: np.ndarray, predictions: np.ndarray, losses: np.ndarray, num_labels: int
) -> float:
    """Fraction of correct predictions."""
    return float(np.mean(labels == predictions))


@register_point_metric(
    "macro_f1",
    higher_is_better=True,
    description="Unweighted mean of the per-class F1 over the whole label set (absent ones 0).",
    # Class 0: P 1, R 1/2, F1 2/3; class 1: P 2/3, R 1, F1 4/5; class 2 never occurs: F1 0.
    # (2/3 + 4/5 + 0) / 3 = 22/45.
    example=PointExample(
        labels=(0, 0, 1, 1),
        predictions=(0, 1, 1, 1),
        losses=_LOSSES,
        num_labels=3,
        expected=22 / 45,
    ),
)
def macro_f1(
    labels: np.ndarray, predictions: np.ndarray, losses: np.ndarray, num_labels: int
) -> float:
    """Macro-F1 over ``range(num_labels)``, so that absent classes still count (as 0)."""
    from sklearn.metrics import f1_score

    return float(
        f1_score(
            labels, predictions, labels=list(range(num_labels)), average="macro", zero_division=0
        )
    )


@register_point_metric(
    "mcc",
    higher_is_better=True,
    description="Matthews correlation of predicted and true labels (0 when one class only).",
    # TP 1, TN 2, FP 0, FN 1: (1 * 2 - 0 * 1) / sqrt(1 * 2 * 2 * 3) = 1 / sqrt(3).
    example=PointExample(**_BINARY, losses=_LOSSES, expected=3**-0.5),
)
def mcc(labels: np.ndarray, predictions: np.ndarray, losses: np.ndarray, num_labels: int) -> float:
    """Matthews correlation coefficient (multi-class form)."""
    from sklearn.metrics import matthews_corrcoef

    with warnings.catch_warnings():
        # Diagnostic sets often hold one class only (e.g. HANS non-entailing halves); MCC is 0
        # there by convention and scikit-learn's warning about it would repeat for every point.
        warnings.filterwarnings("ignore", message="A single label was found")
        return float(matthews_corrcoef(labels, predictions))


@register_point_metric(
    "binary_f1",
    higher_is_better=True,
    description="F1 of the positive class (label index 1) of a 2-class task, as GLUE reports "
    "for MRPC and QQP.",
    # TP 1 (the second example), FP 0, FN 1 (the third): 2 * 1 / (2 * 1 + 0 + 1) = 2/3.
    example=PointExample(**_BINARY, losses=_LOSSES, expected=2 / 3),
    only_num_labels=2,
)
def binary_f1(
    labels: np.ndarray, predictions: np.ndarray, losses: np.ndarray, num_labels: int
) -> float:
    """F1 of the positive class of a binary task: ``2 TP / (2 TP + FP + FN)``.

    The positive class is the task's label index 1 (its second label name: ``duplicate`` for
    QQP, ``equivalent`` for MRPC, ``non-entailment`` for HANS after ``mnli_to_hans``), the
    ``pos_label=1`` of GLUE's F1 (scikit-learn's ``f1_score`` as the GLUE metric calls it). It is
    0 when there is neither a positive label nor a positive prediction (scikit-learn's
    ``zero_division=0``).

    Raises:
        WeightscapeError: For a task that does not have exactly 2 classes.

    >>> binary_f1(np.array([0, 1, 1, 0]), np.array([0, 1, 0, 0]), np.zeros(4), 2)
    0.6666666666666666
    """
    if int(num_labels) != 2:
        raise WeightscapeError(
            f"binary_f1 is the F1 of label 1 of a 2-class task; this task has {num_labels} "
            "classes. Use macro_f1 for more than two."
        )
    true_positive = int(np.sum((predictions == 1) & (labels == 1)))
    false_positive = int(np.sum((predictions == 1) & (labels != 1)))
    false_negative = int(np.sum((predictions != 1) & (labels == 1)))
    denominator = 2 * true_positive + false_positive + false_negative
    return 2 * true_positive / denominator if denominator else 0.0


def classification_metrics(
    labels: np.ndarray, predictions: np.ndarray, losses: np.ndarray, num_labels: int
) -> dict[str, float]:
    """Every registered point metric of one point that applies to its task: mean loss,
    accuracy, macro-F1, MCC, and binary F1 when the task has 2 classes.

    Args:
        labels: True labels, shape (n,).
        predictions: Predicted labels (argmax), shape (n,).
        losses: Per-example cross-entropy, shape (n,).
        num_labels: Size of the label set, so that absent classes still count in macro-F1.

    >>> m = classification_metrics(np.array([0, 1, 1, 0]), np.array([0, 1, 0, 0]),
    ...                            np.array([0.1, 0.2, 1.5, 0.2]), 2)
    >>> round(m["loss"], 3), m["accuracy"], round(m["macro_f1"], 4), round(m["mcc"], 4)
    (0.5, 0.75, 0.7333, 0.5774)
    >>> round(m["binary_f1"], 4)
    0.6667
    """
    return missing_metrics({}, labels, predictions, losses, num_labels)


def missing_metrics(
    metrics: dict[str, float],
    labels: np.ndarray,
    predictions: np.ndarray,
    losses: np.ndarray,
    num_labels: int,
) -> dict[str, float]:
    """``metrics`` completed with every applicable registered metric it lacks, in registry order.

    A result stored before a metric was registered lacks it; its stored per-example predictions
    and losses give it exactly, so nothing is re-evaluated. Values already present are kept, and
    keys no longer registered stay after the registered ones.

    >>> filled = missing_metrics({"loss": 0.5}, np.array([0, 1]), np.array([1, 1]), np.zeros(2), 2)
    >>> filled["loss"], filled["accuracy"], round(filled["binary_f1"], 4), list(filled)[-1]
    (0.5, 0.5, 0.6667, 'binary_f1')
    """
    completed = {
        name: metrics[name] if name in metrics else metric(labels, predictions, losses, num_labels)
        for name, metric in POINT_METRICS.items()
        if name in metrics or metric.applies(num_labels)
    }
    completed.update({k: v for k, v in metrics.items() if k not in completed})
    return completed
