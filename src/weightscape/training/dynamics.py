"""Training dynamics: the true label's probability on tracked training examples during finetuning.

Dataset cartography (Swayamdipta et al. 2020; Qin et al. 2022 use it to characterise what a path
between minima forgets and learns) needs, for each training example, the probability the model
gave its true label at several points of training. Swayamdipta et al. record after each epoch;
runs here are often shorter than one epoch (steps x batch size < examples), so the recorder
records **every K optimiser steps, and at the last step** (K = ``dynamics_every``; by default
``max(1, steps // 10)``, about ten points). Step 0 (the untrained head) is not recorded, as an
epoch-end record never is.

The tracked examples are a seeded subset (seed :data:`DYNAMICS_SEED`, so runs on one task track
the same examples) of the run's own training data, after ``data_half`` and ``train_size``. Each
record is a forward pass in eval mode (no dropout) without gradients, so it neither consumes
random numbers nor changes training: a run trains to the same weights with or without it.

The run folder gets ``dynamics.npz``: ``ids`` (row ids into the full dataset, shape (n,)),
``labels`` (n,), ``steps`` (P,), ``p_true`` (P, n) float32, ``predictions`` (P, n) int64, and
``task`` (the training task's name), written atomically.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from weightscape.data import Task, subset
from weightscape.errors import WeightscapeError

__all__ = [
    "DYNAMICS_FILE",
    "DYNAMICS_SEED",
    "DynamicsRecorder",
    "TrainingDynamics",
    "find_dynamics",
    "load_dynamics",
    "record_steps",
    "start_recording",
]

DYNAMICS_FILE = "dynamics.npz"
DYNAMICS_SEED = 0


def record_steps(total_steps: int, every: int | None) -> list[int]:
    """The steps at which dynamics are recorded: every ``every`` steps and the last one.

    >>> record_steps(25, 10), record_steps(120, None)[:3], record_steps(3, None)
    ([10, 20, 25], [12, 24, 36], [1, 2, 3])
    """
    every = max(1, total_steps // 10) if every is None else every
    return sorted(set(range(every, total_steps + 1, every)) | {total_steps})


@dataclass(frozen=True)
class TrainingDynamics:
    """What one run recorded; arrays as in ``dynamics.npz`` (see the module docstring)."""

    ids: np.ndarray
    labels: np.ndarray
    steps: np.ndarray
    p_true: np.ndarray
    predictions: np.ndarray
    task: str

    def cartography(self):
        """Per-example confidence, variability and correctness (:mod:`.metrics.cartography`)."""
        from weightscape.metrics.cartography import cartography

        return cartography(self.p_true, self.predictions, self.labels)

    def save(self, path: str | Path) -> Path:
        """Write to ``path`` atomically: a killed run never leaves half a file."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.partial-{os.getpid()}")
        with partial.open("wb") as handle:
            np.savez_compressed(
                handle,
                ids=self.ids,
                labels=self.labels,
                steps=self.steps,
                p_true=self.p_true,
                predictions=self.predictions,
                task=np.array(self.task),
            )
        partial.replace(path)
        return path


def load_dynamics(path: str | Path) -> TrainingDynamics:
    """Read a ``dynamics.npz`` written by :class:`DynamicsRecorder`."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as arrays:
            fields = {k: arrays[k] for k in ("ids", "labels", "steps", "p_true", "predictions")}
            task = str(arrays["task"])
    except (OSError, ValueError, KeyError) as err:
        raise WeightscapeError(
            f"Cannot read training dynamics from '{path}': {err}. Finetune the run again with "
            "--dynamics-examples N to rewrite it."
        ) from err
    return TrainingDynamics(**fields, task=task)


def find_dynamics(checkpoint_path: str | Path) -> Path | None:
    """The ``dynamics.npz`` of the run a checkpoint belongs to, or None.

    A finetuned checkpoint lies in ``OUT/RUN/step-K``; its run's dynamics in ``OUT/RUN``. The
    checkpoint's own folder is looked in first.
    """
    path = Path(checkpoint_path)
    folder = path if path.is_dir() else path.parent
    for candidate in (folder / DYNAMICS_FILE, folder.parent / DYNAMICS_FILE):
        if candidate.is_file():
            return candidate
    return None


class DynamicsRecorder:
    """Records p(true label) and the prediction on tracked training examples at chosen steps.

    Args:
        tokenizer: The run's tokenizer.
        train: The run's training data; ``examples`` of its rows are tracked (seeded subset).
        examples: How many training examples to track (all of them if the task is smaller).
        steps: The steps to record at (:func:`record_steps`).
        max_length: Truncation length (the run's, so the records see what training sees).
        device: The model's device.
    """

    def __init__(
        self,
        tokenizer: Any,
        train: Task,
        examples: int,
        steps: list[int],
        *,
        max_length: int,
        device: Any = "cpu",
    ) -> None:
        from weightscape.evaluation.evaluator import EvalSettings, Evaluator

        self.task = subset(train, examples, seed=DYNAMICS_SEED)
        self.evaluator = Evaluator(
            tokenizer, self.task, EvalSettings(max_length=max_length), device
        )
        self.steps = set(steps)
        self.recorded: list[tuple[int, np.ndarray, np.ndarray]] = []

    def after_step(self, model: Any, step: int) -> None:
        """Record if ``step`` is a recording step (eval mode, no gradients; then train again)."""
        if step not in self.steps:
            return
        was_training = model.training
        model.eval()
        try:
            result = self.evaluator.evaluate(model)  # under torch.inference_mode
        finally:
            model.train(was_training)
        self.recorded.append((step, result.p_true.copy(), result.predictions.copy()))

    def dynamics(self) -> TrainingDynamics:
        """Everything recorded so far."""
        if not self.recorded:
            raise WeightscapeError("No training dynamics were recorded: no recording step ran.")
        steps, p_true, predictions = zip(*self.recorded, strict=True)
        return TrainingDynamics(
            ids=np.asarray(self.task.ids, dtype=np.int64),
            labels=np.asarray(self.task.labels, dtype=np.int64),
            steps=np.asarray(steps, dtype=np.int64),
            p_true=np.stack(p_true).astype(np.float32),
            predictions=np.stack(predictions).astype(np.int64),
            task=self.task.name,
        )

    def save(self, run_dir: str | Path) -> Path:
        """Write ``run_dir/dynamics.npz``."""
        return self.dynamics().save(Path(run_dir) / DYNAMICS_FILE)


def start_recording(
    tokenizer: Any,
    train: Task,
    *,
    examples: int | None,
    every: int | None,
    total_steps: int,
    max_length: int,
    device: Any = "cpu",
) -> DynamicsRecorder | None:
    """The recorder of a run's training dynamics, or None when ``examples`` is None (off)."""
    if examples is None:
        return None
    steps = record_steps(total_steps, every)
    return DynamicsRecorder(tokenizer, train, examples, steps, max_length=max_length, device=device)
