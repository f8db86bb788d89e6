"""Language-model losses of the working model on a text task: causal LM and masked LM.

Both score every document of a :class:`~weightscape.data.text_task.TextTask` by the negative log
likelihood (NLL) of its target tokens under the model's own head:

- **causal LM** (``*ForCausalLM``): each token from the ones before it, as transformers'
  ``model(input_ids, labels=input_ids).loss`` does (labels are the inputs shifted by one; the
  first token of a document is never a target; pad tokens never are).
- **masked LM** (``*ForMaskedLM``): a FIXED mask, so that every point of a walk is scored on the
  same positions and points are comparable. In each document, ``round(15%)`` (at least one) of
  its real, non-special tokens (ids not among the tokenizer's ``all_special_ids``: no [CLS],
  [SEP], [PAD], [UNK] or [MASK]) are chosen by ``numpy.random.default_rng([mask_seed, id])``
  (``id``: the document's row id, so a document keeps its mask in every split and subset) and
  replaced by the tokenizer's mask token (plain ``[MASK]``; not BERT's 80/10/10 rule, which would
  make the input itself random); the targets are the original tokens there. The seed, rate and
  rule are part of every store key (:func:`mask_spec`).

Per document: ``losses`` is its mean target NLL, ``predictions`` how many of its targets are the
model's argmax, ``tokens`` how many targets it has, ``p_true`` ``exp(-losses)``. The point's
``loss`` is token-weighted (the mean NLL over all target tokens of the task, each counting once:
``sum(losses * tokens) / sum(tokens)``), ``perplexity`` is ``exp(loss)``, ``accuracy`` the
fraction of targets predicted (:func:`~weightscape.metrics.language_model.text_metrics`).

Inputs are tokenised once and batched by the same token budget as classification
(:func:`~weightscape.evaluation.evaluator.token_budget_batches`), padded on the right.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from weightscape.data.text_task import TextTask
from weightscape.errors import WeightscapeError
from weightscape.evaluation.evaluator import (
    Batches,
    EvalSettings,
    batch_tokens,
    token_budget_batches,
)
from weightscape.evaluation.result import PointResult
from weightscape.metrics.language_model import text_metrics
from weightscape.models.architecture import (
    checkpoint_architectures,
    lm_objective,
    not_a_language_model,
)
from weightscape.models.checkpoint import Checkpoint

OBJECTIVES = ("causal-lm", "masked-lm")
MASK_RATE = 0.15
MASK_RULE = "mask-token/1"  # every chosen position becomes [MASK]; bump if the rule changes
IGNORE = -100  # target of a position that is not scored


def mask_spec(seed: int) -> dict[str, Any]:
    """What identifies a masked-LM mask, for store keys.

    >>> mask_spec(3)
    {'seed': 3, 'rate': 0.15, 'rule': 'mask-token/1'}
    """
    return {"seed": int(seed), "rate": MASK_RATE, "rule": MASK_RULE}


def mask_positions(candidates: int, seed: int, row_id: int, rate: float = MASK_RATE) -> np.ndarray:
    """Sorted positions (in ``range(candidates)``) masked in one document.

    ``round(rate * candidates)`` of them (Python's ``round``), at least one, drawn without
    replacement by ``numpy.random.default_rng([seed, row_id])``.

    >>> mask_positions(20, seed=0, row_id=7).size
    3
    >>> bool(np.array_equal(mask_positions(20, 0, 7), mask_positions(20, 0, 7)))
    True
    """
    count = max(1, round(rate * candidates))  # Python's round: half to even
    rng = np.random.default_rng([int(seed), int(row_id)])
    return np.sort(rng.choice(candidates, size=count, replace=False))


class LMEvaluator:
    """Scores whatever weights a language model holds on one text task.

    Args:
        tokenizer: The model's Hugging Face tokenizer.
        task: The documents.
        objective: ``"causal-lm"`` or ``"masked-lm"``.
        settings: Batch size (the token budget's unit), truncation length and, for a masked
            LM, the mask seed (``settings.mask_seed``).
        device: Where the batches go (the working model's device).

    Attributes:
        batches: ``(document indices, model inputs)`` per batch, longest first.
        targets: The target ids of each batch, ``IGNORE`` where nothing is scored.
        tokens: ``(real, computed)`` input tokens of one pass, without and with padding.

    Raises:
        WeightscapeError: For a document with no target (one token for a causal LM; no
            non-special token for a masked LM), or a masked LM whose tokenizer has no mask token.
    """

    def __init__(
        self,
        tokenizer,
        task: TextTask,
        objective: str,
        settings: EvalSettings | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        if objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, not {objective!r}")
        self.task = task
        self.objective = objective
        self.settings = settings or EvalSettings()
        self.device = torch.device(device)
        self.forward_passes = 0
        inputs, targets = self._encode(tokenizer)
        pad = _pad_id(tokenizer)
        groups = token_budget_batches([len(ids) for ids in inputs], self.settings.batch_size)
        self.batches: Batches = []
        self.targets: list[torch.Tensor] = []
        for idx in groups:
            batch, target = _pad([inputs[i] for i in idx], [targets[i] for i in idx], pad)
            self.batches.append((idx, {k: v.to(self.device) for k, v in batch.items()}))
            self.targets.append(target.to(self.device))
        self.tokens = batch_tokens(self.batches)

    def _encode(self, tokenizer) -> tuple[list[list[int]], list[list[int]]]:
        """Token ids and target ids (``IGNORE`` where not scored) of every document."""
        masked = self.objective == "masked-lm"
        if masked and tokenizer.mask_token_id is None:
            raise WeightscapeError(
                f"The tokenizer ({type(tokenizer).__name__}) has no mask token, so a masked "
                "language model cannot be scored with it. Give the model's own tokenizer "
                "(--tokenizer)."
            )
        encoded = tokenizer(
            list(self.task.texts), truncation=True, max_length=self.settings.max_length
        )
        seed = self.settings.mask_seed
        special = set(tokenizer.all_special_ids)
        inputs, targets, empty = [], [], []
        for row, ids in enumerate(encoded["input_ids"]):
            ids = list(ids)
            if masked:
                candidates = [i for i, token in enumerate(ids) if token not in special]
                target = [IGNORE] * len(ids)
                if candidates:
                    row_id = int(self.task.ids[row])
                    for k in mask_positions(len(candidates), seed, row_id):
                        position = candidates[k]
                        target[position] = ids[position]
                        ids[position] = tokenizer.mask_token_id
            else:
                target = [*ids[1:], IGNORE]  # position i predicts token i + 1
            if all(t == IGNORE for t in target):
                empty.append(int(self.task.ids[row]))
            inputs.append(ids)
            targets.append(target)
        if empty:
            need = "a non-special token" if masked else "at least 2 tokens"
            raise WeightscapeError(
                f"Text task '{self.task.name}': documents with ids {empty[:10]} have nothing to "
                f"score ({self.objective} needs {need} per document after tokenisation). Drop "
                "them from the data."
            )
        return inputs, targets

    @torch.inference_mode()
    def evaluate(self, model: torch.nn.Module) -> PointResult:
        """Loss, perplexity, token accuracy and per-document outcomes of the model as it is."""
        n = len(self.task)
        losses = np.empty(n, dtype=np.float64)
        correct = np.empty(n, dtype=np.int64)
        counts = np.empty(n, dtype=np.int64)
        all_targets, all_predicted, all_nll = [], [], []
        for (idx, inputs), target in zip(self.batches, self.targets, strict=True):
            logits = model(**inputs).logits  # (batch, length, vocab)
            scored = target != IGNORE  # (batch, length)
            chosen = logits[scored].float()  # (scored tokens, vocab), row-major over the batch
            wanted = target[scored]
            nll = -torch.log_softmax(chosen, dim=-1).gather(1, wanted[:, None])[:, 0]
            predicted = chosen.argmax(-1)
            per_row = scored.sum(1).cpu().numpy()
            bounds = np.concatenate([[0], np.cumsum(per_row)])
            nll_np = nll.double().cpu().numpy()
            right = (predicted == wanted).cpu().numpy()
            for j, i in enumerate(idx):
                part = slice(bounds[j], bounds[j + 1])
                losses[i] = nll_np[part].mean()
                correct[i] = int(right[part].sum())
                counts[i] = int(per_row[j])
            all_targets.append(wanted.cpu().numpy())
            all_predicted.append(predicted.cpu().numpy())
            all_nll.append(nll_np)
            self.forward_passes += 1
        metrics = text_metrics(
            np.concatenate(all_targets),
            np.concatenate(all_predicted),
            np.concatenate(all_nll),
            int(logits.shape[-1]),
        )
        return PointResult(
            metrics=metrics,
            predictions=correct,
            p_true=np.exp(-losses).astype(np.float32),
            losses=losses.astype(np.float32),
            tokens=counts,
        )


def _pad_id(tokenizer) -> int:
    """Any id works for padding (pads are masked out and never scored); the tokenizer's pad
    token, else its end-of-text token, else 0 (GPT-2 and Llama tokenizers often have no pad)."""
    for candidate in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if candidate is not None:
            return int(candidate)
    return 0


def _pad(
    inputs: list[list[int]], targets: list[list[int]], pad: int
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Right-padded ``input_ids`` and ``attention_mask`` (so positions count from the first real
    token, as for one document alone), and the targets padded with ``IGNORE``."""
    width = max(len(ids) for ids in inputs)
    ids = torch.full((len(inputs), width), pad, dtype=torch.long)
    mask = torch.zeros((len(inputs), width), dtype=torch.long)
    target = torch.full((len(inputs), width), IGNORE, dtype=torch.long)
    for row, (tokens, wanted) in enumerate(zip(inputs, targets, strict=True)):
        ids[row, : len(tokens)] = torch.tensor(tokens)
        mask[row, : len(tokens)] = 1
        target[row, : len(wanted)] = torch.tensor(wanted)
    return {"input_ids": ids, "attention_mask": mask}, target


def task_objective(task: Any, reference: Checkpoint, probe: object = None) -> str | None:
    """The language-model objective a text task is scored by on ``reference``'s architecture
    (``"causal-lm"``/``"masked-lm"``), or None for a classification task.

    Raises:
        WeightscapeError: For a text task on a checkpoint that is no language model, or with a
            probe (a linear classification head has no labels to fit on documents).
    """
    if not isinstance(task, TextTask):
        return None
    if probe is not None:
        raise WeightscapeError(
            f"--probe-train fits a linear classification head, and the text task '{task.name}' "
            "has no labels. Drop --probe-train to score the language model's own head."
        )
    architectures = checkpoint_architectures(reference)
    objective = lm_objective(architectures)
    if objective is None:
        raise WeightscapeError(not_a_language_model(reference, architectures))
    return objective


def check_classifiable(task: Any, anchors: Sequence[Checkpoint]) -> None:
    """Refuse a classification task when every anchor is a language model (no anchor has a
    classification head to read labels from); a base LM beside classifiers finetuned from it
    is fine (the base -> finetuned line)."""
    found = [lm_objective(checkpoint_architectures(c)) for c in anchors]
    if isinstance(task, TextTask) or not all(found):
        return
    names = ", ".join(f"'{c.name}'" for c in anchors)
    raise WeightscapeError(
        f"Task '{task.name}' is a classification task, but every anchor ({names}) is a language "
        f"model ({', '.join(sorted(set(map(str, found))))}) with no classification head. Score "
        "them on a text task (--task text:PATH), or give classifiers."
    )
