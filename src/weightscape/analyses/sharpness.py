"""Epsilon-sharpness of a minimum (Keskar et al. 2017), the baseline Juneja et al. (2023) beat.

Keskar et al. measure how much the loss can rise within a small box around the weights ``x``:

    C = {z : |z_i| <= eps (|x_i| + 1)}
    sharpness = 100 (max_{z in C} f(x + z) - f(x)) / (1 + f(x))

(Juneja et al., appendix F.4, eq. 10-11 with A = I). The box scales with each weight, so large
weights may move further. The maximum is found by projected gradient ascent: SGD steps that
increase the loss, each followed by clamping the weights back into the box. The defaults are
Juneja et al.'s: eps = 1e-5, learning rate 8e-5, gradients accumulated over 4 batches, 8192
updates, i.e. 32768 forward-backward passes. That is hours for a BERT on a CPU; pass fewer
``steps`` for a quick look and report the setting with the number.

Two named settings (:data:`SHARPNESS_PRESETS`) serve the basins study: ``quick``, weightscape's
short look (eval mode, 128 examples, the number of steps given), and ``juneja``, the paper's
setting as their released code runs it (``misc/measure_flatness.py`` with
``constellations/simplexes/orig_utils.py:flatness_measure``): dropout on during the ascent
(``model.train()``; the loss before and after is measured in eval mode), the gradients of the
accumulated batches summed rather than averaged, batches of 32, 8192 updates of 4 batches on
32768 examples, lr 8e-5, eps 1e-5. Their code's box ``eps (x + 1)`` (no absolute value, so a
weight near -1 cannot move at all) is a bug that is not copied: the box here is always Keskar's
``eps (|x| + 1)``.
"""

from __future__ import annotations

import difflib
import itertools
import math
import numbers
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from weightscape.errors import WeightscapeError
from weightscape.models.space import ParameterSpace

__all__ = ["SHARPNESS_PRESETS", "SharpnessSettings", "epsilon_sharpness"]

LossFn = Callable[[torch.nn.Module, Any], torch.Tensor]
MODES = ("eval", "train")
ACCUMULATE = ("mean", "sum")


@dataclass(frozen=True)
class SharpnessSettings:
    """How epsilon-sharpness is measured for each model of a zoo.

    Attributes:
        steps: Projected ascent updates (0: not measured).
        examples: Random examples of the task the ascent and the losses use.
        batch_size: Examples per batch; None: the evaluation batch size.
        eps, lr, accumulation, mode, accumulate: As :func:`epsilon_sharpness`.
    """

    steps: int
    examples: int
    batch_size: int | None = None
    eps: float = 1e-5
    lr: float = 8e-5
    accumulation: int = 4
    mode: str = "eval"
    accumulate: str = "mean"


SHARPNESS_PRESETS: dict[str, SharpnessSettings] = {
    # weightscape's short look: no dropout, a small sample, steps given by the user
    "quick": SharpnessSettings(steps=0, examples=128),
    # Juneja et al. (appendix F.4) as their released code runs it
    "juneja": SharpnessSettings(
        steps=8192, examples=32768, batch_size=32, mode="train", accumulate="sum"
    ),
}


