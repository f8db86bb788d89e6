"""Regions of a zoo by the generalised loss (Gueta et al. 2023).

PB of In vs Ex, In' vs Ex and In' vs In per dataset, per task family and in general; the edges
of each dataset's region (extrapolation, moves from the centroid); and interpolation across
data. Every point is scored by a linear probe fitted on the target dataset over the point's
frozen encoder. A target is a dataset of the zoo's ``--tag`` (a trailing ``:train`` dropped),
loaded as a built-in task or a table file.

:func:`run` saves everything the chosen sections measured to ``regions.json`` after each
section, so an interrupted study keeps what it finished (and the store makes a rerun skip every
evaluated point); the plots and tables are drawn from that file alone
(:func:`weightscape.report.region_report.render_region`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple

from pydantic import Field, field_validator

from weightscape.studies.common import EvalFields, SpaceFields

SECTIONS = ("pb", "edges", "paths")


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
    hull: int = Field(10, ge=1, description="In' samples (from the convex hull) per group")
    random: int = Field(3, ge=0, description="random-direction anchors about the base")
    radii: tuple[Annotated[float, Field(allow_inf_nan=False)], ...] = Field(
        (0.0, 0.5, 1.0, 2.0, 4.0, 8.0),
        min_length=1,
        description="radii of moves from a centroid, in mean model-centroid distances",
    )
    extrapolation_steps: int = Field(6, ge=2, description="log steps past each model")
    reach: float = Field(32.0, gt=1, allow_inf_nan=False, description="largest t extrapolated")
    max_pairs: int = Field(6, ge=1, description="model pairs per category")
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

    @field_validator("sections")
    @classmethod
    def _known_sections(cls, sections: tuple[str, ...]) -> tuple[str, ...]:
        from weightscape.errors import unknown_name_error

        for section in sections:  # before any data is loaded
            if section not in SECTIONS:
                raise ValueError(str(unknown_name_error("section", section, SECTIONS)).rstrip("."))
        return tuple(dict.fromkeys(sections))


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
    """Run ``config.sections`` of ``study``, saving ``regions.json`` after each."""
    import time

    from weightscape.analyses.region_edges import centroid_moves, extrapolation_curves
    from weightscape.analyses.region_paths import centroid_interpolation, interpolation_across_data
    from weightscape.analyses.region_pb import LEVELS, region_comparisons

    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "regions.json"
    results: dict[str, Any] = {"settings": _settings(study, config)}
    steps = {
        "pb": lambda: {"comparisons": region_comparisons(study, config.hull, LEVELS)},
        "edges": lambda: {
            "extrapolation": extrapolation_curves(study, config.extrapolation_steps, config.reach),
            "moves": centroid_moves(study, config.radii),
        },
        "paths": lambda: {
            "interpolation": interpolation_across_data(study, max_pairs=config.max_pairs),
            "centroid_interpolation": centroid_interpolation(study),
        },
    }
    for section in config.sections:
        start = time.perf_counter()
        results.update(steps[section]())
        results.setdefault("seconds", {})[section] = round(time.perf_counter() - start, 1)
        _save(results, path)
    return RegionResult(results, path)


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
    return load_targets(
        names, train_size=config.probe_train, test_size=config.probe_test, seed=config.seed
    )


def _settings(study, config: Config) -> dict[str, Any]:
    first = next(iter(study.targets.values()))
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
        "hull_size": config.hull,
        "radii": list(config.radii),
        "max_pairs": config.max_pairs,
    }


def _save(results: dict[str, Any], path: Path) -> None:
    import json

    partial = path.with_suffix(".json.partial")
    partial.write_text(json.dumps(results, indent=1))
    partial.replace(path)  # atomic: a killed study never leaves half a file
