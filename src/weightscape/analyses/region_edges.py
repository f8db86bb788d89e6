"""Where a region ends: extrapolating past its models, and moving away from its centroid.

Gueta et al. (2023) find that extrapolating along the line through two models of one dataset
(log steps, §6) soon falls off a cliff, and (App. F) that moving from a group's centroid by
``r`` times the models' mean distance to it stays good toward the origin but degrades in random
directions once ``r`` exceeds about 1. Here the origin is the pretrained model (the origin of
task-vector space) and a random direction is one drawn about it with Xavier's variances
(:mod:`.region_anchors`). All curves use the generalised loss on the group's own dataset.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from weightscape.analyses.regions import RegionStudy
from weightscape.geometry.grids import log_extrapolation_grid
from weightscape.geometry.regions import (
    distances_to_centroid,
    mean_distance_to_centroid,
    move_along_direction,
    move_toward_point,
)

__all__ = ["centroid_moves", "extrapolation_curves", "line_rows"]

RADII = (0.0, 0.5, 1.0, 2.0, 4.0, 8.0)


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


def extrapolation_curves(
    study: RegionStudy, steps: int = 6, reach: float = 32.0
) -> list[dict[str, Any]]:
    """Per dataset group, the line through its first two models, from ``1 - reach`` to
    ``reach`` in log steps (both ends and the models included), on the group's dataset."""
    forward, backward = log_extrapolation_grid(steps, reach)
    t = np.unique(np.concatenate([backward, [0.5], forward]))
    curves = []
    for group, members in study.groups.items():
        if len(members) < 2:
            continue
        a, b = members[:2]
        values = study.evaluate(group, line_rows(len(study.anchors), a, b, t))
        curves.append(
            {
                "group": group,
                "pair": [study.models[a].name, study.models[b].name],
                "t": t.tolist(),
                **{m: v.tolist() for m, v in values.items()},
            }
        )
    return curves


def centroid_moves(study: RegionStudy, radii: Sequence[float] = RADII) -> list[dict[str, Any]]:
    """Per dataset group, points moved from its centroid toward the pretrained model and along
    each random direction, ``r`` mean model-to-centroid distances away, on the group's dataset.

    Each record also holds the group's own models' metrics and their radii (distance to the
    centroid in the same unit), to compare generated points with finetuned ones.
    """
    gram = study.gram()
    radii = np.asarray(radii, dtype=np.float64)
    records = []
    for group, members in study.groups.items():
        if len(members) < 2:
            continue
        spread = mean_distance_to_centroid(gram, members)
        moves = {"pretrained": move_toward_point(gram, members, study.pretrained_index, radii)}
        for k, index in enumerate(study.random_indices):
            moves[f"random{k}"] = move_along_direction(
                gram, members, index, study.pretrained_index, radii
            )
        own = study.evaluate(group, study.one_hot(members))
        record: dict[str, Any] = {
            "group": group,
            "radii": radii.tolist(),
            "spread": spread,
            "models": {m: v.tolist() for m, v in own.items()},
            "model_radii": (distances_to_centroid(gram, members) / spread).tolist(),
            "moves": {},
        }
        for name, rows in moves.items():
            values = study.evaluate(group, rows)
            record["moves"][name] = {m: v.tolist() for m, v in values.items()}
        records.append(record)
    return records
