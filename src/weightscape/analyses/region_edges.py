"""Where a region ends: extrapolating past its models, and moving away from its centroid.

Gueta et al. (2023, §6.1, App. G) extrapolate along the lines of the interpolation study
("we reproduce the interpolations settings of §5.1") with 10 logarithmic steps from 1 to 32 past
one model and from 0 to -31 past the other, at all three levels: :func:`extrapolation_curves`
scores the pairs and targets of :func:`~.region_paths.scored_lines` on that grid
(``pairs="first"``: only the line through the first two models of each dataset, on it, a
cheaper look).

App. F moves from a region's centroid ``c`` by ``r`` times the models' mean distance to it,
"towards the origin of the axis, or towards random directions" (:func:`centroid_moves`):
``origin`` is the zero vector of weight space (theta -> 0, all mixed tensors scaled down
together), ``pretrained`` the pretrained model (the origin of task-vector space), and
``random<k>`` a random direction drawn about the pretrained model with Xavier's variances
(:mod:`.region_anchors`). At the dataset level each dataset's centroid is scored on its dataset;
at the general level (:func:`general_moves`) the centroid of every model is scored on each
dataset next to that dataset's own (*source*) models and the rest (*non-source*), averaged over
the datasets (App. F, Fig. 11b).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from weightscape.analyses.region_paths import (
    CATEGORIES,
    line_rows,
    scored_lines,
    summarise,
)
from weightscape.analyses.regions import METRICS, RegionStudy
from weightscape.errors import unknown_name_error
from weightscape.geometry.grids import log_extrapolation_grid
from weightscape.geometry.regions import (
    distances_to_centroid,
    mean_distance_to_centroid,
    move_along_direction,
    move_toward_point,
    move_toward_zero,
)

__all__ = [
    "DIRECTIONS",
    "EXTRAPOLATION_PAIRS",
    "centroid_moves",
    "extrapolation_curves",
    "extrapolation_t",
    "general_moves",
    "line_rows",
    "move_rows",
]

RADII = (0.0, 0.5, 1.0, 2.0, 4.0, 8.0)
DIRECTIONS = ("origin", "pretrained", "random")
EXTRAPOLATION_PAIRS = ("paths", "first")


def extrapolation_t(steps: int = 10, reach: float = 32.0) -> np.ndarray:
    """The t values of an extrapolated line: ``steps`` log steps past each model, both models
    and their midpoint.

    >>> extrapolation_t(3, 4.0).tolist()
    [-3.0, -1.0, 0.0, 0.5, 1.0, 2.0, 4.0]
    """
    forward, backward = log_extrapolation_grid(steps, reach)
    return np.unique(np.concatenate([backward, [0.5], forward]))


def extrapolation_curves(
    study: RegionStudy,
    steps: int = 10,
    reach: float = 32.0,
    pairs: str = "paths",
    max_pairs: int | None = None,
    targets: str = "level",
    categories: Sequence[str] = CATEGORIES,
) -> dict[str, Any]:
    """Lines past both models, on :func:`extrapolation_t`.

    Args:
        study: The region study.
        steps: Log steps past each model (Gueta et al.: 10).
        reach: The largest t (Gueta et al.: 32; the smallest is ``1 - reach``).
        pairs: ``paths``: the interpolation study's pairs and targets (``max_pairs``,
            ``targets``, ``categories`` as :func:`~.region_paths.interpolation_across_data`);
            ``first``: the first two models of each dataset, on that dataset.

    Returns:
        ``t``, the curves (category, target, from, to, one value per t of each metric) and their
        :func:`~.region_paths.summarise` per category.
    """
    if pairs not in EXTRAPOLATION_PAIRS:
        raise unknown_name_error("pairs", pairs, EXTRAPOLATION_PAIRS)
    t = extrapolation_t(steps, reach)
    if pairs == "paths":
        curves = scored_lines(study, t, max_pairs, targets, categories)
    else:
        curves = []
        for group, members in study.groups.items():
            if len(members) < 2:
                continue
            a, b = members[:2]
            values = study.evaluate(group, line_rows(len(study.anchors), a, b, t))
            curves.append(
                {
                    "category": "dataset",
                    "target": group,
                    "from": study.models[a].name,
                    "to": study.models[b].name,
                    **{m: v.tolist() for m, v in values.items()},
                }
            )
    per_pair = pairs == "paths" and targets == "level"
    return {
        "t": t.tolist(),
        "pairs": pairs,
        "targets": targets if pairs == "paths" else "own",
        "curves": curves,
        "summary": summarise(curves, per_pair=per_pair),
    }


def move_rows(
    study: RegionStudy,
    members: Sequence[int],
    radii: Sequence[float],
    toward: Sequence[str] = DIRECTIONS,
) -> dict[str, np.ndarray]:
    """Direction name -> rows (over every anchor) moved from the centroid of ``members``.

    ``origin``: toward the zero vector (from the raw Gram matrix); ``pretrained``: toward the
    pretrained anchor; ``random``: along each random direction (``random0``, ...).
    """
    for direction in toward:
        if direction not in DIRECTIONS:
            raise unknown_name_error("direction", direction, DIRECTIONS)
    radii = np.asarray(radii, dtype=np.float64)
    gram = study.gram()
    moves: dict[str, np.ndarray] = {}
    if "origin" in toward:
        rows = move_toward_zero(study.raw_gram(), members, radii)  # over the models only
        moves["origin"] = study.embed(range(len(study.models)), rows)
    if "pretrained" in toward:
        moves["pretrained"] = move_toward_point(gram, members, study.pretrained_index, radii)
    if "random" in toward:
        for k, index in enumerate(study.random_indices):
            moves[f"random{k}"] = move_along_direction(
                gram, members, index, study.pretrained_index, radii
            )
    return moves


def centroid_moves(
    study: RegionStudy, radii: Sequence[float] = RADII, toward: Sequence[str] = DIRECTIONS
) -> list[dict[str, Any]]:
    """Per dataset group, points moved from its centroid (:func:`move_rows`), ``r`` mean
    model-to-centroid distances away, on the group's dataset (Gueta et al. App. F, Fig. 11a).

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
        own = study.evaluate(group, study.one_hot(members))
        record: dict[str, Any] = {
            "group": group,
            "radii": radii.tolist(),
            "spread": spread,
            "models": {m: v.tolist() for m, v in own.items()},
            "model_radii": (distances_to_centroid(gram, members) / spread).tolist(),
            "moves": {},
        }
        for name, rows in move_rows(study, members, radii, toward).items():
            values = study.evaluate(group, rows)
            record["moves"][name] = {m: v.tolist() for m, v in values.items()}
        records.append(record)
    return records


