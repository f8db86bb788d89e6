"""The best model on a path: choose t on a dev split, report it on a test split.

Qin et al. (2022, Table 1) find that the best point on the line between two minima often beats
both. Choosing the point on the data it is reported on would flatter it, so t is chosen on a dev
split and the test metric is reported, against the endpoint that is better on dev.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from weightscape.analyses.interpolation import walk_path
from weightscape.evaluation.engine import Engine
from weightscape.metrics import get_point_metric
from weightscape.runtime.store import ResultStore


def best_point(
    dev: Engine,
    test: Engine,
    ts: Sequence[float],
    *,
    path: str = "linear",
    metric: str = "accuracy",
    store: ResultStore | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Walk the path on both splits; pick t by dev ``metric``, in the direction it declares.

    ``metric`` is a registered point metric (:data:`~weightscape.metrics.POINT_METRICS`), whose
    row says whether higher is better (accuracy) or lower (loss). Ties go to the t nearest the
    middle of the path, where a combination differs most from the endpoints (a tie with an
    endpoint then still picks the endpoint only when nothing beats it).

    Raises:
        WeightscapeError: For an unknown ``metric``, before anything is evaluated.
    """
    sign = get_point_metric(metric).sign  # sign * value is larger for better values
    ts = np.asarray(ts, dtype=float)
    dev_walk = walk_path(dev, ts, path=path, store=store, progress=progress)
    test_walk = walk_path(test, ts, path=path, store=store, progress=progress)
    scores = sign * dev_walk.curve(metric)
    best = np.flatnonzero(scores == scores.max())
    chosen = int(best[np.argmin(np.abs(ts[best] - 0.5))])
    ends = list(dev_walk.endpoints)
    dev_end = [sign * dev_walk.endpoints[name][metric] for name in ends]
    better = ends[int(np.argmax(dev_end))]
    return {
        "metric": metric,
        "t": float(ts[chosen]),
        "dev": dev_walk.points[chosen].metrics,
        "test": test_walk.points[chosen].metrics,
        "better_endpoint": better,
        "endpoint_dev": dev_walk.endpoints[better],
        "endpoint_test": test_walk.endpoints[better],
        "test_gain": test_walk.points[chosen].metrics[metric] - test_walk.endpoints[better][metric],
        "walks": {"dev": dev_walk, "test": test_walk},
    }
