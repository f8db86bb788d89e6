"""Batched evaluation of the working model on a task, with inputs tokenised once.

Evaluation cost is forward passes over tokens, so the inputs are tokenised once per evaluator,
sorted by length and padded per batch (batches of similar length waste few pad tokens). The same
padded batches are reused for every point of a walk.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from weightscape.data import Task
from weightscape.errors import WeightscapeError
from weightscape.evaluation.label_maps import get_label_map
from weightscape.evaluation.result import PointResult
from weightscape.metrics.classification import classification_metrics


@dataclass(frozen=True)
class EvalSettings:
    """Settings that change what an evaluation computes (part of every store key)."""

    batch_size: int = 64
    max_length: int = 128
    label_map: str | None = None  # e.g. "mnli_to_hans": 3-class NLI models on 2-class HANS

    def __post_init__(self) -> None:
        for field_name in ("batch_size", "max_length"):
            value = getattr(self, field_name)
            if not isinstance(value, int) or value < 1:
                raise WeightscapeError(
                    f"The '{field_name}' setting must be an int >= 1. Got {value!r} instead."
                )
        if self.label_map is not None:
            get_label_map(self.label_map)  # unknown names fail here, listing the valid ones

    def spec(self) -> dict[str, int | str]:
        """JSON-able form for store keys (the label map only when one is set, so keys of
        unmapped evaluations stay what they were)."""
        spec = asdict(self)
        if self.label_map is None:
            del spec["label_map"]
        return spec


def load_tokenizer(path: str | Path):
    """A tokenizer from a local directory (never the hub, never remote code)."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError) as err:
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
        label_map = get_label_map(self.settings.label_map) if self.settings.label_map else None
        num_labels = len(label_map.names) if label_map else model.config.num_labels
        if num_labels != self.task.num_labels:
            mapped = f" after label map '{self.settings.label_map}'" if label_map else ""
            raise WeightscapeError(
                f"The model has {num_labels} output labels{mapped} but task '{self.task.name}' "
                f"has {self.task.num_labels} ({', '.join(self.task.label_names)}). Evaluate on a "
                "task with the model's label set, or give a label map (e.g. mnli_to_hans)."
            )
        n = len(self.labels)
        predictions = np.empty(n, dtype=np.int64)
        p_true = np.empty(n, dtype=np.float32)
        losses = np.empty(n, dtype=np.float32)
        labels_t = torch.as_tensor(self.labels, device=self.device)
        for idx, inputs in self.batches:
            logits = model(**inputs).logits.float()
            if label_map is not None:
                logits = label_map.apply(logits)
            log_probs = torch.log_softmax(logits, dim=-1)
            true = labels_t[torch.as_tensor(idx, device=self.device)]
            lp_true = log_probs.gather(1, true[:, None])[:, 0]
            predictions[idx] = logits.argmax(-1).cpu().numpy()
            p_true[idx] = lp_true.exp().cpu().numpy()
            losses[idx] = (-lp_true).cpu().numpy()
            self.forward_passes += 1
        metrics = classification_metrics(self.labels, predictions, losses, num_labels)
        return PointResult(metrics=metrics, predictions=predictions, p_true=p_true, losses=losses)
