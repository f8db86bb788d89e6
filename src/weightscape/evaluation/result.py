"""What one evaluated point yields: summary metrics and per-example outcomes."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PointResult:
    """Metrics of one point and its per-example outcomes, in the task's example order.

    Attributes:
        metrics: ``loss`` (mean cross-entropy), ``accuracy``, ``macro_f1``, ``mcc``, and every
            other registered point metric that applies to the task (``binary_f1`` for 2
            classes).
        predictions: Predicted label per example, shape (n,).
        p_true: Probability of the true label per example, shape (n,).
        losses: Cross-entropy per example, shape (n,).
        tokens: For a text task (language-model loss), the number of target tokens scored in
            each document, shape (n,); None for classification. A text task's per-example
            arrays then hold, per document: ``losses`` its mean token NLL, ``predictions`` how
            many of its targets are the argmax, ``p_true`` ``exp(-losses)``; its metrics are
            token-weighted (``loss == sum(losses * tokens) / sum(tokens)``).
    """

    metrics: dict[str, float]
    predictions: np.ndarray
    p_true: np.ndarray
    losses: np.ndarray
    tokens: np.ndarray | None = None

    def correct(self, labels: np.ndarray) -> np.ndarray:
        """Per-example correctness against ``labels``."""
        return self.predictions == labels

    def arrays_to_bytes(self) -> bytes:
        """The per-example arrays as one compressed npz blob (for the results store)."""
        buffer = io.BytesIO()
        extra = {} if self.tokens is None else {"tokens": self.tokens}
        np.savez_compressed(
            buffer, predictions=self.predictions, p_true=self.p_true, losses=self.losses, **extra
        )
        return buffer.getvalue()

    @classmethod
    def from_stored(
        cls,
        metrics: dict[str, float],
        blob: bytes,
        labels: np.ndarray | None = None,
        num_labels: int | None = None,
    ) -> PointResult:
        """Rebuild a result from the store's metrics and blob.

        With the task's ``labels`` and ``num_labels``, registered metrics the stored point
        lacks (it was stored before they existed) are computed from its stored predictions and
        losses (:meth:`completed`).
        """
        with np.load(io.BytesIO(blob), allow_pickle=False) as arrays:
            result = cls(
                metrics=dict(metrics),
                predictions=arrays["predictions"],
                p_true=arrays["p_true"],
                losses=arrays["losses"],
                tokens=arrays["tokens"] if "tokens" in arrays.files else None,
            )
        if labels is None or num_labels is None:
            return result
        return result.completed(labels, num_labels)

    def completed(self, labels: np.ndarray, num_labels: int) -> PointResult:
        """This result with every applicable registered metric it lacks computed from its
        per-example predictions and losses against the task's ``labels``; itself when none
        is missing."""
        from weightscape.metrics.classification import missing_metrics

        labels = np.asarray(labels)
        if labels.shape != self.predictions.shape:
            from weightscape.errors import WeightscapeError

            raise WeightscapeError(
                f"A stored point holds {self.predictions.size} predictions but the task has "
                f"{labels.size} labels; the store key should have told them apart. Rerun with "
                "a fresh --store."
            )
        metrics = missing_metrics(
            self.metrics, labels, self.predictions, self.losses, int(num_labels)
        )
        if metrics == self.metrics:
            return self
        return PointResult(metrics, self.predictions, self.p_true, self.losses)
