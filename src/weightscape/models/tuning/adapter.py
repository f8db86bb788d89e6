"""Bottleneck adapters (Houlsby et al., 2019) after attention and feed-forward outputs.

The adapters and the head train. The modules themselves are :mod:`weightscape.models.adapters`.
By default (``init: zero-up``) their down-projections are drawn from the module seed and their
up-projections start at zero, so an adapted model starts exactly at the model it adapts.
``init: gaussian`` draws both projections from N(0, ``init_std``^2), as Qin et al. (2022) draw
every newly introduced module when they vary the initialisation (their released code draws with
std 0.02, ``--r_std``; their appendix C.1 states 2e-4).
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
    # The keys of weightscape.models.adapters.INIT_SCHEMES (a test holds them equal).
    init: Literal["zero-up", "gaussian"] = Field(
        "zero-up",
        description="how new adapters start: zero-up (down-projection normal with std 1e-2, "
        "up-projection 0: the model starts as the model it adapts) or gaussian (both "
        "projections normal with std --adapter-init-std, as Qin et al. 2022 draw new modules)",
    )
    init_std: float = Field(
        0.02,
        gt=0,
        description="std of the gaussian init (Qin et al.'s released code: 0.02; their paper's "
        "appendix C.1 states 2e-4)",
    )
    tagged: ClassVar[tuple[str, ...]] = ("bottleneck",)
    start_options: ClassVar[tuple[str, ...]] = ("init", "init_std")

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
                module.reset_parameters(generator, self.init, self.init_std)
                drawn += 1
        return drawn


SPEC = AdapterSpec
