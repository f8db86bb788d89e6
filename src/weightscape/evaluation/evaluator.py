"""Batched evaluation of the working model on a task, with inputs tokenised once.

Evaluation cost is forward passes over tokens, so the inputs are tokenised once per evaluator,
sorted by length and padded per batch (batches of similar length waste few pad tokens). The same
padded batches are reused for every point of a walk.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import Field, field_validator

from weightscape.data import Task
from weightscape.errors import WeightscapeError
from weightscape.evaluation.label_maps import get_label_map
from weightscape.evaluation.result import PointResult
from weightscape.metrics.classification import classification_metrics
from weightscape.models.labels import column_order, names_from_id2label
from weightscape.settings import Settings


class EvalSettings(Settings):
    """Settings that change what an evaluation computes (part of every store key)."""

    batch_size: int = Field(64, ge=1)
    max_length: int = Field(128, ge=1)
    label_map: str | None = None  # e.g. "mnli_to_hans": 3-class NLI models on 2-class HANS
    # The class each output column of the model means, in column order, for checkpoints whose
    # config names none (or names them otherwise); None: read them from the config's id2label.
    model_labels: tuple[str, ...] | None = None

    @field_validator("label_map")
    @classmethod
    def _known_map(cls, name: str | None) -> str | None:
        if name is not None:
            get_label_map(name)  # unknown names fail here, listing the valid ones
        return name

    @field_validator("model_labels")
    @classmethod
    def _distinct_names(cls, names: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if names is None:
            return None
        stripped = tuple(str(n).strip() for n in names)
        if not stripped or not all(stripped) or len({n.lower() for n in stripped}) != len(names):
            raise ValueError(
                "the model labels (--model-labels) must be distinct, non-empty names, one per "
                "output column in column order"
            )
        return stripped

    def spec(self) -> dict[str, Any]:
        """JSON-able form for store keys (the optional settings only when set)."""
        spec = self.model_dump()
        for optional in ("label_map", "model_labels"):
            if spec[optional] is None:
                del spec[optional]
            elif optional == "model_labels":
                spec[optional] = list(spec[optional])
        return spec


def load_tokenizer(path: str | Path):
    """A tokenizer from a local directory (never the hub, never remote code)."""
    from transformers import AutoTokenizer

    from weightscape.models.architecture import raise_if_remote_code

    if not Path(path).is_dir():
        raise WeightscapeError(
            f"The tokenizer folder '{path}' does not exist. Give a local folder with tokenizer "
            "files (--tokenizer); Hugging Face Hub ids are not downloaded."
        )
    try:
        return AutoTokenizer.from_pretrained(
            str(path), local_files_only=True, trust_remote_code=False
        )
    except (OSError, ValueError) as err:
        raise_if_remote_code(path, err)
        raise WeightscapeError(
            f"Cannot load a tokenizer from '{path}': {err}. Give a directory "
            "with tokenizer files (--tokenizer)."
        ) from err


Batches = list[tuple[np.ndarray, dict[str, torch.Tensor]]]


def tokenised_batches(
    tokenizer, task: Task, settings: EvalSettings, device: torch.device
) -> Batches:
    """The task's examples tokenised once, sorted by length and padded per batch.

    Returns:
        ``(example indices, model inputs on device)`` per batch, longest batch first.
    """
    texts_b = list(task.text_b) if task.text_b is not None else None
    encoded = tokenizer(list(task.text_a), texts_b, truncation=True, max_length=settings.max_length)
    lengths = np.array([len(ids) for ids in encoded["input_ids"]])
    order = np.argsort(-lengths, kind="stable")  # longest first: memory peaks at once
    batches = []
    for start in range(0, len(order), settings.batch_size):
        idx = order[start : start + settings.batch_size]
        features = [{k: encoded[k][i] for k in encoded} for i in idx]
        padded = tokenizer.pad(features, return_tensors="pt")
        batches.append((idx, {k: v.to(device) for k, v in padded.items()}))
    return batches


class Evaluator:
    """Evaluates whatever weights the model holds on one task.

    Args:
        tokenizer: A Hugging Face tokenizer.
        task: The labelled examples to evaluate on.
        settings: Batch size and truncation length.
        device: Where the batches go (the working model's device).
    """

    def __init__(
        self,
        tokenizer,
        task: Task,
        settings: EvalSettings | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        self.task = task
        self.settings = settings or EvalSettings()
        self.device = torch.device(device)
        self.labels = np.array(task.labels, dtype=np.int64)  # a writable copy for torch
        self.batches = tokenised_batches(tokenizer, task, self.settings, self.device)
        self.forward_passes = 0  # batches run; a cost counter for benchmarks and tests

    @torch.inference_mode()
    def evaluate(self, model: torch.nn.Module) -> PointResult:
        """Loss, accuracy, macro-F1, MCC and per-example outcomes of the model as it is now."""
        read = TaskLogits(model.config, self.task, self.settings)
        num_labels = self.task.num_labels
        n = len(self.labels)
        predictions = np.empty(n, dtype=np.int64)
        p_true = np.empty(n, dtype=np.float32)
        losses = np.empty(n, dtype=np.float32)
        labels_t = torch.as_tensor(self.labels, device=self.device)
        for idx, inputs in self.batches:
            logits = read(model(**inputs).logits.float())
            log_probs = torch.log_softmax(logits, dim=-1)
            true = labels_t[torch.as_tensor(idx, device=self.device)]
            lp_true = log_probs.gather(1, true[:, None])[:, 0]
            predictions[idx] = logits.argmax(-1).cpu().numpy()
            p_true[idx] = lp_true.exp().cpu().numpy()
            losses[idx] = (-lp_true).cpu().numpy()
            self.forward_passes += 1
        metrics = classification_metrics(self.labels, predictions, losses, num_labels)
        return PointResult(metrics=metrics, predictions=predictions, p_true=p_true, losses=losses)


class TaskLogits:
    """Turns a model's logits into the task's classes, in the task's label order.

    The model's output columns are matched to the task's labels by name (its config's
    ``id2label``, or ``settings.model_labels``), through the label map when one is set; see
    :mod:`weightscape.models.labels`. Built once per evaluation from the model's config, so a
    mismatch is reported before any batch runs.

    Raises:
        WeightscapeError: When the label counts differ, or the names cannot be matched.
    """

    def __init__(self, config: Any, task: Task, settings: EvalSettings) -> None:
        label_map = get_label_map(settings.label_map) if settings.label_map else None
        columns = int(config.num_labels)
        mapped = len(label_map.names) if label_map else columns
        if mapped != task.num_labels:
            via = f" after label map '{settings.label_map}'" if label_map else ""
            raise WeightscapeError(
                f"The model has {mapped} output labels{via} but task '{task.name}' "
                f"has {task.num_labels} ({', '.join(task.label_names)}). Evaluate on a "
                "task with the model's label set, or give a label map (e.g. mnli_to_hans)."
            )
        names = settings.model_labels or names_from_id2label(getattr(config, "id2label", None))
        if settings.model_labels is not None and len(names) != columns:
            raise WeightscapeError(
                f"--model-labels names {len(names)} classes ({', '.join(names)}) but the model "
                f"has {columns} output columns. Give one name per column, in column order."
            )
        where = "the model" + (" (--model-labels)" if settings.model_labels else "'s config.json")
        self.label_map = label_map
        if label_map is None:
            self.columns = _columns(names, task.label_names, where, f"task '{task.name}'", columns)
            self.targets = None
            return
        if label_map.sources is None:
            raise WeightscapeError(
                f"Label map '{settings.label_map}' does not name its source classes (sources=), "
                "so a model's columns cannot be matched to it by name. Give it sources."
            )
        target = f"label map '{settings.label_map}'"
        self.columns = _columns(names, label_map.sources, where, target, columns)
        self.targets = column_order(
            label_map.names, task.label_names, model=target, target=f"task '{task.name}'"
        )

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        """``(batch, columns)`` model logits -> ``(batch, task classes)`` in task order."""
        logits = logits[:, list(self.columns)]
        if self.label_map is None:
            return logits
        return self.label_map.apply(logits)[:, list(self.targets)]


def _columns(
    names: Sequence[str] | None, wanted: Sequence[str], where: str, target: str, columns: int
) -> tuple[int, ...]:
    """Column order by name; a model without names and a task whose labels are bare integers
    (``"0"``, ``"1"``, ... as integer label columns load) agree by index: both only say "class
    i", so there is no order to get wrong."""
    if names is None and tuple(wanted) == tuple(str(i) for i in range(columns)):
        return tuple(range(columns))
    return column_order(names, wanted, model=where, target=target)
