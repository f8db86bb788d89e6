"""Regions of a zoo by the generalised loss (Gueta et al. 2023).

PB of In vs Ex, In' vs Ex and In' vs In per dataset, per task family and in general; the edges
of the regions (extrapolation, moves from the centroids toward theta = 0, the pretrained model
and random directions); and interpolation across data. Every point is scored by a linear probe
fitted on the target dataset over the point's frozen encoder. A target is a dataset of the
zoo's ``--tag`` (a trailing ``:train`` dropped), loaded as a built-in task or a table file.

The defaults are the paper's protocol: |In| hull samples per group, every model pair of each
category scored on every target of its level, the same pairs extrapolated in 10 log steps, at
all three levels, and App. F's moves at the dataset and general levels. That can be many
points, so the number to evaluate is printed before the first one (``--estimate-only`` stops
there); ``--quick`` or explicit smaller settings give a fast look.

:func:`run` saves everything the chosen sections measured to ``regions.json`` after each
section, so an interrupted study keeps what it finished (and the store makes a rerun skip every
evaluated point); the plots and tables are drawn from that file alone
(:func:`weightscape.report.region_report.render_region`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple

from pydantic import Field, field_validator

from weightscape.studies.common import EvalFields, SpaceFields

logger = logging.getLogger(__name__)

SECTIONS = ("pb", "edges", "paths")
LEVELS = ("dataset", "family", "general")
DIRECTIONS = ("origin", "pretrained", "random")
MOVE_LEVELS = ("dataset", "general")
QUICK = {"hull": 3, "max_pairs": 2, "extrapolation_steps": 4}
PAPER_STEPS = 10  # "10 steps in logarithmic advances from 1 to 32" (Gueta et al. §6.1)


class Config(SpaceFields, EvalFields):
    """Which zoo and base, which sections, and how many points each section evaluates."""

    zoo: Path | None = Field(None, description="zoo manifest of finetuned models (required)")
    base: str | None = Field(
        None,
        description="pretrained model folder or 'minilm' (default: the zoo's base, else the "
        "'base' tag its models share); it must agree with the models' 'base' tags",
    )
    tag: str = Field("dataset", min_length=1, description="the zoo tag naming a model's dataset")
    family_tag: str = Field(
        "family", description="the zoo tag naming a model's task family ('' for none)"
    )
    sections: tuple[str, ...] = Field(
        SECTIONS, min_length=1, description="what to run: pb, edges, paths"
    )
    levels: tuple[str, ...] = Field(
        LEVELS,
        min_length=1,
        description="granularities of PB, paths and extrapolation: dataset, family, general",
    )
    quick: bool = Field(
        False,
        description="a fast look instead of the paper's protocol: --hull 3, --max-pairs 2, "
        "--extrapolation-steps 4 where not given",
    )
    estimate_only: bool = Field(
        False, description="print the number of points the protocol evaluates, then stop"
    )
    hull: int | None = Field(
        None,
        ge=1,
        description="In' samples (from the convex hull) per group (default: |In|, as Gueta et al.)",
    )
    random: int = Field(3, ge=0, description="random-direction anchors about the base")
    toward: tuple[str, ...] = Field(
        DIRECTIONS,
        min_length=1,
        description="moves from a centroid toward: origin (theta = 0), pretrained, random",
    )
    move_levels: tuple[str, ...] = Field(
        MOVE_LEVELS,
        min_length=1,
        description="moves from the centroid of each dataset's models and of all models "
        "(source vs non-source models, App. F): dataset, general",
    )
    radii: tuple[Annotated[float, Field(allow_inf_nan=False)], ...] = Field(
        (0.0, 0.5, 1.0, 2.0, 4.0, 8.0),
        min_length=1,
        description="radii of moves from a centroid, in mean model-centroid distances",
    )
    extrapolation_steps: int | None = Field(
        None,
        ge=2,
        description=f"log steps past each model (default: {PAPER_STEPS}, as Gueta et al.)",
    )
    reach: float = Field(32.0, gt=1, allow_inf_nan=False, description="largest t extrapolated")
    extrapolation_pairs: Literal["paths", "first"] = Field(
        "paths",
        description="extrapolate the interpolation's pairs and targets (paths, as Gueta et al.) "
        "or only the first two models of each dataset on it (first)",
    )
    max_pairs: int | None = Field(
        None,
        ge=1,
        description="model pairs per category, drawn seeded (default: every pair, as Gueta et al.)",
    )
    path_targets: Literal["level", "own"] = Field(
        "level",
        description="score each path on every target of its level (level, as Gueta et al.) or on "
        "its two models' own datasets, from the target's own model (own)",
    )
    seed: int = Field(0, ge=0, description="seed of hulls, directions, pairs and target subsets")
    probe_train: int = Field(
        512, ge=1, description="probe training examples per target (its train split)"
    )
    probe_test: int = Field(256, ge=1, description="test examples per target (its test split)")
    probe_c: float = Field(
        1.0, gt=0, allow_inf_nan=False, description="the probe's inverse L2 strength"
    )
    space: Literal["all", "no-head", "biases", "tuned"] = Field(
        "no-head",
        description="all, no-head, biases or tuned; no-head by default (heads differ across "
        "datasets)",
    )
    out: Path = Field(Path("weightscape-out/region"), description="output folder")

    @field_validator("sections", "levels", "toward", "move_levels")
    @classmethod
    def _known_names(cls, names: tuple[str, ...], info) -> tuple[str, ...]:
        from weightscape.errors import unknown_name_error

        kind, allowed = {
            "sections": ("section", SECTIONS),
            "levels": ("level", LEVELS),
            "toward": ("direction", DIRECTIONS),
            "move_levels": ("level", MOVE_LEVELS),
        }[info.field_name]
        for name in names:  # before any data is loaded
            if name not in allowed:
                raise ValueError(str(unknown_name_error(kind, name, allowed)).rstrip("."))
        return tuple(dict.fromkeys(names))

    def protocol(self) -> dict[str, Any]:
        """The sizes the sections use: the paper's unless given (``--quick``: :data:`QUICK`).

        ``hull`` None means |In| samples per group, ``max_pairs`` None every pair.
        """
        quick = QUICK if self.quick else {}
        steps = self.extrapolation_steps
        return {
            "hull": self.hull if self.hull is not None else quick.get("hull"),
            "max_pairs": self.max_pairs if self.max_pairs is not None else quick.get("max_pairs"),
            "extrapolation_steps": steps or quick.get("extrapolation_steps", PAPER_STEPS),
        }


class RegionResult(NamedTuple):
    """What the sections measured (as saved in ``path``, ``regions.json``)."""

    results: dict[str, Any]
    path: Path


def run(config: Config) -> RegionResult:
    """Build the zoo's :class:`~weightscape.analyses.regions.RegionStudy` and run the sections.

    Raises:
        WeightscapeError: No ``--zoo``, a base that disagrees with the zoo, or a model without
            the ``--tag`` (all before any data is loaded or anything is written).
    """
    import dataclasses

    from weightscape.analyses.regions import RegionStudy
    from weightscape.analyses.zoo_groups import final_models
    from weightscape.errors import WeightscapeError
    from weightscape.evaluation.probe import ProbeSettings
    from weightscape.models.zoo import Zoo
    from weightscape.models.zoo_base import resolve_base

    if config.zoo is None:
        raise WeightscapeError("--zoo is required: the zoo manifest of the finetuned models.")
    zoo = Zoo.from_manifest(config.zoo)
    models = final_models(zoo)
    base = dataclasses.replace(resolve_base(zoo, config.base), name="pretrained")
    study = RegionStudy(
        models,
        base,
        _targets(models, config),
        config.out,
        group_tag=config.tag,
        family_tag=config.family_tag or None,
        random_directions=config.random,
        seed=config.seed,
        space=config.parameter_space(),
        settings=config.eval_settings(),
        probe=ProbeSettings(c=config.probe_c),
        store=config.results_store(config.out),
        device=config.device,
        progress=config.progress,
    )
    return run_sections(study, config)


def run_sections(study, config: Config) -> RegionResult:
    """Count the points of ``config.sections`` (logged at INFO: on stderr from the command
    line), then run them, saving ``regions.json`` after each (with ``estimate_only``, only the
    count is saved)."""
    import time

    out = Path(config.out)
    steps = section_steps(study, config)
    plan = study.plan(lambda: [steps[section]() for section in config.sections])
    logger.info(
        "region: %d points to evaluate (%d distinct, %d already stored; %s)",
        plan.to_evaluate,
        plan.distinct,
        plan.stored,
        ", ".join(f"{t} {n}" for t, n in plan.by_target.items()),
    )
    out.mkdir(parents=True, exist_ok=True)
    path = out / "regions.json"
    results: dict[str, Any] = {
        "settings": _settings(study, config),
        "plan": {
            "to_evaluate": plan.to_evaluate,
            "distinct": plan.distinct,
            "stored": plan.stored,
            "requested": plan.requested,
            "by_target": plan.by_target,
        },
    }
    if config.estimate_only:
        _save(results, path)
        return RegionResult(results, path)
    for section in config.sections:
        start = time.perf_counter()
        results.update(steps[section]())
        results.setdefault("seconds", {})[section] = round(time.perf_counter() - start, 1)
        _save(results, path)
    return RegionResult(results, path)


def section_steps(study, config: Config) -> dict[str, Any]:
    """Section name -> a function that runs it on ``study`` and returns its results."""
    from weightscape.analyses.region_edges import (
        centroid_moves,
        extrapolation_curves,
        general_moves,
    )
    from weightscape.analyses.region_paths import centroid_interpolation, interpolation_across_data
    from weightscape.analyses.region_pb import region_comparisons

    sizes = config.protocol()

    def edges() -> dict[str, Any]:
        found: dict[str, Any] = {
            "extrapolation": extrapolation_curves(
                study,
                sizes["extrapolation_steps"],
                config.reach,
                pairs=config.extrapolation_pairs,
                max_pairs=sizes["max_pairs"],
                targets=config.path_targets,
                categories=config.levels,
            )
        }
        if "dataset" in config.move_levels:
            found["moves"] = centroid_moves(study, config.radii, config.toward)
        if "general" in config.move_levels:
            found["general_moves"] = general_moves(study, config.radii, config.toward)
        return found

    return {
        "pb": lambda: {"comparisons": region_comparisons(study, sizes["hull"], config.levels)},
        "edges": edges,
        "paths": lambda: {
            "interpolation": interpolation_across_data(
                study,
                max_pairs=sizes["max_pairs"],
                targets=config.path_targets,
                categories=config.levels,
            ),
            "centroid_interpolation": centroid_interpolation(
                study, targets=config.path_targets, categories=config.levels
            ),
        },
    }


def _targets(models, config: Config):
    """Targets for every dataset of the zoo (checked for a tag first, so a typo fails fast)."""
    from weightscape.analyses.regions import load_targets
    from weightscape.analyses.zoo_groups import dataset_of
    from weightscape.errors import WeightscapeError, unknown_name_error

    untagged = [m for m in models if config.tag not in m.tags]
    if untagged:
        available = sorted({k for m in models for k in m.tags})
        error = unknown_name_error("tag", config.tag, available)
        raise WeightscapeError(f"{error} (model '{untagged[0].name}' has no such tag; see --tag)")
    names = sorted({dataset_of(m.tags[config.tag]) for m in models})
    targets = load_targets(
        names, train_size=config.probe_train, test_size=config.probe_test, seed=config.seed
    )
    _refuse_text_targets(targets, config.tag)
    return targets


def _refuse_text_targets(targets, tag: str) -> None:
    """A region's generalised loss is a linear probe fitted on labelled examples of each
    target; a text task has no labels, so it cannot be a target (yet)."""
    from weightscape.data import TextTask
    from weightscape.errors import WeightscapeError

    text = sorted(name for name, target in targets.items() if isinstance(target.test, TextTask))
    if text:
        raise WeightscapeError(
            f"`weightscape region` scores every point by a linear probe fitted on a labelled "
            f"target dataset, and the '{tag}' tag names text task(s) {text} (documents without "
            "labels, scored by a language model's loss). Region analyses of language models are "
            "not supported yet: walk their paths with `weightscape interpolate`, `grid`, "
            "`plane` or `basins`, or tag the models with classification datasets."
        )


def _settings(study, config: Config) -> dict[str, Any]:
    first = next(iter(study.targets.values()))
    sizes = config.protocol()
    return {
        "models": [m.name for m in study.models],
        "groups": {g: [study.models[i].name for i in m] for g, m in study.groups.items()},
        "families": {f: [study.models[i].name for i in m] for f, m in study.families.items()},
        "targets": sorted(study.targets),
        "probe_train_examples": len(first.train),
        "probe_test_examples": len(first.test),
        "probe": {"c": study.probe.c, "max_iter": study.probe.max_iter},
        "eval": {"batch_size": study.settings.batch_size, "max_length": study.settings.max_length},
        "space": study.space.describe(),
        "random_directions": study.random_directions,
        "seed": study.seed,
        "hull_size": sizes["hull"] if sizes["hull"] is not None else "|In|",
        "radii": list(config.radii),
        "max_pairs": sizes["max_pairs"] if sizes["max_pairs"] is not None else "all",
        "extrapolation_steps": sizes["extrapolation_steps"],
        "reach": config.reach,
        "extrapolation_pairs": config.extrapolation_pairs,
        "path_targets": config.path_targets,
        "levels": list(config.levels),
        "toward": list(config.toward),
        "move_levels": list(config.move_levels),
        "quick": config.quick,
    }


def _save(results: dict[str, Any], path: Path) -> None:
    import json

    partial = path.with_suffix(".json.partial")
    partial.write_text(json.dumps(results, indent=1))
    partial.replace(path)  # atomic: a killed study never leaves half a file
