"""Fuse (Gueta et al. 2023, §7): BitFit from the centroid of other datasets' models vs. from
the base.

For each target dataset of a zoo, the weight average of the models finetuned on the other
datasets is a starting point for finetuning on the target. A target is a dataset name from the
zoo's ``--tag`` (a trailing ``:train``/``:validation``/``:test`` dropped, so
``rotten_tomatoes:train`` is ``rotten_tomatoes``) and must be a built-in task: BitFit trains on
its seeded train split (inputs truncated to ``--train-max-length``) and is evaluated on its test
split (truncated to ``--max-length``).

The training fields mirror :class:`~weightscape.training.fuse.FuseSettings` (same defaults and
constraints; ``tests/test_fuse.py`` checks they agree), which :meth:`Config.fuse_settings`
builds for :func:`~weightscape.analyses.fuse.run_fuse`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, field_validator, model_validator

from weightscape.studies.common import EvalFields, repeated

# Study field -> the FuseSettings field it fills, with the same default and constraints
# (few_shot aside: the study's few_shot and full make the settings' few_shot).
MIRRORED = {
    "tag": "tag",
    "steps": "steps",
    "lr": "lr",
    "batch_size_train": "batch_size",
    "train_max_length": "max_length",
    "seeds": "seeds",
    "split_seed": "split_seed",
    "subset": "eval_subset",
}


class Config(EvalFields):
    """Which zoo and targets, how BitFit trains, and how the finetuned models are evaluated."""

    zoo: Path | None = Field(None, description="zoo manifest of finetuned models (required)")
    targets: tuple[str, ...] | None = Field(
        None, min_length=1, description="target datasets (default: every dataset in the zoo)"
    )
    tag: str = Field("dataset", min_length=1, description="the zoo tag naming a model's dataset")
    base: str | None = Field(
        None,
        description="pretrained model folder or 'minilm' (default: the zoo's base, else the "
        "'base' tag its models share); it must agree with the models' 'base' tags",
    )
    steps: int = Field(200, ge=1, description="BitFit training steps")
    lr: float = Field(1e-3, gt=0, allow_inf_nan=False, description="BitFit learning rate")
    batch_size_train: int = Field(16, ge=1, description="BitFit training batch size")
    train_max_length: int = Field(64, ge=8, description="truncate training inputs to N tokens")
    few_shot: tuple[Annotated[int, Field(ge=1)], ...] = repeated(
        "also train on N random training examples (repeatable or comma-separated)",
        default=(64,),
    )
    full: bool = Field(True, description="train on the full training split too")
    seeds: tuple[Annotated[int, Field(ge=0)], ...] = Field(
        (0,),
        min_length=1,
        description="one run per seed and start; a seed sets the head, data order and subsample",
    )
    split_seed: int = Field(0, ge=0, description="seed of the 8:1:1 split of each target")
    subset: int | None = Field(
        None, ge=1, description="evaluate on N random test examples (default: all)"
    )
    out: Path = Field(Path("weightscape-out/fuse"), description="output folder")

    @field_validator("few_shot", mode="before")
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [value]
        if isinstance(value, list | tuple):
            items = [p for v in value for p in (v.split(",") if isinstance(v, str) else [v])]
            items = [p.strip() if isinstance(p, str) else p for p in items]
            return [p for p in items if p != ""]
        return value

    @field_validator("few_shot", "seeds")
    @classmethod
    def _once_each(cls, values: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(dict.fromkeys(values))

    @model_validator(mode="after")
    def _something_to_train(self) -> Config:
        if not self.full and not self.few_shot:
            raise ValueError(
                "--no-full and no --few-shot leave nothing to train: give --few-shot N"
            )
        return self

    def fuse_settings(self):
        """The :class:`~weightscape.training.fuse.FuseSettings` these fields describe."""
        from weightscape.training.fuse import FuseSettings

        full = (None,) if self.full else ()
        fields = {name: getattr(self, field) for field, name in MIRRORED.items()}
        return FuseSettings(**fields, few_shot=full + self.few_shot)


def run(config: Config):
    """BitFit from both starts per target, evaluated through the store in ``config.out``.

    The base is resolved by :func:`~weightscape.models.zoo_base.resolve_base` (``--base``, the
    manifest's base and the models' ``base`` tags must agree) before any centroid or run is
    written.

    Returns:
        The :class:`~weightscape.analyses.fuse.FuseResult`.
    """
    from weightscape.analyses.fuse import run_fuse
    from weightscape.errors import WeightscapeError
    from weightscape.models.zoo import Zoo

    if config.zoo is None:
        raise WeightscapeError("--zoo is required: the zoo manifest of the finetuned models.")
    return run_fuse(
        Zoo.from_manifest(config.zoo),
        config.targets,
        config.fuse_settings(),
        config.out,
        config.results_store(config.out),
        base=config.base,
        eval_settings=config.eval_settings(),
        device=config.device,
        progress=config.progress,
    )
