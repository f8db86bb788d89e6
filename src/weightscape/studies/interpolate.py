"""The single path: evaluate points on a line (or curve) between checkpoints.

Qin et al. (2022) use 26 points on the line, Juneja et al. (2023) 10-11 on 512 examples, Gueta
et al. (2023) extrapolate with log steps past the endpoints (``extrapolate``).

An anchor may be the bare pretrained model (a ``BertModel`` folder, no task head) that the
others were finetuned from: it is read under the classifier's tensor names and takes the
classifier's head (:mod:`weightscape.models.aliases`), so on ``BASE FT`` t = 1 is the
classifier exactly, t = 0 is the base encoder under the classifier's head, and ``extrapolate``
walks the task-vector line (WiSE-FT; task-vector scaling).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator, model_validator

from weightscape.studies.common import (
    AnchorFields,
    EvalFields,
    ProbeFields,
    SpaceFields,
    engine_spec,
    positional,
)


class Config(AnchorFields, ProbeFields, EvalFields, SpaceFields):
    """A walk along one path between anchors."""

    anchors: tuple[str, ...] = positional(
        "checkpoint paths (or names in --zoo): 2 for a line, more for bezier/polychain. One may "
        "be the bare pretrained model the others were finetuned from (no task head, e.g. "
        "MiniLM's folder): it takes the classifier's head, so `interpolate BASE FT "
        "--extrapolate` walks the task vector (t=1 is the classifier exactly, t=0 the base "
        "encoder under the classifier's head)"
    )
    path: str = Field("linear", description="path type: linear, bezier, polychain")
    points: int | None = Field(
        None,
        ge=2,
        le=100_000,
        description="evenly spaced points over [0, 1], both ends included (11 when neither --t "
        "nor --extrapolate is given)",
    )
    t: tuple[float, ...] | None = Field(
        None, min_length=2, description="explicit t values, e.g. -0.5,0,0.5,1,1.5"
    )
    extrapolate: bool = Field(
        False,
        description="Gueta et al.'s grid: 10 log steps 0..-31 and 1..32 around the 11-point line",
    )
    adaptive: bool = Field(
        False,
        description="adaptive barrier refinement: 6 points (t = 0, 0.2, ... 1), then points of "
        "the dense grid (--points, default 26) only where a barrier or convexity gap could hide, "
        "at most 40% of them; stored points are shared with a dense walk",
    )
    out: Path = Field(Path("weightscape-out/interpolate"), description="output folder")

    @field_validator("anchors")
    @classmethod
    def _two_anchors(cls, anchors: tuple[str, ...]) -> tuple[str, ...]:
        if len(anchors) < 2:
            raise ValueError(f"a path needs at least 2 anchors (checkpoints), got {len(anchors)}")
        return anchors

    @model_validator(mode="after")
    def _one_grid(self) -> Config:
        given = [
            flag
            for flag, on in (
                ("--points", self.points is not None),
                ("--t", self.t is not None),
                ("--extrapolate", self.extrapolate),
            )
            if on
        ]
        if len(given) > 1:
            raise ValueError(f"give one of --points, --t, --extrapolate, not {' and '.join(given)}")
        if self.adaptive and (self.t is not None or self.extrapolate):
            raise ValueError(
                "--adaptive refines a grid over [0, 1]: give --points (the dense grid, 26 by "
                "default), not --t or --extrapolate"
            )
        if self.adaptive:
            self.refine_settings()  # a dense grid the coarse one nests in, or a clear error
        from weightscape.geometry.paths import PATHS

        if self.path not in PATHS:
            from weightscape.errors import unknown_name_error

            raise ValueError(f"--path: {unknown_name_error('path', self.path, PATHS)}")
        return self

    def t_values(self):
        """The t values the walk evaluates."""
        import numpy as np

        from weightscape.geometry import even_grid, log_extrapolation_grid

        if self.t is not None:
            return np.array(self.t, dtype=np.float64)
        if self.extrapolate:
            forward, backward = log_extrapolation_grid()
            return np.concatenate([backward[::-1][:-1], even_grid(11), forward[1:]])
        return even_grid(self.points or 11)

    def refine_settings(self):
        """The adaptive walk's settings: the dense grid of --points (26 by default)."""
        from weightscape.errors import WeightscapeError
        from weightscape.geometry.refine import RefineSettings

        lattice = self.points or 26
        try:
            return RefineSettings(lattice=lattice)
        except WeightscapeError:
            raise ValueError(
                f"--adaptive starts from 6 points (t = 0, 0.2, ... 1) and refines on the dense "
                f"grid of --points, so --points - 1 must be a multiple of 5 (11, 21, 26, 51, "
                f"...). Got {lattice}."
            ) from None

    def estimated_points(self, models: int | None = None) -> int:
        """Points the walk evaluates (endpoints included); at most, for an adaptive walk."""
        if self.adaptive:
            return self.refine_settings().budget
        return len(self.t_values())


def run(config: Config):
    """Walk the path (or refine it adaptively, with ``adaptive``); every point goes through the
    results store in ``config.out``.

    Returns:
        The :class:`~weightscape.analyses.interpolation.PathWalk`.
    """
    from weightscape.analyses.interpolation import walk_path, walk_path_adaptive

    if config.adaptive:
        return walk_path_adaptive(
            engine_spec(config).build(),
            config.refine_settings(),
            path=config.path,
            store=config.results_store(config.out),
            progress=config.progress,
        )
    return walk_path(
        engine_spec(config),  # built only if a point is not in the store
        config.t_values(),
        path=config.path,
        store=config.results_store(config.out),
        progress=config.progress,
    )
