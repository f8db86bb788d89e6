"""BitFit runs of the fuse study (Gueta et al. 2023, §7): settings and run configs.

The study itself (centroids, evaluation, gains) is :mod:`weightscape.analyses.fuse`; this module
holds what it trains: for each target dataset, BitFit from each start (the pretrained base and
the centroid of other datasets' models) on the full training split and on few-shot subsamples,
one run per seed. :func:`~weightscape.training.sweeps.run_sweep` trains them and skips finished
ones.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from weightscape.errors import WeightscapeError
from weightscape.training.finetune import FinetuneConfig


@dataclass(frozen=True)
class FuseSettings:
    """What the fuse study trains and on which data.

    Attributes:
        tag: The zoo tag that names a model's dataset.
        steps, lr, batch_size, max_length: BitFit hyperparameters (biases need a larger learning
            rate than full finetuning).
        few_shot: Training-set sizes; ``None`` is the whole training split.
        seeds: One run per seed and start; a seed sets the head, data order and subsample.
        split_seed: Seed of the 8:1:1 split of each target.
        eval_subset: Evaluate on this many random test examples (None: the whole test split).
    """

    tag: str = "dataset"
    steps: int = 200
    lr: float = 1e-3
    batch_size: int = 16
    max_length: int = 64
    few_shot: tuple[int | None, ...] = (None, 64)
    seeds: tuple[int, ...] = (0,)
    split_seed: int = 0
    eval_subset: int | None = None

    def __post_init__(self) -> None:
        for name in ("few_shot", "seeds"):  # lists from a caller become tuples
            if isinstance(getattr(self, name), list):
                object.__setattr__(self, name, tuple(getattr(self, name)))
        _check("tag", self.tag, isinstance(self.tag, str) and bool(self.tag), "a tag name")
        for name in ("steps", "batch_size", "max_length"):
            _check(name, getattr(self, name), _is_int(getattr(self, name), 1), "an int >= 1")
        _check("lr", self.lr, _is_number(self.lr) and 0 < self.lr < math.inf, "a number > 0")
        _check(
            "few_shot",
            self.few_shot,
            _distinct(self.few_shot) and all(n is None or _is_int(n, 1) for n in self.few_shot),
            "distinct ints >= 1 or None (the full training split), at least one",
        )
        _check(
            "seeds",
            self.seeds,
            _distinct(self.seeds) and all(_is_int(s, 0) for s in self.seeds),
            "distinct ints >= 0, at least one",
        )
        _check("split_seed", self.split_seed, _is_int(self.split_seed, 0), "an int >= 0")
        ok = self.eval_subset is None or _is_int(self.eval_subset, 1)
        _check("eval_subset", self.eval_subset, ok, "an int >= 1 or None")


def _is_int(value: Any, least: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _distinct(values: Any) -> bool:
    return isinstance(values, tuple) and bool(values) and len(set(values)) == len(values)


def _check(name: str, value: Any, ok: bool, what: str) -> None:
    if not ok:
        raise WeightscapeError(
            f"The '{name}' parameter of fuse must be {what}. Got {value!r} instead."
        )


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
