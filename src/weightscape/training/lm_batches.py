"""Training a mixer on a text task: language-model batches and their loss.

Curve fitting and learned combinations (:mod:`weightscape.training.mixing`) minimise a loss of
the mixed model over training batches. On a text task that loss is the language model's own:
the mean negative log likelihood of the target tokens of a batch (each target token counting
once), as transformers' ``model(..., labels=...).loss`` computes it. The targets are exactly
those the evaluation scores (:class:`~weightscape.evaluation.lm_evaluator.LMEvaluator`): the
next token for a causal LM; for a masked LM the fixed seeded mask (``mask_seed``), so the fit
minimises the number the walk then reports.

Batches are the evaluator's (documents grouped by the same token budget, ``batch_size``
documents of the longest length), visited in a seeded random order, epoch after epoch.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from weightscape.data.text_task import TextTask
from weightscape.evaluation.evaluator import EvalSettings
from weightscape.evaluation.lm_evaluator import IGNORE, LMEvaluator

__all__ = ["lm_evaluator_for", "lm_training_batches", "prepare_lm_pair", "token_loss"]


def lm_training_batches(
    tokenizer: Any,
    task: TextTask,
    objective: str,
    *,
    batch_size: int,
    max_length: int,
    seed: int,
    mask_seed: int = 0,
) -> Iterator[tuple[dict[str, torch.Tensor], torch.Tensor]]:
    """Endless stream of ``(inputs, targets)``; targets are ``IGNORE`` where nothing is scored.

    The order depends only on ``seed``: each epoch visits every batch once, in a permutation
    drawn by ``numpy.random.default_rng(seed)``.
    """
    settings = EvalSettings(batch_size=batch_size, max_length=max_length, mask_seed=mask_seed)
    evaluator = LMEvaluator(tokenizer, task, objective, settings)
    batches = [
        (inputs, target)
        for (_, inputs), target in zip(evaluator.batches, evaluator.targets, strict=True)
    ]
    rng = np.random.default_rng(seed)
    while True:
        for i in rng.permutation(len(batches)):
            yield batches[i]


def token_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean negative log likelihood of the target tokens (``IGNORE`` elsewhere).

    ``logits`` (batch, length, vocabulary), ``targets`` (batch, length).

    >>> logits = torch.zeros(1, 2, 4)  # uniform over 4 tokens: NLL log 4 at each target
    >>> float(token_loss(logits, torch.tensor([[IGNORE, 3]]))) == float(torch.log(torch.tensor(4.)))
    True
    """
    return torch.nn.functional.cross_entropy(
        logits.flatten(0, 1).float(), targets.flatten(), ignore_index=IGNORE
    )


def prepare_lm_pair(
    a: Any, b: Any, train: TextTask, space: Any, *, batch_size: int, max_length: int, seed: int
) -> Any:
    """The language model (its class from ``a``'s ``config.architectures``), the frozen anchors
    and the training batches of a text task, as
    :func:`~weightscape.training.mixing.prepare_pair` returns them for a classification task.

    A masked LM trains on the fixed mask of seed 0 (the evaluation's default mask rule).

    Raises:
        WeightscapeError: When ``a`` is no causal or masked language model.
    """
    from weightscape.errors import WeightscapeError
    from weightscape.evaluation.engine import tokenizer_dir
    from weightscape.evaluation.evaluator import load_tokenizer
    from weightscape.models.architecture import (
        build_model,
        checkpoint_architectures,
        lm_objective,
        not_a_language_model,
    )
    from weightscape.training.mixing import FrozenAnchors, PairSetup

    architectures = checkpoint_architectures(a)
    objective = lm_objective(architectures)
    if objective is None:
        raise WeightscapeError(not_a_language_model(a, architectures))
    model = build_model(a, task_kind="text")
    anchors = FrozenAnchors([a, b], model, space)
    tokenizer = load_tokenizer(tokenizer_dir(a))
    batches = lm_training_batches(
        tokenizer,
        train,
        objective,
        batch_size=batch_size,
        max_length=max_length,
        seed=seed,
    )
    return PairSetup(model, anchors, tokenizer, batches)


def lm_evaluator_for(a: Any, tokenizer: Any, task: TextTask, max_length: int) -> LMEvaluator:
    """The evaluator of ``task`` by ``a``'s language-model objective (causal or masked)."""
    from weightscape.models.architecture import checkpoint_architectures, lm_objective

    objective = lm_objective(checkpoint_architectures(a)) or "causal-lm"  # checked by training
    return LMEvaluator(tokenizer, task, objective, EvalSettings(max_length=max_length))