def epsilon_sharpness(
    model: torch.nn.Module,
    loss_fn: LossFn,
    batches: Iterable[Any],
    *,
    eps: float = 1e-5,
    steps: int = 8192,
    lr: float = 8e-5,
    accumulation: int = 4,
    params: ParameterSpace | Sequence[str] | None = None,
    mode: str = "eval",
    accumulate: str = "mean",
    seed: int = 0,
) -> dict[str, float | int | str]:
    """Keskar et al.'s epsilon-sharpness of ``model``'s loss over ``batches``.

    ``f`` is the mean of ``loss_fn(model, batch)`` over all batches (use equal-size batches for
    the mean over examples), measured in eval mode (no dropout). The ascent starts at ``z = 0``
    and cycles through the batches, ``accumulation`` per update, in ``mode``; the maximum is
    ``f`` at the final point (or ``f(x)`` if that is higher: the box holds ``z = 0``). At an
    exact stationary point where every batch gradient is zero the ascent cannot move; minibatch
    noise normally moves it. The model's weights, ``requires_grad`` flags, gradients and
    train/eval mode are restored afterwards, even on error, and the global torch random state
    too (dropout in train mode draws from a generator seeded with ``seed``).

    Args:
        model: The model at its minimum ``x``.
        loss_fn: ``loss_fn(model, batch)`` -> scalar mean loss of that batch, differentiable.
        batches: The evaluation batches; held in a list, as each is used many times.
        eps: Relative size of the box, a finite number > 0.
        steps: Number of projected SGD updates, an int >= 0.
        lr: SGD learning rate of the ascent, a finite number > 0.
        accumulation: Batches whose gradients make one update, an int >= 1.
        params: Parameters that move: names, a :class:`ParameterSpace`, or ``None`` for all.
        mode: ``"eval"`` (no dropout during the ascent) or ``"train"`` (dropout on, as Juneja
            et al.'s code ascends).
        accumulate: How the ``accumulation`` batch gradients make one update: ``"mean"`` (their
            average) or ``"sum"`` (their sum, as Juneja et al.'s code: each batch loss is
            backpropagated undivided, so the step is ``accumulation`` times larger).
        seed: Seed of the random state during the ascent (dropout masks in train mode).

    Returns:
        ``{"sharpness", "loss", "max_loss", "steps", "eps", "n_parameters", "mode",
        "accumulate"}``.

    >>> model = torch.nn.Linear(1, 1, bias=False)
    >>> _ = torch.nn.init.constant_(model.weight, 2.0)
    >>> loss = lambda m, batch: 0.5 * (m(batch) ** 2).mean()  # f(w) = w^2 / 2 on input 1
    >>> result = epsilon_sharpness(model, loss, [torch.ones(1, 1)], eps=0.1, steps=5, lr=1.0)
    >>> result["loss"], round(result["max_loss"], 4), round(result["sharpness"], 4)
    (2.0, 2.645, 21.5)
    """
    batches = list(batches)
    _check_settings(batches, eps, steps, lr, accumulation)
    _check_choice(mode, "mode", MODES)
    _check_choice(accumulate, "accumulate", ACCUMULATE)
    chosen = _select(model, params)
    original = {name: p.detach().clone() for name, p in chosen.items()}
    saved_state = _save_state(model)
    try:
        model.eval()
        for p in model.parameters():
            p.requires_grad_(False)
        loss = _mean_loss(model, loss_fn, batches)
        model.train(mode == "train")
        scale = 1.0 / accumulation if accumulate == "mean" else 1.0
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            _ascend(model, loss_fn, batches, chosen, original, eps, steps, lr, accumulation, scale)
        model.eval()
        max_loss = max(loss, _mean_loss(model, loss_fn, batches))
    finally:
        with torch.no_grad():
            for name, p in chosen.items():
                p.copy_(original[name])
        _restore_state(model, saved_state)
    return {
        "sharpness": 100.0 * (max_loss - loss) / (1.0 + loss),
        "loss": loss,
        "max_loss": max_loss,
        "steps": steps,
        "eps": float(eps),
        "n_parameters": sum(p.numel() for p in chosen.values()),
        "mode": mode,
        "accumulate": accumulate,
    }


