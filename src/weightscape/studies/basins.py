"""Basins: cluster a grid's models and ask what the clusters predict.

Juneja et al. (2023) cluster finetuned models on the convexity-gap matrix of their in-domain
loss surface and find that a model's place between the cluster centroids predicts its
out-of-distribution accuracy (HANS) better than its epsilon-sharpness does. This study measures
each model on the diagnostic tasks (through the grid's results store), optionally its sharpness,
and relates both to the clusters; optionally it checks each cluster for epsilon-convexity
(random convex combinations of its models), and it draws Fig. 1: the models best and worst on
the first diagnostic, with the mean ID and diagnostic curves along their pairs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, NamedTuple

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
    margin: Literal["spectral", "weights"] = Field(
        "spectral",
        description="centroid margin ||w - c1|| - ||w - c2|| plotted and correlated first: "
        "spectral (in the spectral embedding of the affinity, as Juneja et al.'s code) or weights "
        "(between weight vectors and the clusters' weight means); both are reported",
    )
    k: int | None = Field(None, ge=2, description="clusters; default: chosen by the eigengap")
    delta: float | None = Field(
        None, gt=0, description="affinity length scale; default: the median distance"
    )
    diagnostic: tuple[str, ...] = repeated(
        "task each model is evaluated on whole (repeatable), e.g. "
        "hans_like_lexical_overlap_non_entailing",
        default=(),
    )
    sharpness_preset: Literal["quick", "juneja"] = Field(
        "quick",
        description="epsilon-sharpness settings: quick (eval mode, 128 examples, only with "
        "--sharpness-steps > 0) or juneja (Juneja et al.'s code: dropout on during the ascent, "
        "8192 updates of 4 summed batches of 32, 32768 examples, lr 8e-5, eps 1e-5); "
        "--sharpness-steps and --sharpness-examples override the preset",
    )
    sharpness_steps: int | None = Field(
        None,
        ge=0,
        description="epsilon-sharpness ascent steps per model on the --task subset (0: skip); "
        "default: the preset's (quick 0, juneja 8192)",
    )
    sharpness_examples: int | None = Field(
        None,
        ge=1,
        description="random examples of the task subset the sharpness ascent uses; default: the "
        "preset's (quick 128, juneja 32768)",
    )
    convexity_samples: int = Field(
        0,
        ge=0,
        description="epsilon-convexity check: random convex combinations (Dirichlet weights) of "
        "the models of each cluster of 3 or more, each compared with the weighted mean of its "
        "models' losses (0: only the largest convexity gap inside each cluster)",
    )
    convexity_seed: int = Field(0, description="seed of the convex combinations")
    top_bottom: int = Field(
        5,
        ge=0,
        description="Juneja et al.'s Fig. 1: the N models best and N worst on the first "
        "--diagnostic (N capped at half the zoo) and the mean ID and diagnostic curves along "
        "their pairs (0: skip)",
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
        """Each model once on each diagnostic, at most ``convexity_samples`` per cluster of 3
        or more, and the Fig. 1 pairs' interior points on the first diagnostic (for a grid of
        11 points); the sharpness ascent is not counted."""
        if models is None:
            return None
        group = min(self.top_bottom, models // 2) if self.diagnostic else 0
        pairs = group * (2 * group - 1)  # all pairs of the 2 * group models
        convexity = self.convexity_samples * (models // 3)
        return models * len(self.diagnostic) + convexity + pairs * 9

    def sharpness_settings(self):
        """The :class:`~weightscape.analyses.sharpness.SharpnessSettings` these fields give: the
        preset, with ``sharpness_steps`` and ``sharpness_examples`` where given."""
        from dataclasses import replace

        from weightscape.analyses.sharpness import SHARPNESS_PRESETS

        preset = SHARPNESS_PRESETS[self.sharpness_preset]
        given = {"steps": self.sharpness_steps, "examples": self.sharpness_examples}
        return replace(preset, **{k: v for k, v in given.items() if v is not None})


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
    from weightscape.analyses.convexity import epsilon_convexity
    from weightscape.analyses.model_metrics import evaluate_models, spec_for
    from weightscape.data import load_task
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
    diagnostics = {}  # task name -> the engine spec on it
    for name in config.diagnostic:
        task = load_task(name)
        diagnostics[task.name] = spec_for(spec, task, config.label_map)
        values = evaluate_models(diagnostics[task.name], store=store, progress=config.progress)
        metrics[f"{task.name}_accuracy"] = values["accuracy"]
    sharpness = config.sharpness_settings()
    settings = {}
    if sharpness.steps > 0:
        metrics["sharpness"], settings["sharpness"] = _sharpness(config, spec, sharpness)
    analysis = analyse_basins(
        grid,
        list(spec.anchors),
        matrix=config.matrix,
        k=config.k,
        delta=config.delta,
        space=spec.space,
        model_metrics=metrics,
        margin=config.margin,
    )
    analysis.settings.update(settings)
    if "loss_convexity_gap" in grid.matrices:
        analysis.convexity = epsilon_convexity(
            spec,
            analysis.labels,
            grid.matrices["loss_convexity_gap"],
            samples=config.convexity_samples,
            seed=config.convexity_seed,
            store=store,
            progress=config.progress,
        )
    if config.top_bottom > 0 and diagnostics:
        first = next(iter(diagnostics))
        analysis.groups = _top_bottom(config, grid, analysis, first, diagnostics[first], store)
    return Basins(analysis, grid)


def _sharpness(config: Config, spec, settings) -> tuple[Any, dict[str, Any]]:
    """Each model's epsilon-sharpness under ``settings``, and the record of how it was made."""
    from dataclasses import asdict, replace

    from weightscape.analyses.model_metrics import models_sharpness, spec_for
    from weightscape.data import subset

    sharp = spec_for(spec, subset(spec.task, settings.examples, seed=config.subset_seed))
    if settings.batch_size is not None:
        batch = sharp.settings.model_copy(update={"batch_size": settings.batch_size})
        sharp = replace(sharp, settings=batch)
    values = models_sharpness(
        sharp,
        steps=settings.steps,
        eps=settings.eps,
        lr=settings.lr,
        accumulation=settings.accumulation,
        mode=settings.mode,
        accumulate=settings.accumulate,
        progress=config.progress,
    )
    record = {
        "preset": config.sharpness_preset,
        **asdict(settings),
        "batch_size": sharp.settings.batch_size,
        "examples_used": len(sharp.task),
    }
    return values, record


def _top_bottom(config: Config, grid, analysis, task: str, spec, store) -> dict[str, Any]:
    """Juneja et al.'s Fig. 1: the groups by the first diagnostic, and their pairs' curves on
    the grid's task (from the grid) and on that diagnostic (walked here, through the store)."""
    from weightscape.analyses.basins import extreme_group_curves, extreme_groups
    from weightscape.analyses.connectivity import connectivity_grid
    from weightscape.analyses.model_metrics import spec_for

    by = f"{task}_accuracy"
    top, bottom = extreme_groups(analysis.model_metrics[by], config.top_bottom)
    members = [spec.anchors[i] for i in sorted({*top, *bottom})]
    walked = connectivity_grid(
        spec_for(spec, spec.task, config.label_map, anchors=members),
        points=len(grid.ts),
        store=store,
        progress=config.progress,
    )
    return extreme_group_curves(
        grid, analysis.model_metrics[by], by, k=config.top_bottom, diagnostics={task: walked}
    )


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
