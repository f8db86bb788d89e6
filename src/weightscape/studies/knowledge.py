"""Knowledge along a path: what the line from a source to a target minimum forgets and learns.

Qin et al. (2022, Fig. 8). Both checkpoints must come from runs finetuned with
``--dynamics-examples N``: the examples their runs tracked are the ones evaluated, with the runs'
cartography statistics. The tasks are loaded whole (every split), and the tracked rows are picked
out by id (:mod:`weightscape.analyses.knowledge`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from weightscape.studies.common import AnchorFields, EvalFields, SpaceFields, positional


class Config(AnchorFields, EvalFields, SpaceFields):
    """The line from a source minimum to a target minimum, on both runs' tracked examples."""

    anchors: tuple[str, ...] = positional(
        "the source and the target checkpoint (paths, or names in --zoo), in that order"
    )
    source_task: str = Field(
        description="the data the source was finetuned on: a built-in name or a table file"
    )
    target_task: str = Field(description="the data the target was finetuned on")
    steps: int = Field(5, ge=1, description="steps J; the points are t = j/J")
    head: Literal["auto", "own", "probe"] = Field(
        "auto",
        description="own: each point's own mixed head (tasks with one label set); probe: a linear "
        "head fitted per task over the frozen encoder (label sets differ); auto: own when the "
        "label names agree, else probe",
    )
    probe_train: int = Field(
        256, ge=1, description="untracked rows of each task the probe is fitted on"
    )
    probe_c: float = Field(1.0, gt=0, description="the probe's inverse L2 strength")
    out: Path = Field(Path("weightscape-out/knowledge"), description="output folder")

    @field_validator("anchors")
    @classmethod
    def _source_and_target(cls, anchors: tuple[str, ...]) -> tuple[str, ...]:
        if len(anchors) != 2:
            raise ValueError(
                f"give exactly 2 checkpoints, the source and the target; got {len(anchors)}"
            )
        return anchors

    def estimated_points(self, models: int | None = None) -> int:
        """Points evaluated: J + 1 on each of the two tasks."""
        return 2 * (self.steps + 1)


def run(config: Config):
    """Evaluate the line on both runs' tracked examples, through the store in ``config.out``.

    Returns:
        The :class:`~weightscape.analyses.knowledge.KnowledgePath`.
    """
    from weightscape.analyses.knowledge import knowledge_along_path
    from weightscape.data import load_task
    from weightscape.evaluation.probe import ProbeSettings

    source, target = config.checkpoints()
    return knowledge_along_path(
        source,
        target,
        load_task(config.source_task),
        load_task(config.target_task),
        steps=config.steps,
        head=config.head,
        probe_train=config.probe_train,
        probe_settings=ProbeSettings(c=config.probe_c),
        space=config.parameter_space(),
        settings=config.eval_settings(),
        device=config.device,
        tokenizer=config.tokenizer_folder(),
        store=config.results_store(config.out),
        progress=config.progress,
    )
