"""Bottleneck adapters (Houlsby et al., 2019), inserted into a transformer in place.

An adapter is a small residual block, ``x + up(act(down(x)))``, applied to the output of a
sub-layer's projection back to the hidden size and before that sub-layer's residual connection
and layer norm. Houlsby et al. put one after the attention output projection and one after the
feed-forward output projection of every layer; so does :func:`insert_adapters`.

Why our own module rather than the AdapterHub ``adapters`` library: that library pins an old
transformers (``~=4.57``), and installing it beside transformers 5 silently downgrades
transformers and its hub client (``shared/STACK.md``). The method is a dozen lines, and owning it
keeps its tensor names under our control: checkpoints must load into the engine's working model
by name, tensor by tensor.

The adapter is registered as a child called ``adapter`` of the sub-layer's output module (e.g.
``bert.encoder.layer.0.attention.output.adapter.down.weight``) and runs as a forward hook on the
projection, so every pretrained tensor keeps its original name and the model's own forward code
is untouched. By default (``zero-up``) the up-projection starts at exactly zero, so an adapted
model starts as the model it adapts (the identity that Houlsby et al. approximate with a near-zero
initialisation). The ``gaussian`` scheme draws both projections from N(0, std^2), as Qin et al.
(2022, App. C.1) draw every newly introduced module: two module seeds then differ in both
projections, where under ``zero-up`` they share the up-projection (all zeros).

Lives in ``models/`` rather than ``training/`` because the engine's
:func:`~weightscape.models.architecture.build_model` must rebuild adapted models, and ``models/``
may not import ``training/``.
"""

from __future__ import annotations

import re

import torch
from torch import nn

from weightscape.errors import WeightscapeError, unknown_name_error

# std of the down-projection at initialisation (Houlsby et al.: near-identity initialisation).
DOWN_STD = 1e-2
# How an adapter's projections start: the keys of AdapterSpec.init (a test holds them equal).
INIT_SCHEMES = ("zero-up", "gaussian")
NONLINEARITIES = {"gelu": nn.GELU, "relu": nn.ReLU, "swish": nn.SiLU, "tanh": nn.Tanh}
# (sub-layer output module, its projection back to the hidden size), per architecture family.
SITES = (
    (re.compile(r"(?:^|\.)layer\.\d+\.attention\.output$"), "dense"),  # BERT, RoBERTa, ELECTRA
    (re.compile(r"(?:^|\.)layer\.\d+\.output$"), "dense"),  # their feed-forward output
    (re.compile(r"(?:^|\.)transformer\.layer\.\d+\.attention$"), "out_lin"),  # DistilBERT
    (re.compile(r"(?:^|\.)transformer\.layer\.\d+\.ffn$"), "lin2"),
)


class BottleneckAdapter(nn.Module):
    """``x + up(act(down(x)))`` with a ``bottleneck``-wide middle; identity at initialisation.

    Args:
        hidden: Width of the sub-layer output the adapter reads and writes.
        bottleneck: Width of the down-projection.
        nonlinearity: One of :data:`NONLINEARITIES`.
    """

    def __init__(self, hidden: int, bottleneck: int, nonlinearity: str = "gelu") -> None:
        super().__init__()
        if nonlinearity not in NONLINEARITIES:
            raise unknown_name_error("adapter nonlinearity", nonlinearity, NONLINEARITIES)
        self.down = nn.Linear(hidden, bottleneck)
        self.act = NONLINEARITIES[nonlinearity]()
        self.up = nn.Linear(bottleneck, hidden)
        self.reset_parameters()

    def reset_parameters(
        self,
        generator: torch.Generator | None = None,
        scheme: str = "zero-up",
        std: float = 0.02,
    ) -> None:
        """Draw the projections' weights from ``generator``; biases start at zero.

        Args:
            generator: Source of the draws (torch's global generator when None).
            scheme: ``zero-up``: down-projection N(0, DOWN_STD^2), up-projection 0 (the adapter
                starts as the identity); ``gaussian``: both N(0, std^2), down first (Qin et al.,
                2022, whose adapters have no biases: ours start at zero, as a missing bias).
            std: The ``gaussian`` scheme's std (unused by ``zero-up``).

        Raises:
            WeightscapeError: For an unknown ``scheme``.
        """
        if scheme not in INIT_SCHEMES:
            raise unknown_name_error("adapter init scheme", scheme, INIT_SCHEMES)
        with torch.no_grad():
            self.down.weight.normal_(
                0.0, DOWN_STD if scheme == "zero-up" else std, generator=generator
            )
            if scheme == "zero-up":
                self.up.weight.zero_()
            else:
                self.up.weight.normal_(0.0, std, generator=generator)
            self.down.bias.zero_()
            self.up.bias.zero_()

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return hidden_states + self.up(self.act(self.down(hidden_states)))

    def hook(self, module: nn.Module, inputs: tuple, output: torch.Tensor) -> torch.Tensor:
        """Forward hook for the projection: its output passes through the adapter.

        A bound method (not a closure), so a deep copy of the model hooks the copied adapter.
        """
        return self(output)


def insert_adapters(model: nn.Module, bottleneck: int, nonlinearity: str = "gelu") -> list[str]:
    """Insert an adapter after every attention and feed-forward output projection, in place.

    Returns:
        The names of the modules that received an adapter, in model order.

    Raises:
        WeightscapeError: If the model has no sub-layer this module knows how to adapt, or was
            adapted already.
    """
    sites = [
        (name, module, attr)
        for name, module in model.named_modules()
        for pattern, attr in SITES
        if pattern.search(name) and isinstance(getattr(module, attr, None), nn.Linear)
    ]
    if not sites:
        raise WeightscapeError(
            f"Cannot insert bottleneck adapters into {type(model).__name__}: none of its modules "
            "is a known attention or feed-forward output (BERT, RoBERTa, ELECTRA, DistilBERT "
            "families). Use --method lora with --lora-target-modules instead."
        )
    for name, module, attr in sites:
        if hasattr(module, "adapter"):
            raise WeightscapeError(f"The module '{name}' already has an adapter.")
        projection = getattr(module, attr)
        adapter = BottleneckAdapter(projection.out_features, bottleneck, nonlinearity)
        adapter.to(projection.weight.device, projection.weight.dtype)
        module.add_module("adapter", adapter)
        projection.register_forward_hook(adapter.hook)
    return [name for name, _, _ in sites]