def _ascend(
    model: torch.nn.Module,
    loss_fn: LossFn,
    batches: list[Any],
    chosen: dict[str, torch.nn.Parameter],
    original: dict[str, torch.Tensor],
    eps: float,
    steps: int,
    lr: float,
    accumulation: int,
    scale: float,
) -> None:
    """Projected SGD ascent of the loss inside the box around ``original``; each batch loss is
    multiplied by ``scale`` (1/accumulation for the mean of the batch gradients, 1 for the sum)."""
    bounds = {}
    for name, x in original.items():
        radius = eps * (x.abs() + 1.0)
        bounds[name] = (x - radius, x + radius)
    for p in chosen.values():
        p.requires_grad_(True)
    optimizer = torch.optim.SGD(list(chosen.values()), lr=lr, maximize=True)
    stream = itertools.cycle(batches)
    for _ in range(steps):
        optimizer.zero_grad(set_to_none=True)
        for batch in itertools.islice(stream, accumulation):
            (loss_fn(model, batch) * scale).backward()
        optimizer.step()
        with torch.no_grad():
            for name, p in chosen.items():
                p.clamp_(*bounds[name])  # project back into the box


def _mean_loss(model: torch.nn.Module, loss_fn: LossFn, batches: list[Any]) -> float:
    """Mean of the batch losses, without gradients; errors on a non-finite loss."""
    with torch.no_grad():
        losses = [float(loss_fn(model, batch)) for batch in batches]
    total = math.fsum(losses) / len(losses)
    if not math.isfinite(total):
        raise WeightscapeError(
            f"loss_fn returned a non-finite loss ({total}) in epsilon_sharpness. Check the "
            "model and the batches; sharpness is only defined at a finite loss."
        )
    return total


def _select(
    model: torch.nn.Module, params: ParameterSpace | Sequence[str] | None
) -> dict[str, torch.nn.Parameter]:
    """The named parameters that move, in the model's order."""
    named = dict(model.named_parameters())
    if params is None:
        names = list(named)
    elif isinstance(params, ParameterSpace):
        names = params.select(named)
    else:
        names = [params] if isinstance(params, str) else list(params)
        for name in names:
            if name not in named:
                close = difflib.get_close_matches(name, list(named), n=1)
                hint = f" Did you mean '{close[0]}'?" if close else ""
                raise WeightscapeError(
                    f"Unknown parameter '{name}' in epsilon_sharpness.{hint} The model has "
                    f"{len(named)} parameters, e.g. {', '.join(list(named)[:3])}."
                )
    if not names:
        raise WeightscapeError("epsilon_sharpness needs at least one parameter to move. Got none.")
    return {name: named[name] for name in names}


def _check_settings(
    batches: list[Any], eps: float, steps: int, lr: float, accumulation: int
) -> None:
    if not batches:
        raise WeightscapeError("epsilon_sharpness needs at least one batch. Got none.")
    for name, value in (("eps", eps), ("lr", lr)):
        real = isinstance(value, numbers.Real) and not isinstance(value, bool)
        if not real or not math.isfinite(value) or value <= 0:
            raise WeightscapeError(
                f"The '{name}' parameter of epsilon_sharpness must be a finite number > 0. "
                f"Got {value!r} instead."
            )
    for name, value, minimum in (("steps", steps, 0), ("accumulation", accumulation, 1)):
        integral = isinstance(value, numbers.Integral) and not isinstance(value, bool)
        if not integral or value < minimum:
            raise WeightscapeError(
                f"The '{name}' parameter of epsilon_sharpness must be an int >= {minimum}. "
                f"Got {value!r} instead."
            )


def _check_choice(value: object, name: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise WeightscapeError(
            f"The '{name}' parameter of epsilon_sharpness must be one of {', '.join(choices)}. "
            f"Got {value!r} instead."
        )


_State = tuple[list[bool], list[tuple[bool, Any]]]


def _save_state(model: torch.nn.Module) -> _State:
    """Each module's train/eval mode and each parameter's ``requires_grad`` flag and gradient."""
    modes = [module.training for module in model.modules()]
    return modes, [(p.requires_grad, p.grad) for p in model.parameters()]


def _restore_state(model: torch.nn.Module, state: _State) -> None:
    modes, flags = state
    for module, training in zip(model.modules(), modes, strict=True):
        module.training = training
    for p, (requires_grad, grad) in zip(model.parameters(), flags, strict=True):
        p.requires_grad_(requires_grad)
        p.grad = grad
