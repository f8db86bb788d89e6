"""Fields shared by the studies that train something between two frozen minima (curve, combine).

Both train on the task's train split and evaluate on seeded subsets of its validation (dev) and
test splits, so the task is described by its splits rather than by one ``--split``. Training
truncates inputs to ``train_max_length`` and evaluation to ``max_length``: two fields, because
the two defaults differ (the training configs' 64, the evaluation's 128).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

from weightscape.studies.common import (
    EvalFields,
    SpaceFields,
    TableFields,
    positional,
    resolve_checkpoints,
)

TRAIN_FIELDS = {"batch_size_train": "batch_size", "train_max_length": "max_length", "seed": "seed"}
"""Study field -> field of the training config (CurveConfig, CombineConfig) it fills."""


class PairFields(TableFields, EvalFields, SpaceFields):
    """Two checkpoints, the splits trained and evaluated on, and the shared training settings."""

    anchors: tuple[str, ...] = positional("the two checkpoints (paths, or names in --zoo)")
    zoo: Path | None = Field(None, description="zoo manifest that resolves anchor names")
    config: Path | None = Field(
        None, description="reference config folder for bare .safetensors/.bin files"
    )
    train_examples: int | None = Field(
        None,
        ge=1,
        description="train on this many random examples of the train split, drawn with --seed "
        "(none: all of it)",
    )
    subset: int = Field(
        512,
        ge=1,
        description="evaluate on this many random examples of the validation and test splits each",
    )
    subset_seed: int = Field(0, description="seed of those evaluation subsets")
    points: int = Field(11, ge=2, description="evenly spaced points per walked path, ends included")
    batch_size_train: int = Field(32, ge=1, description="training batch size")
    train_max_length: int = Field(64, ge=8, description="truncate training inputs to N tokens")
    seed: int = Field(0, description="seed of the training data order and dropout")
    endpoint_split: Literal["test", "dev"] = Field(
        "test",
        description="split that picks the better endpoint of the table's baseline row: test (as "
        "in Qin et al.'s Tables 1-2, the endpoint better on the reported split) or dev (chosen "
        "like t, without looking at test)",
    )

    @field_validator("anchors")
    @classmethod
    def _two_anchors(cls, anchors: tuple[str, ...]) -> tuple[str, ...]:
        if len(anchors) != 2:
            raise ValueError(f"give exactly 2 checkpoints (the two minima), not {len(anchors)}")
        return anchors

    def checkpoints(self) -> list[Any]:
        """The two anchors as checkpoints: a path that exists wins over a name in ``zoo``.

        Training reads the tokenizer of the first anchor, so there is no tokenizer field.
        """
        return resolve_checkpoints(self.anchors, self.zoo, self.config)

    def splits(self) -> tuple[Any, Any, Any]:
        """``(train, dev, test)``: the train split (or its subset) and the evaluation subsets.

        On a text task, training minimises the language model's own loss
        (:mod:`weightscape.training.lm_batches`).
        """
        from weightscape.data import subset

        parts = self.task_splits()
        train = parts["train"]
        if self.train_examples is not None:
            train = subset(train, self.train_examples, seed=self.seed)
        dev, test = (
            subset(parts[name], self.subset, seed=self.subset_seed)
            for name in ("validation", "test")
        )
        return train, dev, test

    def training_values(self, fields: dict[str, str]) -> dict[str, Any]:
        """Keyword arguments of a training config: ``fields`` maps study field -> its field."""
        return {target: getattr(self, source) for source, target in fields.items()}


def selection_metric(task: Any) -> str:
    """The metric that picks t on dev and the better endpoint: accuracy (Qin et al.), or on a
    text task (no labels) the language model's loss, the number such a task is about."""
    return "accuracy" if getattr(task, "num_labels", None) is not None else "loss"


def _by(best: dict[str, Any]) -> str:
    """`` loss`` when the choice was made by a metric other than accuracy (a text task)."""
    metric = best.get("metric", "accuracy")
    return "" if metric == "accuracy" else f" {metric}"


def best_row(best: dict[str, Any], name: str) -> dict[str, Any]:
    """A table row of :func:`~weightscape.analyses.best_point.best_of_walks`'s chosen point."""
    return {
        "method": f"{name} (best t = {best['t']:.2f} on dev{_by(best)})",
        "t": best["t"],
        "dev": best["dev"],
        "test": best["test"],
    }


def endpoint_row(best: dict[str, Any]) -> dict[str, Any]:
    """The table row of the better endpoint, naming the split that chose it."""
    return {
        "method": (
            f"better endpoint on {best['endpoint_split']}{_by(best)} ({best['better_endpoint']})"
        ),
        "endpoint": best["better_endpoint"],
        "chosen_on": best["endpoint_split"],
        "dev": best["endpoint_dev"],
        "test": best["endpoint_test"],
    }
