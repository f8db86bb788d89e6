"""A zoo's models grouped by the dataset they were finetuned on.

Region and fuse studies group a zoo by its ``dataset`` tag. Finetuning writes the training
split's name there (``rotten_tomatoes:train``), so the split suffix is dropped to name the
dataset (and the target task of the same name). Intermediate checkpoints of a run (a ``step``
tag below its ``steps``) are not finetuned models and stay out of the groups. The base they
came from is :func:`weightscape.models.zoo_base.resolve_base`'s.
"""

from __future__ import annotations

from typing import Any

from weightscape.data.splits import SPLIT_NAMES
from weightscape.errors import WeightscapeError
from weightscape.models.checkpoint import Checkpoint
from weightscape.models.zoo import Zoo

__all__ = ["dataset_of", "datasets_in", "final_models"]


def dataset_of(value: Any) -> str:
    """A dataset tag without its split suffix.

    >>> dataset_of("rotten_tomatoes:train"), dataset_of("mnli_like")
    ('rotten_tomatoes', 'mnli_like')
    """
    name = str(value)
    head, _, last = name.rpartition(":")
    return head if head and last in SPLIT_NAMES else name


def final_models(zoo: Zoo) -> list[Checkpoint]:
    """The zoo's finetuned models: every entry but runs' intermediate checkpoints."""
    models = []
    for model in zoo:
        step, steps = model.tags.get("step"), model.tags.get("steps")
        if isinstance(step, int) and isinstance(steps, int) and step < steps:
            continue  # an intermediate checkpoint of a run, not a finetuned model
        models.append(model)
    return models


def datasets_in(zoo: Zoo, tag: str = "dataset") -> dict[str, list[Checkpoint]]:
    """The zoo's final models grouped by dataset (the ``tag`` without a split suffix)."""
    untagged = [m.name for m in zoo if tag not in m.tags]
    if untagged:
        raise WeightscapeError(
            f"The zoo's models {', '.join(untagged)} have no '{tag}' tag, so their dataset is "
            f"unknown. Tag them with '{tag}' in the zoo manifest or name another tag (--tag)."
        )
    groups: dict[str, list[Checkpoint]] = {}
    for model in final_models(zoo):
        groups.setdefault(dataset_of(model.tags[tag]), []).append(model)
    return groups
