"""Batched evaluation of the working model on a task, with inputs tokenised once.

Evaluation cost is forward passes over tokens, so the inputs are tokenised once per evaluator,
sorted by length and cut into batches by a token budget (:func:`token_budget_batches`): batches
of short inputs hold more examples, and a batch's inputs are so close in length that pad tokens
are at most a few percent of the tokens computed. The same padded batches are reused for every
point of a walk.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field, field_validator

from weightscape.data import Task
from weightscape.errors import WeightscapeError
from weightscape.evaluation.label_maps import get_label_map
from weightscape.evaluation.result import PointResult
from weightscape.logs import quiet_libraries
from weightscape.metrics.classification import classification_metrics
from weightscape.models.labels import column_order, names_from_id2label
from weightscape.settings import Settings


class EvalSettings(Settings):
    """Settings that change what an evaluation computes (part of every store key).

    ``batch_size`` is the most sequences of the task's longest (tokenised) length in one batch:
    every batch holds at most ``batch_size x`` that many tokens, padding included, so batches of
    shorter inputs hold more examples, and memory never peaks above that of ``batch_size``
    sequences of the longest length (the first batch of fixed-size batching).

    ``dtype`` is the working model's dtype (:func:`~weightscape.evaluation.working_model.
    working_dtype`): float32 whatever the anchors hold, bfloat16, float16, or ``anchors`` (their
    own dtype when they all agree). It is in every store key, the default included, so points
    that older versions computed in the reference config's dtype are never reused as float32.
    """

    batch_size: int = Field(64, ge=1)
    max_length: int = Field(128, ge=1)
    label_map: str | None = None  # e.g. "mnli_to_hans": 3-class NLI models on 2-class HANS
    # The class each output column of the model means, in column order, for checkpoints whose
    # config names none (or names them otherwise); None: read them from the config's id2label.
    model_labels: tuple[str, ...] | None = None
    dtype: Literal["float32", "bfloat16", "float16", "anchors"] = "float32"
    # Seed of the fixed mask of masked-LM evaluation (text tasks on *ForMaskedLM models): not in
    # spec(), since it changes nothing else; the engine keys masked-LM points by it
    # (weightscape.evaluation.lm_evaluator.mask_spec).
    mask_seed: int = Field(0, ge=0)

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
        """JSON-able form for store keys (the optional settings only when set).

        The batching rule is part of it: another rule pads other batches, which can move
        results in their last bits, so results of two rules are never mixed.
        """
        spec = {**self.model_dump(exclude={"mask_seed"}), "batching": BATCHING}
        for optional in ("label_map", "model_labels"):
            if spec[optional] is None:
                del spec[optional]
            elif optional == "model_labels":
                spec[optional] = list(spec[optional])
        return spec


@quiet_libraries("transformers")
def load_tokenizer(path: str | Path):
    """A tokenizer from a local directory (never the hub, never remote code); transformers'
    messages are quiet during the load only (:func:`weightscape.logs.quiet_libraries`)."""
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

# The batching rule in store keys: bump it whenever the rule or one of its constants changes.
BATCHING = "tokens/1"
# What one more forward pass costs beyond its tokens, in tokens: ~5 ms of dispatch per pass
# against ~0.15 ms per token for MiniLM-L6 with 2 CPU threads (23-45 tokens measured).
BATCH_OVERHEAD_TOKENS = 32
# Computed tokens (padding included) stay within this fraction above the real tokens.
PADDING_TOLERANCE = 0.04


def token_budget_batches(
    lengths: Sequence[int] | np.ndarray,
    batch_size: int,
    *,
    overhead: int = BATCH_OVERHEAD_TOKENS,
    tolerance: float = PADDING_TOLERANCE,
) -> list[np.ndarray]:
    """Example indices per batch, cut from the length-sorted order by a token budget.

    Every batch is a run of the examples sorted by length (longest first, ties in input order)
    whose padded size (examples x its longest length) fits ``batch_size x`` the longest length
    of all. Among such cuts, the one computing the fewest tokens plus ``overhead`` tokens per
    batch is chosen (so no tiny batch is cut off to save less padding than a forward pass costs);
    when that pads more than ``tolerance`` of the real tokens, the overhead is halved until it
    does not (at 0 the cut pads nothing, so the bound always holds).

    >>> [b.tolist() for b in token_budget_batches([2, 10, 3, 9, 10, 3], 2, overhead=0)]
    [[1, 4], [3], [2, 5], [0]]
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    if lengths.size == 0:
        return []
    order = np.argsort(-lengths, kind="stable")  # longest first: memory peaks at once
    desc = lengths[order]
    budget, real = int(batch_size * desc[0]), int(desc.sum())
    while True:
        cuts = _cheapest_cuts(desc, budget, overhead)
        computed = sum((end - start) * int(desc[start]) for start, end in cuts)
        if computed <= (1 + tolerance) * real or overhead == 0:
            return [order[start:end] for start, end in cuts]
        overhead //= 2


def _cheapest_cuts(desc: np.ndarray, budget: int, overhead: int) -> list[tuple[int, int]]:
    """``(start, end)`` runs of descending ``desc`` within ``budget`` padded tokens each that
    minimise computed tokens + ``overhead`` per run (dynamic programming over run ends)."""
    n = len(desc)
    cost = np.zeros(n + 1)  # cost[j]: the cheapest cut of desc[:j]
    start = np.zeros(n + 1, dtype=np.int64)  # where the last run of that cut starts
    first = 0  # the earliest start whose run to j fits the budget (it only moves forward)
    for end in range(1, n + 1):
        while (end - first) * desc[first] > budget:
            first += 1
        # a run [i, end) pads to its first (longest) length: (end - i) * desc[i] tokens
        runs = cost[first:end] + (end - np.arange(first, end)) * desc[first:end]
        best = int(np.argmin(runs))  # the first minimum: the longest run among equals
        cost[end], start[end] = runs[best] + overhead, first + best
    cuts, end = [], n
    while end > 0:
        cuts.append((int(start[end]), end))
        end = int(start[end])
    return cuts[::-1]


def padded_batches(tokenizer, encoded, groups: Sequence[np.ndarray], device) -> Batches:
    """``(example indices, model inputs on device)`` for each group of encoded examples, padded
    to the group's longest."""
    batches = []
    for idx in groups:
        features = [{k: encoded[k][i] for k in encoded} for i in idx]
        padded = tokenizer.pad(features, return_tensors="pt")
        batches.append((idx, {k: v.to(device) for k, v in padded.items()}))
    return batches


def tokenised_batches(
    tokenizer,
    task: Task,
    settings: EvalSettings,
    device: torch.device,
    *,
    equal_sizes: bool = False,
) -> Batches:
    """The task's examples tokenised once and padded per batch (:func:`token_budget_batches`).

    Args:
        equal_sizes: Cut the length-sorted order into batches of exactly ``batch_size``
            examples (the last one shorter) instead: for methods whose result depends on the
            batches themselves (sharpness averages per-batch losses), not just on the examples.

    Returns:
        ``(example indices, model inputs on device)`` per batch, longest batch first.
    """
    texts_b = list(task.text_b) if task.text_b is not None else None
    encoded = tokenizer(list(task.text_a), texts_b, truncation=True, max_length=settings.max_length)
    lengths = [len(ids) for ids in encoded["input_ids"]]
    if equal_sizes:
        order = np.argsort(-np.asarray(lengths), kind="stable")
        size = settings.batch_size
        groups = [order[i : i + size] for i in range(0, len(order), size)]
    else:
        groups = token_budget_batches(lengths, settings.batch_size)
    return padded_batches(tokenizer, encoded, groups, device)


def batch_tokens(batches: Batches) -> tuple[int, int]:
    """``(real, computed)`` tokens of padded batches: without and with the pad tokens."""
    real = computed = 0
    for _, inputs in batches:
        ids = inputs["input_ids"]
        mask = inputs.get("attention_mask")
        computed += ids.numel()
        real += int(mask.sum()) if mask is not None else ids.numel()
    return real, computed


class Evaluator:
    """Evaluates whatever weights the model holds on one task.

    Args:
        tokenizer: A Hugging Face tokenizer.
        task: The labelled examples to evaluate on.
        settings: Batch size (the token budget's unit) and truncation length.
        device: Where the batches go (the working model's device).

    Attributes:
        tokens: ``(real, computed)`` tokens of one pass: the examples' own tokens, and those
            plus the pad tokens the batches compute.
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
        self.tokenizer = tokenizer
        self.batches = tokenised_batches(tokenizer, task, self.settings, self.device)
        self.tokens = batch_tokens(self.batches)  # (real, computed): what one pass costs
        self.forward_passes = 0  # batches run; a cost counter for benchmarks and tests

    def equal_batches(self) -> Batches:
        """The examples in batches of exactly ``batch_size`` (length-sorted; the last one
        shorter), for methods that average per batch (:mod:`weightscape.analyses.sharpness`)."""
        return tokenised_batches(
            self.tokenizer, self.task, self.settings, self.device, equal_sizes=True
        )

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
