"""Executors: evaluate many points through the results store.

The in-process executor is the default: one working model, points evaluated in order, every
result committed as soon as it exists, every stored point reused instead of recomputed.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from weightscape.evaluation.engine import Engine
from weightscape.evaluation.result import PointResult
from weightscape.runtime.keys import spec_key
from weightscape.runtime.store import ResultStore


@dataclass(frozen=True)
class Evaluated:
    """One point's result, whether it came from the store, and its key."""

    result: PointResult
    cached: bool
    key: str


def evaluate_points(
    engine: Engine,
    rows: Sequence[Sequence[float]] | np.ndarray,
    store: ResultStore | None = None,
    *,
    progress: bool = False,
    description: str = "points",
) -> list[Evaluated]:
    """Evaluate coefficient rows in order, reusing stored and repeated points.

    Args:
        engine: The engine holding the anchors, task and settings.
        rows: One coefficient vector per point.
        store: Where results are looked up and committed; None evaluates without storing.
        progress: Show a progress bar (on stderr).
        description: Label of the progress bar.
    """
    from tqdm.auto import tqdm

    done: dict[str, Evaluated] = {}
    out: list[Evaluated] = []
    for row in tqdm(list(rows), desc=description, disable=not progress, unit="pt"):
        key = spec_key(engine.spec(row))
        if key in done:
            out.append(Evaluated(done[key].result, True, key))
            continue
        stored = store.get(key) if store is not None else None
        if stored is not None:
            item = Evaluated(stored, True, key)
        else:
            start = time.perf_counter()
            result = engine.evaluate(row)
            if store is not None:
                store.put(key, engine.spec(row), result, time.perf_counter() - start)
            item = Evaluated(result, False, key)
        done[key] = item
        out.append(item)
    return out
