"""Tuning at training time: which parameters train, and how a run's starting point is drawn.

The methods themselves (full, BitFit, LoRA, adapters) are plug-ins in
:mod:`weightscape.models.tuning`: each spec says which parameters train and which modules it adds.
This module applies a spec to a model being trained.

The starting point has three seeded factors, each with its own generator so that varying one
leaves the others bit-identical (the factors Qin et al. (2022) and Juneja et al. (2023) vary one at
a time):

- ``head_seed``: the new classification head (normal, std ``initializer_range``; zero bias);
- ``module_seed``: the new modules' random tensors (the spec's ``init_modules``: LoRA ``A`` as
  peft draws it, Kaiming uniform; adapters' down-projections, normal std 1e-2). LoRA ``B`` and
  adapters' up-projections start at zero, so a tuned model starts exactly at the model it tunes.
  Adapters with ``init: gaussian`` draw both projections (normal, std ``init_std``), as Qin et
  al. (2022) draw every new module: two module seeds then differ in all the new weights;
- ``init_noise_seed``: Gaussian noise of std ``init_noise_std`` added to every pretrained
  floating-point parameter (not the new head or modules) before training, a different
  initialisation around the same pretrained point (Qin et al., 2022, App. C.1: std 2e-4; off by
  default here).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from weightscape.models.space import is_head
from weightscape.models.tuning import METHODS, MethodName, TuningSpec

if TYPE_CHECKING:  # torch is imported where it is used: configs validate without it
    import torch

__all__ = ["METHODS", "MethodName", "add_init_noise", "init_new_modules", "mark_trainable"]


def mark_trainable(model: torch.nn.Module, spec: TuningSpec) -> list[torch.nn.Parameter]:
    """Set ``requires_grad`` by the spec's rule; returns the trainable parameters."""
    params = []
    for name, param in model.named_parameters():
        param.requires_grad_(spec.trains(name))
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


def init_new_modules(model: torch.nn.Module, spec: TuningSpec, seed: int) -> int:
    """Redraw the added modules' random tensors from ``seed``; returns how many were drawn.

    peft and our adapters initialise from torch's global generator; drawing again from a seeded
    generator, module by module in model order, makes the start depend on ``seed`` alone.
    """
    import torch

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        return spec.init_modules(model, generator)
