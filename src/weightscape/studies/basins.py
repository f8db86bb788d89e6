"""Basins: cluster a grid's models and ask what the clusters predict.

Juneja et al. (2023) cluster finetuned models on the convexity-gap matrix of their in-domain
loss surface and find that a model's place between the cluster centroids predicts its
out-of-distribution accuracy (HANS) better than its epsilon-sharpness does. This study measures
each model on the diagnostic tasks (through the grid's results store), optionally its sharpness,
and relates both to the clusters.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

from pydantic import Field, model_validator

from weightscape.studies.common import EvalFields, Split, TaskFields, positional, repeated


class Config(TaskFields, EvalFields):
    """A grid folder, the diagnostics each model is measured on, and how it is clustered."""

    grid: Path = positional("folder written by `weightscape grid`")
    zoo: Path | None = Field(
        None, description="zoo manifest; default: the checkpoint paths recorded in the grid"
    )
    tokenizer: Path | None = Field(None, description="tokenizer folder; default: the zoo's")
    matrix: str = Field("loss_convexity_gap", description="grid matrix to cluster on")
    k: int | None = Field(None, ge=2, description="clusters; default: chosen by the eigengap")
    delta: float | None = Field(
        None, gt=0, description="affinity length scale; default: the median distance"
    )
    diagnostic: tuple[str, ...] = repeated(
        "task each model is evaluated on whole (repeatable), e.g. "
        "hans_like_lexical_overlap_non_entailing",
        default=(),
    )
    sharpness_steps: int = Field(
        0,
        ge=0,
        description="epsilon-sharpness ascent steps per model on the --task subset (0: skip; "
        "Juneja et al. use 8192)",
    )
    sharpness_examples: int = Field(
        128, ge=1, description="random examples of the task subset the sharpness ascent uses"
    )
    split: Split = Field("validation", description="which seeded 8:1:1 split to use")
    store: Path | None = Field(
        None, description="results store (SQLite); default: GRID/results.sqlite"
    )
    out: Path | None = Field(None, description="output folder; default: GRID/basins")

    @model_validator(mode="before")
    @classmethod
    def _out_under_grid(cls, data: Any) -> Any:
        """``out`` defaults to ``GRID/basins``, next to the grid it reads."""
        if isinstance(data, dict) and data.get("out") is None:
            grid = data.get("grid")
            if isinstance(grid, str | Path):
                data = {**data, "out": Path(grid) / "basins"}
        return data

    def estimated_points(self, models: int | None = None) -> int | None:
        """Each model once on each diagnostic (the sharpness ascent is not counted)."""
        return None if models is None else models * len(self.diagnostic)


class Basins(NamedTuple):
    """What ``run`` returns: the clusters and the grid they were read from."""

    analysis: Any  # weightscape.analyses.basins.BasinAnalysis
    grid: Any  # weightscape.analyses.connectivity.ConnectivityGrid


def run(config: Config) -> Basins:
    """Measure the diagnostics (and sharpness) per model, then cluster the grid.

    Returns:
        The :class:`~weightscape.analyses.basins.BasinAnalysis` and the grid.

    Raises:
        WeightscapeError: When the grid has no ``matrix``, or its models cannot be found.
    """
    import numpy as np

    from weightscape.analyses.basins import analyse_basins
    from weightscape.analyses.connectivity import ConnectivityGrid
    from weightscape.analyses.model_metrics import evaluate_models, models_sharpness, spec_for
    from weightscape.data import load_task, subset
    from weightscape.errors import unknown_name_error
    from weightscape.evaluation.engine import EngineSpec

    grid = ConnectivityGrid.load(config.grid)
    if config.matrix not in grid.matrices:  # checked before any model is evaluated
        raise unknown_name_error("grid matrix (--matrix)", config.matrix, grid.matrices)
    zoo = _grid_zoo(config, grid)
    spec = EngineSpec(
        tuple(zoo),
        config.load_task(),
        settings=config.eval_settings(),
        device=config.device,
        tokenizer=config.tokenizer or zoo.tokenizer,
    )
    store = config.results_store(config.grid)
    metrics: dict[str, np.ndarray] = {}
    for name in config.diagnostic:
        task = load_task(name)
        values = evaluate_models(
            spec_for(spec, task, config.label_map), store=store, progress=config.progress
        )
        metrics[f"{task.name}_accuracy"] = values["accuracy"]
    if config.sharpness_steps > 0:
        sharpness_task = subset(spec.task, config.sharpness_examples, seed=config.subset_seed)
        metrics["sharpness"] = models_sharpness(
            spec_for(spec, sharpness_task), steps=config.sharpness_steps, progress=config.progress
        )
    analysis = analyse_basins(
        grid,
        list(spec.anchors),
        matrix=config.matrix,
        k=config.k,
        delta=config.delta,
        space=spec.space,
        model_metrics=metrics,
    )
    return Basins(analysis, grid)


def _grid_zoo(config: Config, grid):
    """The grid's models: by name from ``zoo``, else from the paths the grid recorded."""
    from weightscape.errors import WeightscapeError
    from weightscape.models.checkpoint import Checkpoint
    from weightscape.models.zoo import Zoo

    if config.zoo is not None:
        zoo = Zoo.from_manifest(config.zoo)
        models = [zoo[name] for name in grid.names]
        return Zoo(models, base=zoo.base, tokenizer=zoo.tokenizer, root=zoo.root)
    if not grid.paths:
        raise WeightscapeError(
            f"The grid in '{config.grid}' records no checkpoint paths; give --zoo."
        )
    return Zoo(
        [
            Checkpoint.from_path(p, name=n, tags=t)
            for p, n, t in zip(grid.paths, grid.names, grid.tags, strict=True)
        ]
    )
