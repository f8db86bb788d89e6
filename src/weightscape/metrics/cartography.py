"""Dataset cartography (Swayamdipta et al. 2020): how a model's training treated each example.

Training dynamics are the probabilities a model assigned to each training example's true label
at several points of its training, an array ``p_true`` of shape (points, examples). Per example:

* **confidence** is the mean of ``p_true`` over the points;
* **variability** is its standard deviation (the population one, dividing by the number of
  points, as in Swayamdipta et al. and Qin et al. 2022, §Q3);
* **correctness** is the fraction of points at which the prediction was the true label.

Swayamdipta et al. record once per epoch; runs here are often shorter than one epoch, so the
points are every K optimiser steps instead (:mod:`weightscape.training.dynamics`). The statistics
do not care which: they are means over whatever points were recorded.

The cartography map (confidence against variability) has three regions: *easy-to-learn*
examples (high confidence, low variability), *ambiguous* ones (high variability) and
*hard-to-learn* ones (low confidence, low variability). :func:`cartography_regions` splits
examples into them by one documented rule. numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from weightscape.errors import WeightscapeError

__all__ = [
    "REGIONS",
    "Cartography",
    "cartography",
    "cartography_regions",
    "confidence",
    "correctness",
    "variability",
]

# Region names, indexed by the codes cartography_regions returns.
REGIONS: tuple[str, str, str] = ("easy-to-learn", "ambiguous", "hard-to-learn")


def _dynamics(p_true: object, owner: str) -> np.ndarray:
    array = np.asarray(p_true, dtype=np.float64)
    if array.ndim != 2 or array.shape[0] < 1 or array.shape[1] < 1:
        raise WeightscapeError(
            f"The 'p_true' parameter of {owner} must be a 2-D array (points, examples) with at "
            f"least one of each. Got shape {array.shape} instead."
        )
    if not np.all((array >= 0) & (array <= 1)):
        raise WeightscapeError(
            f"The 'p_true' parameter of {owner} must hold probabilities in [0, 1]."
        )
    return array


def confidence(p_true: object) -> np.ndarray:
    """Mean probability of the true label per example, over the recorded points.

    >>> confidence([[0.2, 0.9], [0.6, 0.7]]).round(6).tolist()
    [0.4, 0.8]
    """
    return _dynamics(p_true, "confidence").mean(axis=0)


def variability(p_true: object) -> np.ndarray:
    """Standard deviation (over points, dividing by their number) of the true label's probability.

    >>> variability([[0.2, 0.9], [0.6, 0.7]]).round(6).tolist()
    [0.2, 0.1]
    """
    return _dynamics(p_true, "variability").std(axis=0)


def correctness(predictions: object, labels: object) -> np.ndarray:
    """Fraction of the recorded points at which each example was predicted right.

    Args:
        predictions: Predicted labels, shape (points, examples).
        labels: True labels, shape (examples,).

    >>> correctness([[0, 1, 1], [1, 1, 0]], [0, 1, 2]).tolist()
    [0.5, 1.0, 0.0]
    """
    predicted = np.asarray(predictions)
    truth = np.asarray(labels)
    if predicted.ndim != 2 or truth.shape != predicted.shape[1:]:
        raise WeightscapeError(
            "The 'predictions' parameter of correctness must have shape (points, examples) and "
            f"'labels' shape (examples,). Got {predicted.shape} and {truth.shape} instead."
        )
    return (predicted == truth[None, :]).mean(axis=0)


@dataclass(frozen=True)
class Cartography:
    """Per-example cartography statistics, each of shape (examples,)."""

    confidence: np.ndarray
    variability: np.ndarray
    correctness: np.ndarray

    def to_dict(self) -> dict[str, list[float]]:
        """A JSON-able form."""
        return {k: getattr(self, k).tolist() for k in ("confidence", "variability", "correctness")}


def cartography(p_true: object, predictions: object, labels: object) -> Cartography:
    """Confidence, variability and correctness of each example from its training dynamics.

    >>> c = cartography([[0.2, 0.9], [0.6, 0.7]], [[0, 1], [1, 1]], [1, 1])
    >>> c.confidence.round(6).tolist(), c.variability.round(6).tolist(), c.correctness.tolist()
    ([0.4, 0.8], [0.2, 0.1], [0.5, 1.0])
    """
    return Cartography(
        confidence=confidence(p_true),
        variability=variability(p_true),
        correctness=correctness(predictions, labels),
    )


def cartography_regions(
    confidence: object,
    variability: object,
    *,
    ambiguous_fraction: float = 1 / 3,
    confidence_threshold: float = 0.5,
) -> np.ndarray:
    """Split examples into the map's regions; returns codes into :data:`REGIONS`.

    The rule: an example is *ambiguous* (code 1) if its variability lies strictly above the
    ``1 - ambiguous_fraction`` quantile of all variabilities (the most variable third by
    default; ties at the quantile, such as all-zero variability, are not ambiguous). Every other
    example is *easy-to-learn* (code 0) if its confidence is at least ``confidence_threshold``,
    else *hard-to-learn* (code 2). Swayamdipta et al. select the top examples by each statistic;
    this variant gives a partition, so every example has exactly one region.

    >>> cartography_regions([0.9, 0.8, 0.5, 0.1, 0.2, 0.6], [0.0, 0.05, 0.3, 0.02, 0.01, 0.25])
    array([0, 0, 1, 2, 2, 1])
    """
    conf = np.asarray(confidence, dtype=np.float64)
    var = np.asarray(variability, dtype=np.float64)
    if conf.ndim != 1 or conf.shape != var.shape:
        raise WeightscapeError(
            "The 'confidence' and 'variability' parameters of cartography_regions must be 1-D "
            f"arrays of one length. Got shapes {conf.shape} and {var.shape} instead."
        )
    if not 0 < ambiguous_fraction < 1:
        raise WeightscapeError(
            "The 'ambiguous_fraction' parameter of cartography_regions must lie in (0, 1). "
            f"Got {ambiguous_fraction!r} instead."
        )
    if conf.size == 0:
        return np.zeros(0, dtype=np.int64)
    ambiguous = var > np.quantile(var, 1 - ambiguous_fraction)
    codes = np.where(conf >= confidence_threshold, 0, 2)
    codes[ambiguous] = 1
    return codes.astype(np.int64)
