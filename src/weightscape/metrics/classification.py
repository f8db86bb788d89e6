"""Classification metrics of one evaluated point, from its per-example outcomes."""

from __future__ import annotations

import warnings

import numpy as np


def classification_metrics(
    labels: np.ndarray, predictions: np.ndarray, losses: np.ndarray, num_labels: int
) -> dict[str, float]:
    """Mean loss, accuracy, macro-F1 and Matthews correlation of one point.

    Args:
        labels: True labels, shape (n,).
        predictions: Predicted labels (argmax), shape (n,).
        losses: Per-example cross-entropy, shape (n,).
        num_labels: Size of the label set, so that absent classes still count in macro-F1.

    >>> m = classification_metrics(np.array([0, 1, 1, 0]), np.array([0, 1, 0, 0]),
    ...                            np.array([0.1, 0.2, 1.5, 0.2]), 2)
    >>> round(m["loss"], 3), m["accuracy"], round(m["macro_f1"], 4), round(m["mcc"], 4)
    (0.5, 0.75, 0.7333, 0.5774)
    """
    from sklearn.metrics import f1_score, matthews_corrcoef

    labels_range = list(range(num_labels))
    with warnings.catch_warnings():
        # Diagnostic sets often hold one class only (e.g. HANS non-entailing halves); MCC is 0
        # there by convention and scikit-learn's warning about it would repeat for every point.
        warnings.filterwarnings("ignore", message="A single label was found")
        mcc = float(matthews_corrcoef(labels, predictions))
    return {
        "loss": float(np.mean(losses)),
        "accuracy": float(np.mean(labels == predictions)),
        "macro_f1": float(
            f1_score(labels, predictions, labels=labels_range, average="macro", zero_division=0)
        ),
        "mcc": mcc,
    }
