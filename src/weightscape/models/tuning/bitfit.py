"""BitFit (Ben Zaken et al., 2022): only the biases and the classification head train."""

from __future__ import annotations

from typing import Literal

from weightscape.models.space import is_head
from weightscape.models.tuning.base import TuningSpec


class BitFitSpec(TuningSpec):
    """BitFit: the biases and the head train; every other weight stays pretrained."""

    method: Literal["bitfit"] = "bitfit"

    def trains(self, name: str) -> bool:
        return name.endswith("bias") or is_head(name)


SPEC = BitFitSpec
