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
from weightscape.models.aliases import tied_groups
from weightscape.models.checkpoint import Checkpoint
from weightscape.models.space import ParameterSpace


class FrozenAnchors:
    """The in-space floating tensors of each anchor, in memory (float32), never trained.

    Anchors are read as the engine reads them (:class:`~weightscape.evaluation.working_model.
    AnchorSet`, :mod:`weightscape.models.aliases`), so a mixer's weights are the weights the
    engine writes for the same coefficients:

    * a tied group (T5's and BART's token table: ``shared``, ``encoder.embed_tokens``,
      ``decoder.embed_tokens``) is one tensor of the model, read once and held under the first
      name of its group; ``torch.func.functional_call`` ties the group's other names to it;
    * a bare pretrained base (no task head) is read under the classifier's names, and its head
      is the head donor's tensor (the classifier the model is built from): those names are
      ``borrowed``, and every anchor's term for them is that one tensor, so every mix carries
      the classifier's head, as every point of the engine's line base -> classifier does.

    Attributes:
        checkpoints: The anchors, in order.
        names: In-space floating tensors, one name per tensor of the model (state-dict order).
        tensors: For each anchor, name -> its tensor (float32; a borrowed head is one tensor
            shared by every anchor's dict).
        outside: Every other tensor of the model (one name per tensor) -> anchor 0's (the head
            donor's for a bare base's head), in the model's dtype.
        primary: Every state-dict name -> the name its tensor is held under here (itself, or
            the first name of its tied group).
        borrowed: Names the bare bases among the anchors take from the head donor.
        bases: Indices of the anchors that are bare bases.
    """

    def __init__(
        self,
        checkpoints: Sequence[Checkpoint],
        model: torch.nn.Module,
        space: ParameterSpace,
        head_from: int | None = None,
    ) -> None:
        from weightscape.evaluation.working_model import AnchorSet

        anchors = AnchorSet(checkpoints, model, head_from=head_from)  # checked as the engine does
        state = model.state_dict()
        groups = tied_groups(model, declared=False)  # the tensors this model shares
        self.checkpoints = list(checkpoints)
        self.primary = {n: groups.get(n, (n,))[0] for n in state}
        held = [n for n in state if self.primary[n] == n]
        self.names = [n for n in held if state[n].is_floating_point() and space.takes_part(n)]
        self.borrowed = anchors.borrowed
        self.bases = [i for i, view in enumerate(anchors.views) if view.borrowed]
        read: dict[tuple[int, str], torch.Tensor] = {}  # (supplying anchor, name) -> float32

        def float32(anchor: int, name: str) -> torch.Tensor:
            key = (anchors.supplier(anchor, name), name)
            if key not in read:
                read[key] = anchors.views[key[0]].get(name).to(torch.float32).clone()
            return read[key]

        self.tensors = [{n: float32(i, n) for n in self.names} for i in range(len(anchors))]
        inside = set(self.names)
        self.outside = {
            n: _as_in_model(anchors.views[anchors.supplier(0, n)].get(n), state[n])
            for n in held
            if n not in inside
        }

    def __len__(self) -> int:
        return len(self.tensors)


def _as_in_model(tensor: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """An anchor's tensor as the model holds it: a copy, floating ones in the model's dtype."""
    if tensor.is_floating_point() and target.is_floating_point():
        return tensor.to(target.dtype, copy=True)
    return tensor.clone()


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
    """The one model, the frozen anchors and the training batches.

    On a text task, :func:`~weightscape.training.lm_batches.prepare_lm_pair`'s: the language
    model and its target tokens. Otherwise the model is the engine's for the pair: built from
    ``a``'s config, or from ``b``'s when ``a`` is a bare pretrained base and ``b`` a classifier
    (whose head the base then takes;
    :func:`~weightscape.models.aliases.classifier_anchor`); the tokenizer is ``a``'s.
    ``model_labels`` names the model's output columns when its config does not (see
    :class:`~weightscape.evaluation.evaluator.TaskLogits`)."""
    from weightscape.evaluation.engine import tokenizer_dir
    from weightscape.evaluation.evaluator import EvalSettings, TaskLogits, load_tokenizer
    from weightscape.models.aliases import classifier_anchor
    from weightscape.models.architecture import build_model
    from weightscape.models.labels import check_same_label_order
    from weightscape.training.batches import training_batches

    if not isinstance(train, Task):  # a text task: the language model's own loss
        from weightscape.training.lm_batches import prepare_lm_pair

        return prepare_lm_pair(
            a, b, train, space, batch_size=batch_size, max_length=max_length, seed=seed
        )
    built_from = classifier_anchor([a, b], 0)
    model = build_model((a, b)[built_from])
    anchors = FrozenAnchors([a, b], model, space, head_from=built_from)
    # The heads are mixed: their rows must mean the same classes (a bare base has none).
    check_same_label_order([c for i, c in enumerate((a, b)) if i not in anchors.bases])
    # Task label i is the model's column columns[i] (matched by name), so the loss is taken on
    # the class the task means whatever order the checkpoints list their labels in.
    labels_by_name = TaskLogits(model.config, train, EvalSettings(model_labels=model_labels))
    columns = torch.as_tensor(labels_by_name.columns)
    tokenizer = load_tokenizer(tokenizer_dir(a))
    batches = training_batches(
        tokenizer, train, batch_size=batch_size, max_length=max_length, seed=seed
    )
    return PairSetup(
        model, anchors, tokenizer, ((inputs, columns[labels]) for inputs, labels in batches)
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
    curves, as Garipov et al. and Qin et al. do): of the task's classes, or on a text task (2-D
    targets) the mean NLL of the target tokens. ``evaluate(step)`` runs every ``eval_every``
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
        if labels.dim() == 2:  # a text task's target tokens (lm_batches)
            from weightscape.training.lm_batches import token_loss

            loss = token_loss(logits, labels)
        else:
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
