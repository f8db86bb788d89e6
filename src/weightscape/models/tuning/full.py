"""Full finetuning: every parameter trains."""

from __future__ import annotations

from typing import Literal

from weightscape.models.tuning.base import TuningSpec


class FullSpec(TuningSpec):
    """Full finetuning: every parameter trains."""

    method: Literal["full"] = "full"

    def trains(self, name: str) -> bool:
        return True


SPEC = FullSpec
