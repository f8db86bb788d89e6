"""The best model on a path: choose t on a dev split, report it on a test split.

Qin et al. (2022, Table 1; Appendix B.3) find that the best point on a path between two minima
often beats both: they evaluate the points of the line (or of a fitted curve) on a development
set, take the best-performing one and report its test performance. Choosing the point on the data
it is reported on would flatter it, so t is chosen on dev. The endpoint baseline is, as in their
Tables 1-2, "the endpoint that performs better on the test set" (``endpoint_split="test"``, the
default); ``endpoint_split="dev"`` chooses it the way t is chosen, without looking at test. The
result says which split chose it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from weightscape.analyses.interpolation import PathWalk, walk_path
from weightscape.errors import WeightscapeError
from weightscape.evaluation.engine import Engine
from weightscape.metrics import get_point_metric
from weightscape.runtime.store import ResultStore

EndpointSplit = Literal["test", "dev"]
ENDPOINT_SPLITS = ("test", "dev")


def choose_t(ts: Sequence[float], scores: Sequence[float]) -> int:
    """Index of the best of ``scores`` (higher is better) over the points ``ts``.

    Ties go to the t nearest the middle of the path, where a combination differs most from the
    endpoints: a tie with an endpoint picks the endpoint only when nothing beats it. (Qin et al.'s
    released loop keeps the first maximum, i.e. the smallest t; ties are rare on real dev sets.)

    >>> choose_t([0.0, 0.25, 0.5, 0.75, 1.0], [0.8, 0.9, 0.85, 0.9, 0.8])
    1
    >>> choose_t([0.0, 0.5, 1.0], [0.9, 0.9, 0.8])
    1
    """
    ts, scores = np.asarray(ts, dtype=float), np.asarray(scores, dtype=float)
    if len(ts) == 0 or ts.shape != scores.shape:
        raise WeightscapeError(
            f"choose_t needs one score per t; got {len(ts)} t and {len(scores)} scores."
        )
    best = np.flatnonzero(scores == scores.max())
    return int(best[np.argmin(np.abs(ts[best] - 0.5))])


def better_endpoint(endpoints: dict[str, dict[str, float]], metric: str) -> str:
    """The name of the endpoint whose ``metric`` is better, in the direction the metric declares
    (the first one on a tie)."""
    sign = get_point_metric(metric).sign  # sign * value is larger for better values
    names = list(endpoints)
    return names[int(np.argmax([sign * endpoints[name][metric] for name in names]))]


def best_of_walks(
    dev_walk: PathWalk,
    test_walk: PathWalk,
    *,
    metric: str = "accuracy",
    endpoint_split: EndpointSplit = "test",
) -> dict[str, Any]:
    """The best point of a path walked on dev and on test, against the better endpoint.

    Args:
        dev_walk: The path walked on the dev split (chooses t).
        test_walk: The same path at the same t on the test split (reports it).
        metric: A registered point metric; its declared direction says what is better.
        endpoint_split: The split whose ``metric`` picks the endpoint baseline: ``test`` (Qin et
            al.'s Tables 1-2) or ``dev``.

    Returns:
        ``{"metric", "path", "t", "dev", "test", "better_endpoint", "endpoint_split",
        "endpoint_dev", "endpoint_test", "test_gain", "walks"}``; ``test_gain`` is the chosen
        point's test ``metric`` minus the endpoint's.

    Raises:
        WeightscapeError: For an unknown ``metric`` or ``endpoint_split``, or walks whose t differ.
    """
    sign = get_point_metric(metric).sign
    if endpoint_split not in ENDPOINT_SPLITS:
        raise WeightscapeError(
            f"The 'endpoint_split' parameter must be one of {', '.join(ENDPOINT_SPLITS)}. "
            f"Got {endpoint_split!r} instead."
        )
    ts = [p.t for p in dev_walk.points]
    if ts != [p.t for p in test_walk.points]:
        raise WeightscapeError("The dev and test walks must evaluate the same t values.")
    chosen = choose_t(ts, sign * dev_walk.curve(metric))
    walks = {"dev": dev_walk, "test": test_walk}
    better = better_endpoint(walks[endpoint_split].endpoints, metric)
    point = test_walk.points[chosen].metrics
    return {
        "metric": metric,
        "path": dev_walk.path,
        "t": float(ts[chosen]),
        "dev": dev_walk.points[chosen].metrics,
        "test": point,
        "better_endpoint": better,
        "endpoint_split": endpoint_split,
        "endpoint_dev": dev_walk.endpoints[better],
        "endpoint_test": test_walk.endpoints[better],
        "test_gain": point[metric] - test_walk.endpoints[better][metric],
        "walks": walks,
    }


def best_point(
    dev: Engine,
    test: Engine,
    ts: Sequence[float],
    *,
    path: str = "linear",
    metric: str = "accuracy",
    endpoint_split: EndpointSplit = "test",
    store: ResultStore | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Walk the path on both splits; pick t by dev ``metric`` (:func:`best_of_walks`).

    ``metric`` is a registered point metric (:data:`~weightscape.metrics.POINT_METRICS`), whose
    row says whether higher is better (accuracy) or lower (loss).

    Raises:
        WeightscapeError: For an unknown ``metric``, before anything is evaluated.
    """
    get_point_metric(metric)
    ts = np.asarray(ts, dtype=float)
    dev_walk = walk_path(dev, ts, path=path, store=store, progress=progress)
    test_walk = walk_path(test, ts, path=path, store=store, progress=progress)
    return best_of_walks(dev_walk, test_walk, metric=metric, endpoint_split=endpoint_split)
