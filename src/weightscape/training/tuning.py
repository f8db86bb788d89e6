"""Tuning methods: which parameters train, and how a run's starting point is drawn.

A method is a row in :data:`TRAINS`: a predicate on tensor names saying what trains. Methods that
add modules (LoRA, adapters) also have a :mod:`weightscape.models.tuning_spec` spec, which both
training and the engine use to build the same model.

- ``full``: every parameter.
- ``bitfit``: biases and the head (Ben Zaken et al., 2022).
- ``lora``: LoRA matrices and the head (Hu et al., 2022), through peft.
- ``adapter``: bottleneck adapters and the head (Houlsby et al., 2019).

The starting point has three seeded factors, each with its own generator so that varying one
leaves the others bit-identical (the factors Qin et al. (2022) and Juneja et al. (2023) vary one at
a time):

- ``head_seed``: the new classification head (normal, std ``initializer_range``; zero bias);
- ``module_seed``: the new modules' random matrices (LoRA ``A`` as peft draws it, Kaiming
  uniform; adapters' down-projections, normal std 1e-2). LoRA ``B`` and adapters'
  up-projections start at zero, so a tuned model starts exactly at the model it tunes;
- ``init_noise_seed``: Gaussian noise of std ``init_noise_std`` added to every pretrained
  floating-point parameter (not the new head or modules) before training, a different
  initialisation around the same pretrained point (Qin et al., 2022).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal, get_args

from weightscape.models.space import is_head, is_tuning_module

if TYPE_CHECKING:  # torch is imported where it is used: configs validate without it
    import torch

MethodName = Literal["full", "bitfit", "lora", "adapter"]
METHODS: tuple[str, ...] = get_args(MethodName)


def _everything(name: str) -> bool:
    return True


def _biases_and_head(name: str) -> bool:
    return name.endswith("bias") or is_head(name)


def _added_modules_and_head(name: str) -> bool:
    return is_tuning_module(name) or is_head(name)


TRAINS: dict[str, Callable[[str], bool]] = {
    "full": _everything,
    "bitfit": _biases_and_head,
    "lora": _added_modules_and_head,
    "adapter": _added_modules_and_head,
}


def mark_trainable(model: torch.nn.Module, method: str) -> list[torch.nn.Parameter]:
    """Set ``requires_grad`` by the method's rule; returns the trainable parameters."""
    trains = TRAINS[method]
    params = []
    for name, param in model.named_parameters():
        param.requires_grad_(trains(name))
        if param.requires_grad:
            params.append(param)
    return params


def add_init_noise(model: torch.nn.Module, std: float, seed: int) -> None:
    """Add N(0, std^2) noise to every pretrained floating-point parameter (not the head).

    Call before new modules are added: they are not pretrained, and must start where their own
    seed puts them. ``std == 0`` leaves the model untouched (bit for bit).
    """
    import torch

    if std == 0:
        return
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.is_floating_point() and not is_head(name):
                noise = torch.randn(param.shape, generator=generator, dtype=param.dtype)
                param.add_(noise.to(param.device), alpha=std)


def init_new_modules(model: torch.nn.Module, seed: int) -> int:
    """Redraw the added modules' random matrices from ``seed``; returns how many were drawn.

    peft and our adapters initialise from torch's global generator; drawing again from a seeded
    generator, module by module in model order, makes the start depend on ``seed`` alone.
    """
    import torch

    from weightscape.models.adapters import BottleneckAdapter

    generator = torch.Generator().manual_seed(seed)
    drawn = 0
    with torch.no_grad():
        for _, module in model.named_modules():
            if isinstance(module, BottleneckAdapter):
                module.reset_parameters(generator)
                drawn += 1
            elif isinstance(getattr(module, "lora_A", None), torch.nn.ModuleDict):
                for linear in module.lora_A.values():
                    # peft's own LoRA A initialisation (Kaiming uniform), from our generator.
                    torch.nn.init.kaiming_uniform_(
                        linear.weight, a=math.sqrt(5), generator=generator
                    )
                    drawn += 1
                for linear in module.lora_B.values():
                    linear.weight.zero_()
    return drawn
