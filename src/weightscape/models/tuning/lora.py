"""LoRA (Hu et al., 2022) through peft: ``W x + (alpha / r) B A x`` on the target modules.

The LoRA matrices and the head train. The model stays the plain Hugging Face model, mutated in
place (peft's ``inject_adapter_in_model``, not a ``PeftModel``): its tensor names carry no
``base_model.model.`` prefix, so heads are still ``classifier.*``. Names follow peft with its
default adapter name: ``...query.base_layer.weight``, ``...query.lora_A.default.weight``,
``...query.lora_B.default.weight``. ``A`` is drawn as peft draws it (Kaiming uniform) from the
module seed and ``B`` starts at zero, so a tuned model starts exactly at the model it tunes.

A LoRA run is saved as a standard peft adapter folder, and peft adapter folders are read back
under these names (:mod:`weightscape.models.peft_anchor`).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field

from weightscape.errors import WeightscapeError
from weightscape.models.space import is_head, is_tuning_module
from weightscape.models.tuning.base import TuningSpec

if TYPE_CHECKING:
    import torch

LORA_ADAPTER_NAME = "default"  # peft's default; part of every LoRA tensor name


class LoraSpec(TuningSpec):
    """LoRA on the ``target_modules`` linear layers; the LoRA matrices and the head train."""

    method: Literal["lora"] = "lora"
    r: int = Field(8, ge=1, description="LoRA rank")
    alpha: float = Field(16.0, gt=0, description="LoRA alpha (the update is scaled by alpha/r)")
    dropout: float = Field(0.0, ge=0, lt=1, description="dropout on LoRA's input")
    target_modules: tuple[str, ...] = Field(
        ("query", "value"), min_length=1, description="names of the linear layers LoRA wraps"
    )
    tagged: ClassVar[tuple[str, ...]] = ("r", "alpha")

    def trains(self, name: str) -> bool:
        return is_tuning_module(name) or is_head(name)

    def add_modules(self, model: torch.nn.Module) -> torch.nn.Module:
        from peft import LoraConfig, inject_adapter_in_model

        config = LoraConfig(
            r=self.r,
            lora_alpha=self.alpha,
            lora_dropout=self.dropout,
            target_modules=list(self.target_modules),
            bias="none",
        )
        try:
            return inject_adapter_in_model(config, model, adapter_name=LORA_ADAPTER_NAME)
        except ValueError as err:
            raise WeightscapeError(
                f"Cannot add LoRA to {type(model).__name__} with target modules "
                f"{list(self.target_modules)}: {err}"
            ) from err

    def init_modules(self, model: torch.nn.Module, generator: torch.Generator) -> int:
        import torch

        drawn = 0
        for _, module in model.named_modules():
            if isinstance(getattr(module, "lora_A", None), torch.nn.ModuleDict):
                for linear in module.lora_A.values():
                    # peft's own LoRA A initialisation (Kaiming uniform), from our generator.
                    torch.nn.init.kaiming_uniform_(
                        linear.weight, a=math.sqrt(5), generator=generator
                    )
                    drawn += 1
                for linear in module.lora_B.values():
                    linear.weight.zero_()
        return drawn


SPEC = LoraSpec
