"""Training batches: tokenised once, padded per batch, in a seeded order reshuffled each epoch."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from weightscape.data import Task


def training_batches(
    tokenizer, task: Task, *, batch_size: int, max_length: int, seed: int
) -> Iterator[tuple[dict[str, Any], Any]]:
    """Endless stream of (padded inputs, labels) batches; the order depends only on ``seed``.

    Batches are full (the last partial batch of an epoch is dropped) unless the task is smaller
    than one batch.
    """
    import torch

    texts_b = list(task.text_b) if task.text_b is not None else None
    encoded = tokenizer(list(task.text_a), texts_b, truncation=True, max_length=max_length)
    rng = np.random.default_rng(seed)
    labels = torch.tensor(np.asarray(task.labels), dtype=torch.long)
    while True:
        order = rng.permutation(len(task))
        for start in range(0, max(len(order) - batch_size + 1, 1), batch_size):
            idx = order[start : start + batch_size]
            features = [{k: encoded[k][i] for k in encoded} for i in idx]
            yield tokenizer.pad(features, return_tensors="pt"), labels[idx]
