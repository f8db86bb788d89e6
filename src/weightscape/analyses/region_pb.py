"""In, In' and Ex: is a region's interior as good as its models, and better than the rest?

Gueta et al. (2023, §5.2) at three granularities, all with the generalised loss:

- **dataset**: *In* are the models finetuned on one dataset, *Ex* the models of every other
  dataset; all are evaluated on that dataset;
- **family**: *In* are the models of one task family, *Ex* those of other families; a model's
  loss is its mean over the family's datasets;
- **general**: *In* are all models, *Ex* the pretrained model moved in random directions by the
  models' mean task-vector norm; a model's loss is its mean over every dataset.

*In'* are points drawn uniformly from the convex hull of *In* (Dirichlet(1) weights), as many
as *In* has models ("we estimate it by sampling |In| models uniformly from the region they
convey") unless a fixed ``hull_size`` is asked for. PB
(:func:`weightscape.metrics.regions.pb`) compares In with Ex, In' with Ex and In' with In:
``E 1{l(In_i) <= l(Ex_j)}``, a tie counting for In, as the paper writes it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from weightscape.analyses.regions import RegionStudy
from weightscape.geometry.regions import hull_samples
from weightscape.metrics.regions import loss_distribution, pb
from weightscape.validation import check_int

__all__ = ["compare_groups", "region_comparisons"]

LEVELS = ("dataset", "family", "general")


def region_comparisons(
    study: RegionStudy, hull_size: int | None = None, levels: Sequence[str] = LEVELS
) -> list[dict[str, Any]]:
    """PB and loss distributions of every group at every level (one row per group).

    Args:
        study: The region study.
        hull_size: In' samples per group; None: as many as the group has models (|In|, the
            paper's choice).
        levels: Which of ``dataset``, ``family``, ``general`` to compare.
    """
    if hull_size is not None:
        hull_size = check_int(hull_size, "hull_size", "region_comparisons", 1)
    rows = []
    if "dataset" in levels:
        for group, members in study.groups.items():
            others = [i for i in range(len(study.models)) if i not in members]
            rows.append(
                compare_groups(study, "dataset", group, members, others, [group], hull_size)
            )
    if "family" in levels and study.families and len(study.families) > 1:
        for family, members in study.families.items():
            others = [i for i in range(len(study.models)) if i not in members]
            targets = study.family_targets(family)
            rows.append(
                compare_groups(study, "family", family, members, others, targets, hull_size)
            )
    if "general" in levels and study.random_directions > 0:
        members = list(range(len(study.models)))
        rows.append(
            compare_groups(
                study,
                "general",
                "all",
                members,
                study.random_indices,
                sorted(study.groups),
                hull_size,
            )
        )
    return rows


def compare_groups(
    study: RegionStudy,
    level: str,
    group: str,
    members: Sequence[int],
    exterior: Sequence[int],
    targets: Sequence[str],
    hull_size: int | None = None,
) -> dict[str, Any]:
    """PB of In vs Ex, In' vs Ex, In' vs In for one group, losses averaged over ``targets``
    (``hull_size`` None: |In| hull samples)."""
    inside = study.one_hot(members)
    outside = study.one_hot(exterior)
    size = len(members) if hull_size is None else hull_size
    hull = (
        study.embed(members, hull_samples(len(members), size, seed=_seed(study, members)))
        if len(members) > 1
        else inside
    )
    measured = study.evaluate_on(targets, np.concatenate([inside, hull, outside]))
    bounds = np.cumsum([0, len(inside), len(hull), len(outside)])
    parts = {name: slice(bounds[k], bounds[k + 1]) for k, name in enumerate(("In", "In'", "Ex"))}
    losses = {name: measured["loss"][:, part].mean(axis=0) for name, part in parts.items()}
    accuracy = {name: measured["accuracy"][:, part].mean(axis=0) for name, part in parts.items()}
    return {
        "level": level,
        "group": group,
        "targets": list(targets),
        "n_in": len(members),
        "n_hull": len(hull),
        "n_ex": len(exterior),
        "pb_in_ex": pb(losses["In"], losses["Ex"]),
        "pb_hull_ex": pb(losses["In'"], losses["Ex"]),
        "pb_hull_in": pb(losses["In'"], losses["In"]),
        "loss": {name: loss_distribution(values) for name, values in losses.items()},
        "accuracy": {name: loss_distribution(values) for name, values in accuracy.items()},
        "losses": {name: values.tolist() for name, values in losses.items()},
    }


def _seed(study: RegionStudy, members: Sequence[int]) -> int:
    """A hull seed fixed by the study's seed and the member set, so one set of models gets the
    same samples at every level (and its points are found in the store again)."""
    names = ",".join(sorted(study.models[i].name for i in members))
    digest = hashlib.sha256(f"{study.seed}:{names}".encode()).digest()
    return int.from_bytes(digest[:4], "little")
