"""Interpolation across data: paths between models of one dataset, one family, or none.

Gueta et al. (2023, §5.1, App. E) interpolate pairs of models finetuned on the same dataset,
on different datasets of one task family, and on datasets of different families, evaluate every
point with the generalised loss on several target datasets, and average the curves over pairs;
they also interpolate between group centroids. A curve is oriented so that ``t = 0`` is the
model (or centroid) of the target's own dataset; pairs from one dataset are evaluated on it
alone. Records hold the curve of every (pair, target) and the mean and std over them per
category (``dataset``, ``family``, ``general``).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

from weightscape.analyses.region_edges import line_rows
from weightscape.analyses.regions import METRICS, RegionStudy
from weightscape.geometry.grids import even_grid
from weightscape.geometry.regions import centroid_over

__all__ = ["centroid_interpolation", "interpolation_across_data", "model_pairs"]

CATEGORIES = ("dataset", "family", "general")


def model_pairs(study: RegionStudy, max_pairs: int = 6, seed: int = 0) -> dict[str, list]:
    """Up to ``max_pairs`` model index pairs per category, drawn seeded from all candidates."""
    candidates: dict[str, list[tuple[int, int]]] = {c: [] for c in CATEGORIES}
    for a, b in itertools.combinations(range(len(study.models)), 2):
        candidates[_category(study, a, b)].append((a, b))
    rng = np.random.default_rng(seed)
    chosen = {}
    for category, pairs in candidates.items():
        picks = rng.permutation(len(pairs))[:max_pairs] if pairs else []
        chosen[category] = [pairs[i] for i in sorted(picks)]
    return chosen


def interpolation_across_data(
    study: RegionStudy, t: Sequence[float] | None = None, max_pairs: int = 6
) -> dict[str, Any]:
    """Curves of model pairs per category on the pairs' own datasets, with mean and std."""
    t = even_grid(5) if t is None else np.asarray(t, dtype=np.float64)
    curves = []
    for category, pairs in model_pairs(study, max_pairs, study.seed).items():
        for a, b in pairs:
            for target, (start, end) in _oriented(study, a, b):
                values = study.evaluate(target, line_rows(len(study.anchors), start, end, t))
                curves.append(_curve(category, target, study, start, end, values))
    return {"t": t.tolist(), "curves": curves, "summary": _summary(curves)}


def centroid_interpolation(study: RegionStudy, t: Sequence[float] | None = None) -> dict[str, Any]:
    """Curves between the centroids of every two dataset groups, on both groups' datasets."""
    t = even_grid(5) if t is None else np.asarray(t, dtype=np.float64)
    n = len(study.anchors)
    curves = []
    for g, h in itertools.combinations(sorted(study.groups), 2):
        category = _category(study, study.groups[g][0], study.groups[h][0])
        for own, other in ((g, h), (h, g)):
            c_own = centroid_over(study.groups[own], n)
            c_other = centroid_over(study.groups[other], n)
            rows = (1 - t)[:, None] * c_own[None, :] + t[:, None] * c_other[None, :]
            values = study.evaluate(own, rows)
            curves.append(
                {
                    "category": category,
                    "target": own,
                    "from": f"centroid({own})",
                    "to": f"centroid({other})",
                    **{m: v.tolist() for m, v in values.items()},
                }
            )
    return {"t": t.tolist(), "curves": curves, "summary": _summary(curves)}


def _category(study: RegionStudy, a: int, b: int) -> str:
    group = {i: g for g, members in study.groups.items() for i in members}
    if group[a] == group[b]:
        return "dataset"
    family = {i: f for f, members in study.families.items() for i in members}
    if family and family[a] == family[b]:
        return "family"
    return "general"


def _oriented(study: RegionStudy, a: int, b: int) -> list[tuple[str, tuple[int, int]]]:
    group = {i: g for g, members in study.groups.items() for i in members}
    if group[a] == group[b]:
        return [(group[a], (a, b))]
    return [(group[a], (a, b)), (group[b], (b, a))]


def _curve(category, target, study, start, end, values) -> dict[str, Any]:
    return {
        "category": category,
        "target": target,
        "from": study.models[start].name,
        "to": study.models[end].name,
        **{m: v.tolist() for m, v in values.items()},
    }


def _summary(curves: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    summary = {}
    for category in CATEGORIES:
        chosen = [c for c in curves if c["category"] == category]
        if not chosen:
            continue
        entry: dict[str, Any] = {"n_curves": len(chosen)}
        for metric in METRICS:
            stack = np.array([c[metric] for c in chosen])
            entry[metric] = {"mean": stack.mean(axis=0).tolist(), "std": stack.std(axis=0).tolist()}
        summary[category] = entry
    return summary
