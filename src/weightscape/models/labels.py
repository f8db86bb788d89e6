"""What each output column of a classifier means, and how it lines up with a task's labels.

A classifier's logits come in the order of its config's ``id2label``; a task's labels are indices
into its own ``label_names``. Scoring one against the other by index silently assumes the two
orders agree, and they often do not: Juneja et al.'s MNLI models and ``roberta-large-mnli`` order
the same three classes (contradiction, entailment, neutral) unlike the (entailment, neutral,
contradiction) of most MNLI datasets, so the same classifier would score 1.000 or 0.000 depending
on an order nobody looked at. Columns are therefore matched by *name*; when the checkpoint names
no labels (``LABEL_0``, ``LABEL_1``, ... are transformers' placeholders) or its names are not the
task's, nothing is guessed: the user states the model's labels (``--model-labels``) or gets one
error listing both label sets.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from weightscape.errors import WeightscapeError

_PLACEHOLDER = re.compile(r"LABEL_\d+")


def names_from_id2label(id2label: Mapping[Any, Any] | None) -> tuple[str, ...] | None:
    """The label names in column order, or None when a config names no labels.

    transformers fills ``id2label`` with ``LABEL_0``, ``LABEL_1``, ... when nobody named them;
    those mean "unknown", not names.

    >>> names_from_id2label({"1": "positive", "0": "negative"})
    ('negative', 'positive')
    >>> names_from_id2label({0: "LABEL_0", 1: "LABEL_1"}) is None
    True
    """
    if not id2label:
        return None
    try:
        columns = sorted((int(k), str(v)) for k, v in id2label.items())
    except (TypeError, ValueError):
        return None
    if [k for k, _ in columns] != list(range(len(columns))):
        return None
    names = tuple(v for _, v in columns)
    if all(_PLACEHOLDER.fullmatch(n) for n in names):
        return None
    return names


def config_label_names(config_json: Any) -> tuple[str, ...] | None:
    """Label names of a ``config.json`` file (a path) or of a transformers config object."""
    if hasattr(config_json, "id2label"):
        return names_from_id2label(config_json.id2label)
    try:
        raw = json.loads(open(config_json).read())  # noqa: SIM115 (small file, read once)
    except (OSError, ValueError):
        return None
    return names_from_id2label(raw.get("id2label")) if isinstance(raw, dict) else None


def _normal(name: str) -> str:
    return name.strip().lower()


def column_order(
    model_names: Sequence[str] | None,
    wanted: Sequence[str],
    *,
    model: str,
    target: str,
) -> tuple[int, ...]:
    """The model's column for each wanted label, matched by name (case and spaces ignored).

    ``logits[:, column_order(...)]`` lists the wanted labels' logits in the wanted order.

    Args:
        model_names: The model's label names in column order (None: the checkpoint names none).
        wanted: The label names the evaluation needs, in its order (a task's labels, or the source
            classes a label map was written for).
        model: What the model names are (for the message), e.g. ``checkpoint 'a' (config.json)``.
        target: What the wanted names are, e.g. ``task 'rte'``.

    Raises:
        WeightscapeError: When the model names no labels, or its names are not the wanted ones.

    >>> column_order(("contradiction", "entailment", "neutral"),
    ...              ("entailment", "neutral", "contradiction"), model="m", target="t")
    (1, 2, 0)
    """
    fix = (
        "If you know which class each output column means, give the names in column order with "
        "--model-labels (EvalSettings.model_labels), e.g. --model-labels " + ",".join(wanted) + "."
    )
    if model_names is None:
        raise WeightscapeError(
            f"{model[0].upper()}{model[1:]} names no labels (id2label is LABEL_0, LABEL_1, ...), "
            f"so which output column is which label of {target} ({', '.join(wanted)}) cannot be "
            f"told. {fix}"
        )
    index = {_normal(n): i for i, n in enumerate(model_names)}
    integers = tuple(str(i) for i in range(len(wanted)))
    if tuple(wanted) == integers and tuple(model_names) != integers:
        raise WeightscapeError(
            f"{target[0].upper()}{target[1:]} has bare integer labels ({', '.join(wanted)}) and "
            f"{model} names its columns {', '.join(model_names)}: which integer means which "
            "class cannot be told. If label i is the model's column i, say so with "
            f"--model-labels {','.join(integers)}; or give the data the class names as labels."
        )
    if len(index) != len(model_names) or any(_normal(w) not in index for w in wanted):
        raise WeightscapeError(
            f"The labels of {model} ({', '.join(model_names)}) are not the labels of {target} "
            f"({', '.join(wanted)}), so scores would pair unrelated classes. Evaluate on a task "
            f"with the model's labels, give a label map (--label-map), or, if the names only "
            f"differ in spelling, state the model's in column order with --model-labels."
        )
    return tuple(index[_normal(w)] for w in wanted)


def checkpoint_label_names(checkpoint: Any) -> tuple[str, ...] | None:
    """The label names in the config of a :class:`~weightscape.models.checkpoint.Checkpoint`."""
    return config_label_names(checkpoint.config_dir() / "config.json")


def check_same_label_order(checkpoints: Sequence[Any]) -> None:
    """Refuse to mix classification heads whose output rows mean different classes.

    Averaging the heads of two classifiers that order their labels differently averages the
    entailment row of one with the contradiction row of the other: a silently wrong model.

    Raises:
        WeightscapeError: Listing each checkpoint's labels when they are not all the same.
    """
    orders = {}
    for checkpoint in checkpoints:
        names = checkpoint_label_names(checkpoint)
        orders[checkpoint.name] = None if names is None else tuple(_normal(n) for n in names)
    if len(set(orders.values())) > 1:
        listed = "; ".join(
            f"'{name}': {', '.join(order) if order else 'unnamed (LABEL_0, LABEL_1, ...)'}"
            for name, order in orders.items()
        )
        raise WeightscapeError(
            "The anchors' classification heads order their labels differently, so mixing them "
            f"would mix rows of different classes ({listed}). Re-save the checkpoints with one "
            "label order, leave the head out of the parameter space (--space no-head), or use "
            "the generalised loss (--probe-train), which ignores the heads."
        )
