"""The loss surface on the plane through three models (Garipov et al. 2018; Juneja et al. 2023).

Every grid node is a coefficient row over the three anchors (:mod:`weightscape.analyses.plane`),
evaluated through the results store, so an interrupted plane resumes and a repeated one is free.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, field_validator

from weightscape.studies.common import (
    AnchorFields,
    EvalFields,
    ProbeFields,
    SpaceFields,
    Split,
    engine_spec,
    positional,
)


class Config(AnchorFields, ProbeFields, EvalFields, SpaceFields):
    """A grid on the plane through three models."""

    anchors: tuple[str, ...] = positional(
        "exactly 3 checkpoint paths (or names in --zoo): theta_1 (the origin), theta_2 (along "
        "the first axis), theta_3"
    )
    split: Split = Field("validation", description="which seeded 8:1:1 split to use")
    resolution: tuple[Annotated[int, Field(ge=2)], ...] = Field(
        (21, 21),
        min_length=1,
        max_length=2,
        description="grid nodes along each axis: N, or N,M for N along u and M along v",
    )
    margin: float = Field(
        0.2,
        ge=0,
        description="how far the grid reaches past the models, as a fraction of their box",
    )
    out: Path = Field(Path("weightscape-out/plane"), description="output folder")

    @field_validator("anchors")
    @classmethod
    def _three_anchors(cls, anchors: tuple[str, ...]) -> tuple[str, ...]:
        if len(anchors) != 3:
            raise ValueError(
                f"plane needs exactly 3 models (theta_1, theta_2, theta_3), not {len(anchors)}"
            )
        return anchors

    def grid_shape(self) -> tuple[int, int]:
        """``(n, m)``: nodes along u and along v (one value gives a square grid)."""
        return (self.resolution[0], self.resolution[-1])

    def estimated_points(self, models: int | None = None) -> int:
        """The grid's nodes and the three models."""
        n, m = self.grid_shape()
        return n * m + 3


def run(config: Config) -> Any:
    """Evaluate the grid and the three models; every point goes through the results store.

    Returns:
        The :class:`~weightscape.analyses.plane.PlaneResult`.
    """
    from weightscape.analyses.plane import evaluate_plane

    return evaluate_plane(
        engine_spec(config),
        resolution=config.grid_shape(),
        margin=config.margin,
        store=config.results_store(config.out),
        progress=config.progress,
    )
