"""Seeded splits and subsets of a :class:`~weightscape.data.task.Task`.

None of the built-in datasets ships official splits, so train/validation/test come from one seeded
permutation: the same task and seed always give the same splits, on any machine (numpy's
``default_rng`` streams are stable across platforms and versions). Rows keep their original order
inside each split and keep their ids, so results stay traceable to the full dataset.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from weightscape.data.task import Task
from weightscape.errors import WeightscapeError

SPLIT_NAMES: tuple[str, str, str] = ("train", "validation", "test")


def split(task: Task, ratios: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0) -> dict[str, Task]:
    """Split a task into disjoint train, validation and test tasks that cover every row.

    Sizes are ``round(cumsum(ratios) * n)`` boundaries over one seeded permutation, so they match
    the ratios to within one row each. Each split is named ``"<task name>:<split>"`` (e.g.
    ``"rotten_tomatoes:test"``) so that reports and logs say which part they used.

    Args:
        task: The task to split.
        ratios: Fractions for train, validation and test; positive, summing to 1.
        seed: Seed of the permutation.

    Returns:
        ``{"train": ..., "validation": ..., "test": ...}``.

    Raises:
        WeightscapeError: If the ratios are invalid, or the task is too small to give every split
            at least one row.

    Example:
        >>> from weightscape.data.task import make_task
        >>> texts, labels = [f"text {i}" for i in range(10)], [i % 2 for i in range(10)]
        >>> task = make_task("toy", texts, labels, ("odd", "even"))
        >>> {key: len(part) for key, part in split(task).items()}
        {'train': 8, 'validation': 1, 'test': 1}
    """
    fractions = _check_ratios(ratios)
    count = len(task)
    order = np.random.default_rng(_check_seed(seed)).permutation(count)
    bounds = [0, *np.round(np.cumsum(fractions) * count).astype(int).tolist()]
    bounds[-1] = count  # guard against float rounding at the end
    parts: dict[str, Task] = {}
    for key, start, stop in zip(SPLIT_NAMES, bounds[:-1], bounds[1:], strict=True):
        if stop <= start:
            raise WeightscapeError(
                f"Splitting task '{task.name}' ({count} examples) with ratios "
                f"{tuple(fractions)} leaves the '{key}' split empty. Use a larger task or a "
                f"larger '{key}' ratio."
            )
        parts[key] = task.select(np.sort(order[start:stop]), name=f"{task.name}:{key}")
    return parts


def subset(task: Task, n: int, seed: int = 0) -> Task:
    """Return a seeded random subset of ``n`` rows, in their original order.

    Subsets with the same seed are nested: the rows of ``subset(task, 100)`` are among those of
    ``subset(task, 200)``, so a larger evaluation set extends a smaller one. The name is kept.

    Args:
        task: The task to draw from.
        n: How many rows; ``n >= len(task)`` returns the task itself (all rows).
        seed: Seed of the draw.

    Raises:
        WeightscapeError: If ``n`` is not an integer >= 1.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise WeightscapeError(
            f"The 'n' parameter of subset must be an int >= 1. Got {n!r} instead."
        )
    if n >= len(task):
        return task
    order = np.random.default_rng(_check_seed(seed)).permutation(len(task))
    return task.select(np.sort(order[: int(n)]))


def _check_ratios(ratios: Sequence[float]) -> list[float]:
    try:
        fractions = [float(ratio) for ratio in ratios]
    except (TypeError, ValueError):
        fractions = []
    valid = len(fractions) == len(SPLIT_NAMES) and all(
        math.isfinite(f) and f > 0 for f in fractions
    )
    if not valid or abs(sum(fractions) - 1.0) > 1e-6:
        raise WeightscapeError(
            "The 'ratios' parameter of split must be three positive numbers (train, validation, "
            f"test) that sum to 1, e.g. (0.8, 0.1, 0.1). Got {ratios!r} instead."
        )
    return fractions


def _check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise WeightscapeError(f"The 'seed' parameter must be an int >= 0. Got {seed!r} instead.")
    return int(seed)
