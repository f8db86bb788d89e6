"""Points whose coefficients differ per parameter group (a learned per-layer mix).

Qin et al. (2022) learn one mixing coefficient per layer, module or matrix. Such a point is one
coefficient vector per group; everything else about it (writing, keys, the store) is as for an
ordinary point.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from weightscape.errors import WeightscapeError
from weightscape.models.space import GROUPINGS, group_of


@dataclass(frozen=True)
class GroupedPoint:
    """Coefficients over the anchors for each group of tensors under ``group_by``.

    >>> point = GroupedPoint.from_mapping("layer", {"layer.0": [0.2, 0.8], "head": [1, 0]})
    >>> point.for_tensor("bert.encoder.layer.0.output.dense.weight")
    (0.2, 0.8)
    """

    group_by: str
    coefficients: tuple[tuple[str, tuple[float, ...]], ...]

    @classmethod
    def from_mapping(cls, group_by: str, mapping: Mapping[str, Sequence[float]]) -> GroupedPoint:
        """Build from ``{group: coefficients}``; groups sorted so equal points are equal."""
        if group_by not in GROUPINGS:
            raise WeightscapeError(
                f"Unknown grouping '{group_by}'. Available: {', '.join(GROUPINGS)}."
            )
        return cls(
            group_by, tuple(sorted((g, tuple(float(c) for c in v)) for g, v in mapping.items()))
        )

    def for_tensor(self, name: str) -> tuple[float, ...]:
        """The coefficients of the group ``name`` belongs to."""
        group = group_of(name, self.group_by)
        for key, values in self.coefficients:
            if key == group:
                return values
        raise WeightscapeError(
            f"The grouped point has no coefficients for group '{group}' (tensor '{name}', "
            f"grouping '{self.group_by}'). Give coefficients for every group of the space."
        )
