"""BitFit runs of the fuse study (Gueta et al. 2023, §7): settings and run configs.

The study itself (centroids, evaluation, gains) is :mod:`weightscape.analyses.fuse`; this module
holds what it trains: for each target dataset, BitFit from each start (the pretrained base and
the centroid of other datasets' models) on the full training split and on few-shot subsamples,
one run per seed. :func:`~weightscape.training.sweeps.run_sweep` trains them and skips finished
ones.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from weightscape.training.finetune import FinetuneConfig


class FuseSettings(BaseModel):
    """What the fuse study trains and on which data.

    Frozen, unknown keys refused, scalars strict (no ``True`` for an int, no ``2.0`` for a
    step count). The fuse study's command line (:mod:`weightscape.studies.fuse`) mirrors these
    fields with the same defaults and constraints and builds this object from them. BitFit
    trains biases, which need a larger learning rate than full finetuning.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    tag: str = Field(
        "dataset", min_length=1, strict=True, description="the zoo tag naming a model's dataset"
    )
    steps: int = Field(200, ge=1, strict=True, description="BitFit training steps")
    lr: float = Field(
        1e-3, gt=0, allow_inf_nan=False, strict=True, description="BitFit learning rate"
    )
    batch_size: int = Field(16, ge=1, strict=True, description="BitFit training batch size")
    max_length: int = Field(
        64, ge=8, strict=True, description="truncate training inputs to N tokens"
    )
    few_shot: tuple[Annotated[int, Field(ge=1, strict=True)] | None, ...] = Field(
        (None, 64),
        min_length=1,
        description="training-set sizes; None is the whole training split",
    )
    seeds: tuple[Annotated[int, Field(ge=0, strict=True)], ...] = Field(
        (0,),
        min_length=1,
        description="one run per seed and start; a seed sets the head, data order and subsample",
    )
    split_seed: int = Field(
        0, ge=0, strict=True, description="seed of the 8:1:1 split of each target"
    )
    eval_subset: int | None = Field(
        None,
        ge=1,
        strict=True,
        description="evaluate on N random test examples (None: the whole test split)",
    )

    @field_validator("few_shot", "seeds")
    @classmethod
    def _distinct(cls, values: tuple) -> tuple:
        repeated = sorted({v for v in values if values.count(v) > 1}, key=str)
        if repeated:
            raise ValueError(f"values must be distinct; {', '.join(map(str, repeated))} repeat")
        return values


def fuse_configs(
    target: str,
    starts: dict[str, str],
    settings: FuseSettings,
    train_size: int,
    start_hashes: dict[str, str] | None = None,
) -> list[FinetuneConfig]:
    """One BitFit run per start, regime and seed, named ``<target>-<start>-<regime>-seed<s>``.

    Both starts share each seed's head initialisation, data order and few-shot subsample, so
    they differ only in where they start.

    Args:
        target: The dataset trained on (part of the run names).
        starts: Start name (``base``, ``centroid``) -> model to start from (name or path).
        settings: BitFit hyperparameters, few-shot sizes and seeds.
        train_size: Examples in the full training split (for the ``n_train`` tag).
        start_hashes: Content hashes of starts that are exports, kept as a ``start_hash`` tag: a
            run finished from an older export is then reported as trained with other settings
            instead of being reused.
    """
    configs = []
    for n in settings.few_shot:
        regime = regime_name(n)
        for seed in settings.seeds:
            for start, path in starts.items():
                tags = {
                    "start": start,
                    "regime": regime,
                    "n_train": min(n or train_size, train_size),
                }
                if start_hashes and start in start_hashes:
                    tags["start_hash"] = start_hashes[start][:16]
                configs.append(
                    FinetuneConfig(
                        name=f"{folder_name(target)}-{start}-{regime}-seed{seed}",
                        base=path,
                        method="bitfit",
                        steps=settings.steps,
                        lr=settings.lr,
                        batch_size=settings.batch_size,
                        max_length=settings.max_length,
                        head_seed=seed,
                        data_seed=seed,
                        train_size=n,
                        train_size_seed=seed,
                        tags=tags,
                    )
                )
    return configs


def regime_name(n: int | None) -> str:
    """``full`` for the whole training split, ``64shot`` for 64 examples.

    >>> regime_name(None), regime_name(64)
    ('full', '64shot')
    """
    return "full" if n is None else f"{n}shot"


def folder_name(name: str) -> str:
    """A dataset name usable in folder and run names.

    >>> folder_name("data/reviews.csv")
    'data_reviews.csv'
    """
    return re.sub(r"[^\w.+-]", "_", name)
