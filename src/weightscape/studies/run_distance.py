"""How far two training runs drift apart, step by step (Qin et al. 2022, App. B.2, Fig. 12).

Qin et al. train two runs that differ in one factor and measure ``||theta_1 - theta_2||`` at
every saved step: the distance grows with training, which they offer as a partial explanation of
why longer training connects adapter minima worse. Given a zoo of runs that saved the same steps
(``weightscape finetune --save-steps``), this reads the two runs' checkpoints step by step (no
evaluation: weights only) and reports the distance, the distance per parameter (their "per
neuron" figure), the cosine similarity, and per layer the distribution of per-neuron distances.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator

from weightscape.studies.common import SpaceFields, positional


class Config(SpaceFields):
    """Two runs of a zoo, compared at their saved steps."""

    runs: tuple[str, ...] = positional(
        "the two runs, by their 'run' tag in --zoo (finetune --save-steps writes it)"
    )
    zoo: Path = Field(description="zoo manifest holding both runs' saved steps")
    steps: tuple[int, ...] | None = Field(
        None, min_length=1, description="only these steps (default: every step both runs saved)"
    )
    out: Path = Field(Path("weightscape-out/run-distance"), description="output folder")

    @field_validator("runs")
    @classmethod
    def _two_runs(cls, runs: tuple[str, ...]) -> tuple[str, ...]:
        if len(runs) != 2 or runs[0] == runs[1]:
            raise ValueError(f"give exactly 2 different runs, not {', '.join(runs)}")
        return runs


def run(config: Config):
    """Compare the two runs at every step both saved (or at ``config.steps``).

    Returns:
        The :class:`~weightscape.analyses.run_distance.RunDistance`.

    Raises:
        WeightscapeError: For an unknown run, or steps the runs do not share.
    """
    from weightscape.analyses.run_distance import compare_zoo_runs
    from weightscape.models.zoo import Zoo
    from weightscape.provenance import note_anchors

    models = list(Zoo.from_manifest(config.zoo))
    result = compare_zoo_runs(
        models, *config.runs, space=config.parameter_space(), steps=config.steps
    )
    note_anchors(m for m in models if m.tags.get("run") in config.runs)
    return result
