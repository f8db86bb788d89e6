"""The engine: anchors + coefficients -> weights in one working model -> metrics.

This is the only component that turns coefficients into weights and weights into a loss; paths,
grids, planes and hulls elsewhere only produce coefficient rows for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from weightscape.data import Task
from weightscape.errors import WeightscapeError
from weightscape.evaluation.evaluator import EvalSettings, Evaluator, load_tokenizer
from weightscape.evaluation.result import PointResult
from weightscape.evaluation.working_model import WorkingModel, resolve_device
from weightscape.models.checkpoint import Checkpoint
from weightscape.models.space import ParameterSpace
from weightscape.runtime.keys import point_spec


class Engine:
    """Evaluates combinations of a fixed list of anchors on one task.

    Args:
        anchors: The anchor checkpoints, all of one architecture (checked up front).
        task: Examples to evaluate on (already split and subset).
        space: Which tensors are mixed; the others come from ``anchors[reference]``.
        settings: Batch size and truncation length.
        device: ``auto`` (GPU when present), ``cpu``, ``cuda``...
        tokenizer: Directory of the tokenizer; defaults to the reference anchor's folder.
        reference: Index of the anchor that supplies tensors outside the space.
    """

    def __init__(
        self,
        anchors: Sequence[Checkpoint],
        task: Task,
        *,
        space: ParameterSpace | None = None,
        settings: EvalSettings | None = None,
        device: str = "auto",
        tokenizer: str | Path | None = None,
        reference: int = 0,
    ) -> None:
        if not 0 <= reference < len(anchors):
            raise WeightscapeError(
                f"The reference anchor index must lie in [0, {len(anchors)}). "
                f"Got {reference} instead."
            )
        self.space = space or ParameterSpace()
        self.settings = settings or EvalSettings()
        self.reference = reference
        self.task = task
        self.working = WorkingModel(anchors[reference], device=resolve_device(device))
        self.anchors = self.working.anchors(anchors)
        names = list(self.working.state)
        self.space.select(names)  # fails early, naming the space, if it selects nothing
        self.space_is_complete = all(self.space.takes_part(n) for n in names)
        tok_dir = tokenizer if tokenizer is not None else _tokenizer_dir(anchors[reference])
        self.evaluator = Evaluator(
            load_tokenizer(tok_dir), task, self.settings, device=self.working.device
        )

    def spec(self, coefficients: Sequence[float]) -> dict[str, Any]:
        """What evaluating ``coefficients`` computes; its hash is the store key."""
        return point_spec(
            hashes=self.anchors.hashes,
            coefficients=coefficients,
            space=self.space.spec(),
            space_is_complete=self.space_is_complete,
            reference_hash=self.anchors.hashes[self.reference],
            task=self.task.fingerprint(),
            settings={**self.settings.spec(), "device": self.working.device.type},
        )

    def evaluate(self, coefficients: Sequence[float]) -> PointResult:
        """Write the point into the working model and evaluate it."""
        self.working.write(self.anchors, coefficients, self.space, self.reference)
        return self.evaluator.evaluate(self.working.model)


def _tokenizer_dir(checkpoint: Checkpoint) -> Path:
    folder = checkpoint.path if checkpoint.path.is_dir() else checkpoint.path.parent
    if any(
        (folder / f).is_file() for f in ("tokenizer.json", "vocab.txt", "tokenizer_config.json")
    ):
        return folder
    return checkpoint.config_dir()
