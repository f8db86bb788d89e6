"""Interpolation across data: paths between models of one dataset, one family, or none.

Gueta et al. (2023, §5.1, App. E) interpolate pairs of models finetuned on the same dataset,
on two datasets of one task family, and on datasets of two families: every pair of 5 MNLI
models (10 pairs) scored on MNLI; every MNLI model with every ESNLI model (25 pairs) scored on
every NLI dataset; every MNLI model with every SST2 model (25 pairs) scored on every General
dataset. They average the loss over the targets and report the mean and std over pairs, and also
interpolate between group centroids (App. E, Fig. 10). Extrapolation (§6.1, App. G) "reproduces
the interpolation settings" with t outside [0, 1] (:mod:`.region_edges`).

Here, by default (``targets="level"``), :func:`model_pairs` takes every pair of each category of
the zoo and :func:`path_targets` scores each on its level's targets: a dataset pair on its
dataset, a family pair on every dataset of the family, a pair of two families on every dataset
of the zoo. A cross pair runs from the model of the dataset first in (family, dataset) order
(``t = 0``) to the other. ``targets="own"`` is a cheaper, different look: each cross pair on its
two datasets only, oriented so that ``t = 0`` is the target's own model. Records hold the curve
of every (pair, target) and, per category, the mean and std over pairs of the target-averaged
curve (``own``: over the oriented curves).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

from weightscape.analyses.regions import METRICS, RegionStudy
from weightscape.errors import unknown_name_error
from weightscape.geometry.grids import even_grid
from weightscape.geometry.regions import centroid_over

__all__ = [
    "CATEGORIES",
    "PATH_TARGETS",
    "centroid_interpolation",
    "interpolation_across_data",
    "level_targets",
    "line_rows",
    "model_pairs",
    "path_targets",
    "scored_lines",
]

CATEGORIES = ("dataset", "family", "general")
PATH_TARGETS = ("level", "own")


def line_rows(n_anchors: int, a: int, b: int, t: Sequence[float]) -> np.ndarray:
    """Rows ``(1 - t) w_a + t w_b`` over ``n_anchors`` anchors (t outside [0, 1] extrapolates).

    >>> line_rows(3, 0, 2, [0.0, 2.0]).tolist()
    [[1.0, 0.0, 0.0], [-1.0, 0.0, 2.0]]
    """
    t = np.asarray(t, dtype=np.float64)
    rows = np.zeros((len(t), n_anchors))
    rows[:, a] += 1.0 - t
    rows[:, b] += t
    return rows


def model_pairs(
    study: RegionStudy,
    max_pairs: int | None = None,
    seed: int = 0,
    categories: Sequence[str] = CATEGORIES,
) -> dict[str, list[tuple[int, int]]]:
    """Model index pairs per category: every pair (Gueta et al.), or ``max_pairs`` drawn seeded.

    ``dataset``: two models of one dataset; ``family``: of two datasets of one family;
    ``general``: of two families (with no family tag, of two datasets). A cross pair is ordered
    so that its first model's (family, dataset) comes first. The draw for one category does not
    depend on which categories are asked for.
    """
    for category in categories:
        if category not in CATEGORIES:
            raise unknown_name_error("category", category, CATEGORIES)
    candidates: dict[str, list[tuple[int, int]]] = {c: [] for c in CATEGORIES}
    for a, b in itertools.combinations(range(len(study.models)), 2):
        candidates[_category(study, a, b)].append(_ordered(study, a, b))
    rng = np.random.default_rng(seed)
    chosen = {}
    for category, pairs in candidates.items():
        if max_pairs is not None:  # a seeded sample (drawn for every category, as before)
            picks = rng.permutation(len(pairs))[:max_pairs] if pairs else []
            pairs = [pairs[i] for i in sorted(picks)]
        if category in categories:
            chosen[category] = pairs
    return chosen


def level_targets(study: RegionStudy, category: str, a: int) -> list[str]:
    """The targets a path of ``category`` through model ``a`` is scored on (Gueta et al. §5.1):
    its dataset; every dataset of its family; every dataset of the zoo."""
    if category == "dataset":
        return [_group_of(study)[a]]
    if category == "family":
        return study.family_targets(_family_of(study)[a])
    return sorted(study.groups)


def path_targets(
    study: RegionStudy, a: int, b: int, targets: str = "level"
) -> list[tuple[str, tuple[int, int]]]:
    """(target, (start, end)) for every scoring of the pair ``a, b``.

    ``level``: each of :func:`level_targets`, from ``a`` to ``b``; ``own``: each model's own
    dataset, starting from that model (a pair of one dataset once).
    """
    if targets not in PATH_TARGETS:
        raise unknown_name_error("targets", targets, PATH_TARGETS)
    if targets == "level":
        return [(target, (a, b)) for target in level_targets(study, _category(study, a, b), a)]
    group = _group_of(study)
    if group[a] == group[b]:
        return [(group[a], (a, b))]
    return [(group[a], (a, b)), (group[b], (b, a))]


def scored_lines(
    study: RegionStudy,
    t: Sequence[float],
    max_pairs: int | None = None,
    targets: str = "level",
    categories: Sequence[str] = CATEGORIES,
) -> list[dict[str, Any]]:
    """The curve at ``t`` of every pair of :func:`model_pairs` on each of its targets."""
    t = np.asarray(t, dtype=np.float64)
    curves = []
    for category, pairs in model_pairs(study, max_pairs, study.seed, categories).items():
        for a, b in pairs:
            for target, (start, end) in path_targets(study, a, b, targets):
                values = study.evaluate(target, line_rows(len(study.anchors), start, end, t))
                curves.append(_curve(category, target, study, start, end, values))
    return curves


def interpolation_across_data(
    study: RegionStudy,
    t: Sequence[float] | None = None,
    max_pairs: int | None = None,
    targets: str = "level",
    categories: Sequence[str] = CATEGORIES,
) -> dict[str, Any]:
    """Curves of model pairs per category on their targets, with mean and std over pairs."""
    t = even_grid(5) if t is None else np.asarray(t, dtype=np.float64)
    curves = scored_lines(study, t, max_pairs, targets, categories)
    return {
        "t": t.tolist(),
        "targets": targets,
        "curves": curves,
        "summary": summarise(curves, per_pair=targets == "level"),
    }


def centroid_interpolation(
    study: RegionStudy,
    t: Sequence[float] | None = None,
    targets: str = "level",
    categories: Sequence[str] = CATEGORIES,
) -> dict[str, Any]:
    """Curves between the centroids of every two dataset groups (Gueta et al. App. E, Fig. 10),
    scored as a model pair of the same two groups is (:func:`path_targets`)."""
    t = even_grid(5) if t is None else np.asarray(t, dtype=np.float64)
    n = len(study.anchors)
    order = sorted(study.groups, key=lambda g: _rank(study, study.groups[g][0]))
    curves = []
    for g, h in itertools.combinations(order, 2):
        first, second = study.groups[g][0], study.groups[h][0]
        category = _category(study, first, second)
        if category not in categories:
            continue
        ends = {first: g, second: h}
        for target, (start, end) in path_targets(study, first, second, targets):
            c_start = centroid_over(study.groups[ends[start]], n)
            c_end = centroid_over(study.groups[ends[end]], n)
            rows = (1 - t)[:, None] * c_start[None, :] + t[:, None] * c_end[None, :]
            values = study.evaluate(target, rows)
            curves.append(
                {
                    "category": category,
                    "target": target,
                    "from": f"centroid({ends[start]})",
                    "to": f"centroid({ends[end]})",
                    **{m: v.tolist() for m, v in values.items()},
                }
            )
    per_pair = targets == "level"
    return {"t": t.tolist(), "curves": curves, "summary": summarise(curves, per_pair=per_pair)}


def summarise(curves: list[dict[str, Any]], per_pair: bool = True) -> dict[str, dict[str, Any]]:
    """Per category: mean and std over pairs of each pair's curve averaged over its targets
    (Gueta et al. Fig. 3); with ``per_pair=False``, over the curves themselves. ``by_target``
    holds the mean over pairs on each target (App. E)."""
    summary = {}
    for category in CATEGORIES:
        chosen = [c for c in curves if c["category"] == category]
        if not chosen:
            continue
        units: dict[Any, list[dict[str, Any]]] = {}
        for k, curve in enumerate(chosen):
            units.setdefault((curve["from"], curve["to"]) if per_pair else k, []).append(curve)
        entry: dict[str, Any] = {
            "n_pairs": len({frozenset((c["from"], c["to"])) for c in chosen}),
            "n_curves": len(chosen),  # (pair, target) curves
            "averaged_over": "pairs" if per_pair else "curves",
        }
        for metric in METRICS:
            means = [np.mean([c[metric] for c in unit], axis=0) for unit in units.values()]
            stack = np.array(means)
            entry[metric] = {"mean": stack.mean(axis=0).tolist(), "std": stack.std(axis=0).tolist()}
        entry["by_target"] = {
            target: {
                m: np.mean([c[m] for c in chosen if c["target"] == target], axis=0).tolist()
                for m in METRICS
            }
            for target in sorted({c["target"] for c in chosen})
        }
        summary[category] = entry
    return summary


def _group_of(study: RegionStudy) -> dict[int, str]:
    return {i: g for g, members in study.groups.items() for i in members}


def _family_of(study: RegionStudy) -> dict[int, str]:
    return {i: f for f, members in study.families.items() for i in members}


def _category(study: RegionStudy, a: int, b: int) -> str:
    group = _group_of(study)
    if group[a] == group[b]:
        return "dataset"
    family = _family_of(study)
    if family and family[a] == family[b]:
        return "family"
    return "general"


def _rank(study: RegionStudy, index: int) -> tuple[str, str]:
    return _family_of(study).get(index, ""), _group_of(study)[index]


def _ordered(study: RegionStudy, a: int, b: int) -> tuple[int, int]:
    """A pair with its first model's (family, dataset) first (one dataset: as given)."""
    return (b, a) if _rank(study, b) < _rank(study, a) else (a, b)


def _curve(category, target, study, start, end, values) -> dict[str, Any]:
    return {
        "category": category,
        "target": target,
        "from": study.models[start].name,
        "to": study.models[end].name,
        **{m: v.tolist() for m, v in values.items()},
    }
