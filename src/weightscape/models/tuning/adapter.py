"""Bottleneck adapters (Houlsby et al., 2019) after attention and feed-forward outputs.

The adapters and the head train. The modules themselves are :mod:`weightscape.models.adapters`;
their down-projections are drawn from the module seed and their up-projections start at zero, so
an adapted model starts exactly at the model it adapts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field

from weightscape.models.space import is_head, is_tuning_module
from weightscape.models.tuning.base import TuningSpec

if TYPE_CHECKING:
    import torch


class AdapterSpec(TuningSpec):
    """Bottleneck adapters; the adapters and the head train."""

    method: Literal["adapter"] = "adapter"
    bottleneck: int = Field(64, ge=1, description="width of the adapters' bottleneck")
    # The keys of weightscape.models.adapters.NONLINEARITIES (a test holds them equal).
    nonlinearity: Literal["gelu", "relu", "swish", "tanh"] = Field(
        "gelu", description="the adapters' nonlinearity"
    )
    tagged: ClassVar[tuple[str, ...]] = ("bottleneck",)

    def trains(self, name: str) -> bool:
        return is_tuning_module(name) or is_head(name)

    def add_modules(self, model: torch.nn.Module) -> torch.nn.Module:
        from weightscape.models.adapters import insert_adapters

        insert_adapters(model, self.bottleneck, self.nonlinearity)
        return model

    def init_modules(self, model: torch.nn.Module, generator: torch.Generator) -> int:
        from weightscape.models.adapters import BottleneckAdapter

        drawn = 0
        for _, module in model.named_modules():
            if isinstance(module, BottleneckAdapter):
                module.reset_parameters(generator)
                drawn += 1
        return drawn


SPEC = AdapterSpec
