"""Training a parametrised combination of frozen anchors.

Curve fitting (Garipov et al. 2018; Qin et al. 2022) trains the control points of a Bezier curve
between two frozen minima; a learned combination (Qin et al.'s Table 2) trains one mixing
coefficient per parameter group. Both are a *mixer*: a module whose trainable parameters, with
the frozen anchors, produce the weights of the model for one forward pass. The model itself is
never modified: ``torch.func.functional_call`` runs it with the mixed weights, so gradients flow
to the mixer only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from weightscape.data import Task
from weightscape.models.checkpoint import Checkpoint, TensorReader
from weightscape.models.space import ParameterSpace


class FrozenAnchors:
    """The in-space floating tensors of each anchor, in memory (float32), never trained."""

    def __init__(
        self, checkpoints: Sequence[Checkpoint], model: torch.nn.Module, space: ParameterSpace
    ) -> None:
        readers = [TensorReader(c) for c in checkpoints]
        state = model.state_dict()
        self.names = [n for n, t in state.items() if t.is_floating_point() and space.takes_part(n)]
        self.tensors = [
            {n: r.get(n).to(torch.float32).clone() for n in self.names} for r in readers
        ]
        self.outside = {n: readers[0].get(n).clone() for n in state if n not in self.names}

    def __len__(self) -> int:
        return len(self.tensors)


class Mixer(torch.nn.Module):
    """Produces the model's in-space weights from frozen anchors and trainable parameters."""

    def weights(self, t: float | None = None) -> dict[str, torch.Tensor]:
        """The mixed weights (for curves, at position ``t``)."""
        raise NotImplementedError

    def sample_t(self, generator: torch.Generator) -> float | None:
        """The position used for one training batch (None: the mixer has no position)."""
        return None


def functional_model(
    model: torch.nn.Module, weights: dict[str, torch.Tensor], outside: dict[str, torch.Tensor]
) -> torch.nn.Module:
    """A module that runs ``model`` with the given weights, for the Evaluator (no copy)."""

    class _Mixed(torch.nn.Module):
        config = model.config

        def forward(self, **inputs):
            return torch.func.functional_call(model, {**outside, **weights}, (), inputs)

    return _Mixed()


@dataclass
class PairSetup:
    """What training a mixer between two frozen anchors needs, built once."""

    model: torch.nn.Module
    anchors: FrozenAnchors
    tokenizer: Any
    batches: Iterator


def prepare_pair(
    a: Checkpoint,
    b: Checkpoint,
    train: Task,
    space: ParameterSpace,
    *,
    batch_size: int,
    max_length: int,
    seed: int,
    model_labels: tuple[str, ...] | None = None,
) -> PairSetup:
    """The one model (built from ``a``'s config), the frozen anchors and the training batches.

    ``model_labels`` names the model's output columns when its config does not (see
    :class:`~weightscape.evaluation.evaluator.TaskLogits`)."""
    from weightscape.evaluation.engine import tokenizer_dir
    from weightscape.evaluation.evaluator import EvalSettings, TaskLogits, load_tokenizer
    from weightscape.models.architecture import build_model
    from weightscape.models.labels import check_same_label_order
    from weightscape.training.batches import training_batches

    model = build_model(a)
    check_same_label_order([a, b])  # the heads are mixed: their rows must mean the same classes
    # Task label i is the model's column columns[i] (matched by name), so the loss is taken on
    # the class the task means whatever order the checkpoints list their labels in.
    labels_by_name = TaskLogits(model.config, train, EvalSettings(model_labels=model_labels))
    columns = torch.as_tensor(labels_by_name.columns)
    tokenizer = load_tokenizer(tokenizer_dir(a))
    batches = training_batches(
        tokenizer, train, batch_size=batch_size, max_length=max_length, seed=seed
    )
    return PairSetup(
        model,
        FrozenAnchors([a, b], model, space),
        tokenizer,
        ((inputs, columns[labels]) for inputs, labels in batches),
    )


@dataclass
class MixTraining:
    """Settings of the loop; history holds (step, train loss) and evaluations."""

    steps: int
    lr: float
    seed: int = 0
    weight_decay: float = 0.0
    history: list[dict[str, Any]] = field(default_factory=list)


def train_mixer(
    model: torch.nn.Module,
    mixer: Mixer,
    anchors: FrozenAnchors,
    batches: Iterator,
    settings: MixTraining,
    evaluate: Callable[[int], dict[str, Any]] | None = None,
    eval_every: int = 0,
) -> list[dict[str, Any]]:
    """Minimise the cross-entropy of the mixed model over the batches (t ~ U(0, 1) per batch for
    curves, as Garipov et al. and Qin et al. do). ``evaluate(step)`` runs every ``eval_every``
    steps and at the end; its results go into the history."""
    from tqdm.auto import tqdm

    generator = torch.Generator().manual_seed(settings.seed)
    torch.manual_seed(settings.seed)  # dropout
    optimizer = torch.optim.Adam(
        mixer.parameters(), lr=settings.lr, weight_decay=settings.weight_decay
    )
    model.train()
    for p in model.parameters():
        p.requires_grad_(False)
    for step in tqdm(range(1, settings.steps + 1), desc="fit", disable=True):
        inputs, labels = next(batches)
        weights = mixer.weights(mixer.sample_t(generator))
        logits = torch.func.functional_call(
            model, {**anchors.outside, **weights}, (), inputs
        ).logits
        loss = torch.nn.functional.cross_entropy(logits, labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        settings.history.append({"step": step, "loss": loss.item()})
        if (
            evaluate is not None
            and eval_every
            and (step % eval_every == 0 or step == settings.steps)
        ):
            model.eval()
            settings.history[-1]["eval"] = evaluate(step)
            model.train()
    model.eval()
    return settings.history
