"""Language-model metrics of one evaluated point, from its per-token outcomes.

A text task's point is scored over every target token of every document at once: the arrays a
point metric receives are per *token* (the target token ids, the model's argmax ids and the
negative log likelihood of each target), so the registered ``loss`` is the token-weighted mean
NLL (every token counts once, whatever its document's length), ``accuracy`` the fraction of
targets that are the argmax, and ``perplexity`` ``exp(loss)``. A new language-model metric is one
function and one decorator here (``kinds=("text",)``).
"""

from __future__ import annotations

import numpy as np

from weightscape.metrics.registry import POINT_METRICS, PointExample, register_point_metric


@register_point_metric(
    "perplexity",
    higher_is_better=False,
    description="exp of the mean negative log likelihood of the target tokens.",
    # Four tokens with NLL 0.1, 0.2, 1.5, 0.2: exp(2.0 / 4) = exp(0.5).
    example=PointExample(
        labels=(0, 1, 1, 0),
        predictions=(0, 1, 0, 0),
        losses=(0.1, 0.2, 1.5, 0.2),
        num_labels=2,
        expected=float(np.exp(0.5)),
    ),
    kinds=("text",),
)
def perplexity(
    labels: np.ndarray, predictions: np.ndarray, losses: np.ndarray, num_labels: int
) -> float:
    """``exp(mean(losses))`` over per-token losses: the model's perplexity on the targets."""
    return float(np.exp(np.mean(np.asarray(losses, dtype=np.float64))))


def text_metrics(
    targets: np.ndarray, predicted: np.ndarray, token_losses: np.ndarray, vocab_size: int
) -> dict[str, float]:
    """Every registered point metric defined for text tasks, over per-token outcomes.

    Args:
        targets: Target token id of every scored token, shape (tokens,).
        predicted: The model's argmax token id at each of them, shape (tokens,).
        token_losses: Negative log likelihood of each target, shape (tokens,).
        vocab_size: Size of the output vocabulary (the metrics' ``num_labels``).

    >>> m = text_metrics(np.array([3, 5, 7, 1]), np.array([3, 5, 0, 1]),
    ...                  np.array([0.1, 0.2, 1.5, 0.2]), 10)
    >>> m["loss"], m["accuracy"], round(m["perplexity"], 4)
    (0.5, 0.75, 1.6487)
    """
    return {
        name: metric(targets, predicted, token_losses, vocab_size)
        for name, metric in POINT_METRICS.items()
        if "text" in metric.kinds
    }
