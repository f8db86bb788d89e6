"""Basin trajectories: which basin each training run is in, at every step it saved.

Juneja et al. (2023) ask when in training a run commits to its basin. The runs of a zoo that
saved the same steps (``weightscape finetune --save-steps``) get a connectivity grid per step
(through the results store), each clustered and renamed after the final step's clusters.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator

from weightscape.studies.common import EvalFields, SpaceFields, Split, TaskFields


class Config(TaskFields, EvalFields, SpaceFields):
    """A zoo of runs with saved steps, and how each step's grid is walked and clustered."""

    zoo: Path = Field(
        description="zoo manifest whose runs saved the same steps (finetune --save-steps)"
    )
    tokenizer: Path | None = Field(None, description="tokenizer folder; default: the zoo's")
    points: int = Field(11, ge=2, le=100_000, description="points per path, both ends included")
    matrix: str = Field("loss_convexity_gap", description="grid matrix to cluster on")
    k: int = Field(2, ge=2, description="clusters per step")
    split: Split = Field("validation", description="which seeded 8:1:1 split to use")
    out: Path = Field(Path("weightscape-out/trajectories"), description="output folder")

    @field_validator("matrix")
    @classmethod
    def _known_matrix(cls, matrix: str) -> str:
        from weightscape.errors import unknown_name_error
        from weightscape.metrics import grid_matrices

        if matrix not in grid_matrices():
            error = unknown_name_error("grid matrix", matrix, grid_matrices())
            raise ValueError(str(error).removesuffix("."))  # the CLI adds the full stop
        return matrix


def run(config: Config):
    """Build and cluster the runs' grid at every shared step; save each grid into
    ``config.out/grid-step-K`` (readable by ``weightscape basins``).

    Returns:
        The :class:`~weightscape.analyses.trajectories.BasinTrajectory`.

    Raises:
        WeightscapeError: When the zoo's runs share no saved step.
    """
    from weightscape.analyses.trajectories import basin_trajectories
    from weightscape.evaluation.engine import EngineSpec
    from weightscape.models.zoo import Zoo

    zoo = Zoo.from_manifest(config.zoo)
    spec = EngineSpec(
        tuple(zoo)[:1],
        config.load_task(),
        space=config.parameter_space(),
        settings=config.eval_settings(),
        device=config.device,
        tokenizer=config.tokenizer or zoo.tokenizer,
    )
    trajectory = basin_trajectories(
        list(zoo),
        spec,
        points=config.points,
        matrix=config.matrix,
        k=config.k,
        store=config.results_store(config.out),
        progress=config.progress,
    )
    for step, grid in trajectory.grids.items():
        grid.save(config.out / f"grid-step-{step}")
    return trajectory
