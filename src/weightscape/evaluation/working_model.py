"""One working model whose weights are rewritten in place for every point.

A point is a coefficient vector over anchor checkpoints: theta = sum_i c_i * theta_i over the
tensors of the parameter space, every other tensor copied from a reference anchor. Writing a point
costs one pass over the anchors' memory-mapped tensors and allocates no second model: no deepcopy,
no new state dict, no ``load_state_dict`` per point.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from weightscape.errors import WeightscapeError
from weightscape.evaluation.grouped import GroupedPoint
from weightscape.models.architecture import build_model, check_compatible, check_finite
from weightscape.models.checkpoint import Checkpoint, TensorReader
from weightscape.models.space import ParameterSpace


class AnchorSet:
    """Open, validated readers for the anchors of a combination.

    ``ignore`` names tensors that are neither checked nor mixed: they always come from the
    reference anchor (the classification head, when a generalised loss replaces it anyway).
    """

    def __init__(
        self,
        checkpoints: Sequence[Checkpoint],
        model: torch.nn.Module,
        ignore: Callable[[str], bool] | None = None,
    ) -> None:
        if not checkpoints:
            raise WeightscapeError("A combination needs at least one anchor checkpoint.")
        self.checkpoints = list(checkpoints)
        self.readers = [TensorReader(c) for c in self.checkpoints]
        self.ignore = ignore
        check_compatible(model, self.readers, ignore)
        # Before any point is evaluated or stored: one NaN weight makes every combination NaN.
        check_finite(
            self.readers,
            (n for n, t in model.state_dict().items() if t.is_floating_point()),
            ignore,
        )
        self.hashes = [c.content_hash() for c in self.checkpoints]
        self.index = {h: i for i, h in enumerate(self.hashes)}  # content -> reader

    def __len__(self) -> int:
        return len(self.checkpoints)


class WorkingModel:
    """The only full model a walk builds; points are written into it in place.

    Args:
        reference: Checkpoint whose config defines the architecture.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ... (see :func:`resolve_device`).
    """

    def __init__(self, reference: Checkpoint, device: str = "cpu") -> None:
        self.device = torch.device(device)
        self.model = build_model(reference).to(self.device)
        # state_dict() tensors share storage with the parameters: writing them writes the model.
        self.state = self.model.state_dict()
        self._written: dict[str, tuple] = {}
        self._mixed: dict[ParameterSpace, frozenset[str]] = {}

    def anchors(
        self, checkpoints: Sequence[Checkpoint], ignore: Callable[[str], bool] | None = None
    ) -> AnchorSet:
        """Open and check ``checkpoints`` against this model's architecture (tensors for which
        ``ignore`` is true excepted: those always come from the reference anchor)."""
        return AnchorSet(checkpoints, self.model, ignore)

    @torch.inference_mode()
    def write(
        self,
        anchors: AnchorSet,
        coefficients: Sequence[float] | GroupedPoint,
        space: ParameterSpace,
        reference: int = 0,
    ) -> None:
        """Write sum_i c_i * anchor_i into the model (space tensors); copy the rest from anchor
        ``reference``.

        One-hot coefficients reproduce an anchor bit for bit (a plain copy, no arithmetic), and a
        tensor whose recipe has not changed since the last write is not touched again.
        """
        copied = ((anchors.hashes[reference], 1.0),)
        mixed_names = self._mixed_names(space)
        uniform = None if isinstance(coefficients, GroupedPoint) else _recipe(coefficients, anchors)
        for name, target in self.state.items():
            if name not in mixed_names or (anchors.ignore is not None and anchors.ignore(name)):
                recipe = copied
            elif uniform is not None:
                recipe = uniform
            else:
                recipe = _recipe(coefficients.for_tensor(name), anchors)
            if self._written.get(name) == recipe:
                continue
            self._mix_into(target, name, anchors, recipe)
            self._written[name] = recipe

    def _mix_into(
        self,
        target: torch.Tensor,
        name: str,
        anchors: AnchorSet,
        recipe: tuple[tuple[str, float], ...],
    ) -> None:
        index = anchors.index
        if not recipe:  # every coefficient zero: the origin of the space
            target.zero_()
            return
        for k, (content, coef) in enumerate(recipe):
            source = anchors.readers[index[content]].get(name)
            if k == 0:
                target.copy_(source)
                if coef != 1.0:
                    target.mul_(coef)
            else:
                target.add_(source.to(target.device, target.dtype), alpha=coef)

    def _mixed_names(self, space: ParameterSpace) -> frozenset[str]:
        """Tensors the space mixes; integer tensors (index buffers) are never mixed, only
        copied from the reference, since a fractional combination of indices means nothing."""
        if space not in self._mixed:
            self._mixed[space] = frozenset(
                n for n, t in self.state.items() if t.is_floating_point() and space.takes_part(n)
            )
        return self._mixed[space]

    def forget_written(self) -> None:
        """Forget what was written (call after changing the model's weights by other means)."""
        self._written.clear()


def _recipe(coefficients: Sequence[float], anchors: AnchorSet) -> tuple[tuple[str, float], ...]:
    """The (content, coefficient) terms of one tensor's combination, zero terms dropped."""
    if len(coefficients) != len(anchors):
        raise WeightscapeError(
            f"Got {len(coefficients)} coefficients for {len(anchors)} "
            "anchors; give one coefficient per anchor."
        )
    return tuple((anchors.hashes[i], float(c)) for i, c in enumerate(coefficients) if c != 0)


def resolve_device(device: str = "auto") -> str:
    """``auto`` picks the GPU when one is present and the CPU otherwise."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise WeightscapeError(
            f"Device '{device}' was requested but no GPU is available. "
            "Use --device cpu or --device auto."
        )
    if not (device == "cpu" or device.startswith("cuda") or device == "mps"):
        raise WeightscapeError(f"Unknown device '{device}'. Use auto, cpu, cuda or cuda:N.")
    return device