def general_moves(
    study: RegionStudy, radii: Sequence[float] = RADII, toward: Sequence[str] = DIRECTIONS
) -> dict[str, Any]:
    """Appendix F at the general level: moves from the centroid of every model, against the
    source and non-source models, on each dataset and averaged over the datasets.

    On a dataset, the *source* models are those finetuned on it and the *non-source* models all
    the others (Gueta et al. App. F, Fig. 11b). Per dataset, each kind's value is its mean over
    its models (random directions: over the directions, each also kept by name); ``mean`` and
    ``std`` are over the datasets.

    Returns:
        ``radii``, ``spread``, ``targets``, ``per_target`` (target -> kind -> metric -> values)
        and ``summary`` (kind -> metric -> mean and std over targets; one value for source and
        non-source, one per radius for a move).
    """
    gram = study.gram()
    radii = np.asarray(radii, dtype=np.float64)
    members = list(range(len(study.models)))
    moves = move_rows(study, members, radii, toward)
    targets = sorted(study.groups)
    per_target: dict[str, dict[str, Any]] = {}
    for target in targets:
        own = study.evaluate(target, study.one_hot(members))
        source = study.groups[target]
        others = [i for i in members if i not in source]
        kinds: dict[str, Any] = {
            "source": {m: float(np.mean(own[m][source])) for m in METRICS},
        }
        if others:
            kinds["non_source"] = {m: float(np.mean(own[m][others])) for m in METRICS}
        measured = {name: study.evaluate(target, rows) for name, rows in moves.items()}
        for name, values in measured.items():
            kinds[name] = {m: v.tolist() for m, v in values.items()}
        randoms = [values for name, values in measured.items() if name.startswith("random")]
        if randoms:
            kinds["random"] = {
                m: np.mean([v[m] for v in randoms], axis=0).tolist() for m in METRICS
            }
        per_target[target] = kinds
    summary = {
        kind: {
            m: {
                "mean": np.mean([per_target[t][kind][m] for t in targets], axis=0).tolist(),
                "std": np.std([per_target[t][kind][m] for t in targets], axis=0).tolist(),
            }
            for m in METRICS
        }
        for kind in per_target[targets[0]]
        if all(kind in per_target[t] for t in targets)
    }
    return {
        "group": "all",
        "radii": radii.tolist(),
        "spread": mean_distance_to_centroid(gram, members),
        "targets": targets,
        "per_target": per_target,
        "summary": summary,
    }
