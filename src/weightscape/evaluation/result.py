"""What one evaluated point yields: summary metrics and per-example outcomes."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PointResult:
    """Metrics of one point and its per-example outcomes, in the task's example order.

    Attributes:
        metrics: ``loss`` (mean cross-entropy), ``accuracy``, ``macro_f1``, ``mcc``.
        predictions: Predicted label per example, shape (n,).
        p_true: Probability of the true label per example, shape (n,).
        losses: Cross-entropy per example, shape (n,).
    """

    metrics: dict[str, float]
    predictions: np.ndarray
    p_true: np.ndarray
    losses: np.ndarray

    def correct(self, labels: np.ndarray) -> np.ndarray:
        """Per-example correctness against ``labels``."""
        return self.predictions == labels

    def arrays_to_bytes(self) -> bytes:
        """The per-example arrays as one compressed npz blob (for the results store)."""
        buffer = io.BytesIO()
        np.savez_compressed(
            buffer, predictions=self.predictions, p_true=self.p_true, losses=self.losses
        )
        return buffer.getvalue()

    @classmethod
    def from_stored(cls, metrics: dict[str, float], blob: bytes) -> PointResult:
        """Rebuild a result from the store's metrics and blob."""
        with np.load(io.BytesIO(blob), allow_pickle=False) as arrays:
            return cls(
                metrics=dict(metrics),
                predictions=arrays["predictions"],
                p_true=arrays["p_true"],
                losses=arrays["losses"],
            )
