"""One experiment repeated over seeds: the mean path between minima and its spread.

Qin et al. (2022) run every connectivity experiment with 3 random seeds and report the average
curves. Each seed's repetition is a pair of checkpoints (e.g. two runs that differ in data order,
trained with head seed 0, 1 and 2); this walks the line of every pair on one t grid, through the
results store, and averages the curves point by point, with a band: mean +- sample std, or the
range over the pairs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from weightscape.studies.common import EvalFields, ProbeFields, SpaceFields, positional


class Config(ProbeFields, EvalFields, SpaceFields):
    """Pairs of checkpoints, one per seed, walked on one grid and averaged."""

    pairs: tuple[str, ...] = positional(
        "the pairs, one per seed, each A:B (checkpoint paths or names in --zoo), e.g. "
        "a-s0:b-s0 a-s1:b-s1 a-s2:b-s2"
    )
    zoo: Path | None = Field(None, description="zoo manifest that resolves checkpoint names")
    config: Path | None = Field(
        None, description="reference config folder for bare .safetensors/.bin files"
    )
    tokenizer: Path | None = Field(None, description="tokenizer folder (default: the anchor's)")
    points: int = Field(
        11, ge=2, le=100_000, description="evenly spaced points over [0, 1], both ends included"
    )
    band: Literal["std", "minmax"] = Field(
        "std", description="the band around the mean: std (sample std, n-1) or minmax (range)"
    )
    out: Path = Field(Path("weightscape-out/mean-path"), description="output folder")

    @field_validator("pairs")
    @classmethod
    def _pairs(cls, pairs: tuple[str, ...]) -> tuple[str, ...]:
        bad = [p for p in pairs if len(p.split(":")) != 2 or not all(p.split(":"))]
        if bad:
            raise ValueError(f"write each pair as A:B (two checkpoints); not {', '.join(bad)}")
        if len(pairs) < 2:
            raise ValueError(f"give at least 2 pairs (one per seed) to average, not {len(pairs)}")
        twice = sorted({p for p in pairs if pairs.count(p) > 1})
        if twice:
            raise ValueError(f"name each pair once; repeated: {', '.join(twice)}")
        return pairs

    def anchor_pairs(self) -> list[tuple[str, str]]:
        """The pairs as (A, B) tuples."""
        return [tuple(p.split(":")) for p in self.pairs]  # type: ignore[misc]

    def tokenizer_folder(self) -> Path | None:
        """``tokenizer``, else the zoo's tokenizer, else None (each anchor's own)."""
        if self.tokenizer is not None or self.zoo is None:
            return self.tokenizer
        from weightscape.models.zoo import Zoo

        return Zoo.from_manifest(self.zoo).tokenizer

    def estimated_points(self, models: int | None = None) -> int:
        """Points walked: every pair's line, ends included."""
        return len(self.pairs) * self.points


def run(config: Config):
    """Walk every pair's line on the same grid (through the store in ``config.out``), average.

    Returns:
        The :class:`~weightscape.analyses.mean_path.MeanCurve`.
    """
    from weightscape.analyses.interpolation import walk_path
    from weightscape.analyses.mean_path import mean_curves
    from weightscape.evaluation.engine import Engine
    from weightscape.geometry import even_grid
    from weightscape.studies.common import resolve_checkpoints

    task, probe = config.load_task(), config.probe()
    store = config.results_store(config.out)
    walks = []
    for pair in config.anchor_pairs():
        engine = Engine(
            resolve_checkpoints(pair, config.zoo, config.config),
            task,
            space=config.parameter_space(),
            settings=config.eval_settings(),
            device=config.device,
            tokenizer=config.tokenizer_folder(),
            probe=probe,
        )
        walks.append(
            walk_path(engine, even_grid(config.points), store=store, progress=config.progress)
        )
        del engine  # one working model at a time
    return mean_curves(walks, band=config.band)
