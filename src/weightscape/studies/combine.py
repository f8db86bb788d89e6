"""Learned per-group mixes of two minima against the best point on the line (Qin et al. 2022).

Qin et al.'s Table 2: the best linear point (t chosen on dev accuracy) and the better endpoint
(by default the one better on test, as in the paper; ``endpoint_split``), against one mix per
grouping (per layer, module or matrix) whose coefficients train on the train split
(``weightscape.training.learned_mix``); each is reported on the dev and test subsets.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, NamedTuple

from pydantic import Field, field_validator

from weightscape.studies.pair import (
    TRAIN_FIELDS,
    PairFields,
    best_row,
    endpoint_row,
    selection_metric,
)

Grouping = Literal["layer", "module", "matrix"]

COMBINE_FIELDS = {**TRAIN_FIELDS, **{name: name for name in ("steps", "lr", "init")}}
"""Study field -> field of :class:`~weightscape.training.learned_mix.CombineConfig` it fills
(``group_by`` fills it one grouping at a time)."""


class Config(PairFields):
    """Learned mixes of two checkpoints, compared with the best point on the line."""

    group_by: tuple[Grouping, ...] = Field(
        ("layer", "module", "matrix"),
        min_length=1,
        description="groupings to learn, comma-separated (layer, module, matrix): one mix each",
    )
    steps: int = Field(100, ge=1, description="optimisation steps of each mix")
    lr: float = Field(0.05, gt=0, description="learning rate of the mix logits")
    init: float = Field(0.0, description="every group's starting logit (0: the midpoint)")
    out: Path = Field(Path("weightscape-out/combine"), description="output folder")

    @field_validator("group_by")
    @classmethod
    def _each_once(cls, groupings: tuple[str, ...]) -> tuple[str, ...]:
        twice = sorted({g for g in groupings if groupings.count(g) > 1})
        if twice:
            raise ValueError(f"name each grouping once; repeated: {', '.join(twice)}")
        return groupings

    def combine_config(self, grouping: str) -> Any:
        """The :class:`~weightscape.training.learned_mix.CombineConfig` of one grouping's mix."""
        from weightscape.training.learned_mix import CombineConfig

        return CombineConfig(group_by=grouping, **self.training_values(COMBINE_FIELDS))

    def estimated_points(self, models: int | None = None) -> int:
        """Points evaluated: the line on dev and test, and each learned mix on both."""
        return 2 * (self.points + len(self.group_by))


class CombineResult(NamedTuple):
    """The comparison table and the learned coefficients.

    Attributes:
        rows: One row per method: ``{"method", "dev": metrics, "test": metrics}``.
        alphas: grouping -> {group: weight on the first model}.
        names: The two models' names.
    """

    rows: list[dict[str, Any]]
    alphas: dict[str, dict[str, float]]
    names: tuple[str, str]


def run(config: Config) -> CombineResult:
    """Pick the best linear point on dev, learn each grouping's mix, evaluate all on dev and test.

    Each mix's coefficients and history are saved as ``config.out / combination-GROUPING.json``;
    every evaluated point goes through the results store.
    """
    from weightscape.analyses.best_point import best_point
    from weightscape.evaluation.engine import Engine
    from weightscape.geometry import even_grid
    from weightscape.runtime.executor import evaluate_points
    from weightscape.training.learned_mix import learn_combination

    a, b = config.checkpoints()
    train, dev, test = config.splits()
    space = config.parameter_space()
    store = config.results_store(config.out)
    engines = {
        name: Engine(
            [a, b], task, space=space, settings=config.eval_settings(), device=config.device
        )
        for name, task in (("dev", dev), ("test", test))
    }
    line = best_point(
        engines["dev"],
        engines["test"],
        even_grid(config.points),
        metric=selection_metric(dev),
        endpoint_split=config.endpoint_split,
        store=store,
        progress=config.progress,
    )
    rows = [best_row(line, "linear"), endpoint_row(line)]
    alphas = {}
    for grouping in config.group_by:
        point, _ = learn_combination(
            a,
            b,
            train,
            config=config.combine_config(grouping),
            space=space,
            out_dir=config.out,
            model_labels=config.model_labels,
        )
        alphas[grouping] = {g: c[0] for g, c in point.coefficients}
        metrics = {
            name: evaluate_points(engine, [point], store)[0].result.metrics
            for name, engine in engines.items()
        }
        rows.append(
            {"method": f"learned {grouping}-wise ({len(point.coefficients)} groups)", **metrics}
        )
    return CombineResult(rows, alphas, (a.name, b.name))
