"""One working model whose weights are rewritten in place for every point.

A point is a coefficient vector over anchor checkpoints: theta = sum_i c_i * theta_i over the
tensors of the parameter space, every other tensor copied from a reference anchor. Writing a point
costs one pass over the anchors' tensors, read one at a time, and allocates no second model: no
deepcopy, no new state dict, no ``load_state_dict`` per point.

The working model's dtype is an evaluation setting (``--dtype``), never the reference anchor's
config: float32 by default whatever the anchors hold, or bfloat16/float16, or the anchors' own
dtype when they all agree (:func:`working_dtype`). Each tensor's combination is computed in
float32 and cast once to that dtype, so peak memory is one model plus one float32 tensor.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from weightscape.errors import WeightscapeError
from weightscape.evaluation.grouped import GroupedPoint
from weightscape.models.aliases import head_donor, secondary_names
from weightscape.models.architecture import build_model, check_compatible, check_finite
from weightscape.models.checkpoint import Checkpoint, TensorReader
from weightscape.models.space import ParameterSpace

# The working model's dtype (--dtype): a torch dtype name, or the anchors' own.
DTYPES = ("float32", "bfloat16", "float16", "anchors")
# Anchors whose weight files are smaller than this are read through their memory map (one copy
# fewer: a MiniLM point is written ~4x faster); larger ones from the file (see _read).
MAPPED_READ_LIMIT = 1 << 30


class AnchorSet:
    """Open, validated readers for the anchors of a combination.

    ``ignore`` names tensors that are neither checked nor mixed: they always come from the
    reference anchor (the classification head, when a generalised loss replaces it anyway).

    Each anchor is seen under the model's names (:mod:`weightscape.models.aliases`): tied
    tensors are found under any name of their group, and a bare pretrained base takes its task
    head from the head donor, anchor ``head_from`` (the one the model was built from; default:
    the first anchor with a head).
    """

    def __init__(
        self,
        checkpoints: Sequence[Checkpoint],
        model: torch.nn.Module,
        ignore: Callable[[str], bool] | None = None,
        head_from: int | None = None,
    ) -> None:
        if not checkpoints:
            raise WeightscapeError("A combination needs at least one anchor checkpoint.")
        self.checkpoints = list(checkpoints)
        self.readers = [TensorReader(c) for c in self.checkpoints]
        self.ignore = ignore
        self.views = check_compatible(model, self.readers, ignore)
        # Before any point is evaluated or stored: one NaN weight makes every combination NaN.
        check_finite(
            self.views,
            (n for n, t in model.state_dict().items() if t.is_floating_point()),
            ignore,
        )
        self.hashes = [c.content_hash() for c in self.checkpoints]
        self.index = {h: i for i, h in enumerate(self.hashes)}  # content -> reader
        self.donor = head_donor(self.views, head_from)
        self.borrowed = frozenset().union(*(v.borrowed for v in self.views))
        # Tied names after the first of their group: one storage, written once, under the first.
        self.secondary = secondary_names(model)

    def supplier(self, anchor: int, name: str) -> int:
        """The anchor whose tensor stands for ``anchor``'s in ``name``: itself, or the head
        donor for the task head of a bare base."""
        return self.donor if name in self.views[anchor].borrowed else anchor

    def __len__(self) -> int:
        return len(self.checkpoints)


class WorkingModel:
    """The only full model a walk builds; points are written into it in place.

    The model is built directly in ``dtype`` (no float32 copy first) and without random
    initialisation: every point overwrites every tensor of its state dict, and the buffers
    outside it (rotary frequencies, position ids) are computed by the modules' constructors as
    usual. Before the first :meth:`write` its weights are undefined.

    Args:
        reference: Checkpoint whose config defines the architecture.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ... (see :func:`resolve_device`).
        dtype: The dtype of the model's floating weights (see :func:`working_dtype`).
        task_kind: ``"classification"`` (a sequence classifier) or ``"text"`` (the
            checkpoint's own language-model class; see
            :func:`~weightscape.models.architecture.build_model`).
    """

    def __init__(
        self,
        reference: Checkpoint,
        device: str = "cpu",
        dtype: torch.dtype = torch.float32,
        task_kind: str = "classification",
    ) -> None:
        from transformers.initialization import no_init_weights

        self.device = torch.device(device)
        self.dtype = dtype
        with no_init_weights():
            self.model = build_model(reference, dtype=dtype, task_kind=task_kind).to(self.device)
        # Tied tensors (T5/BART token tables, tied LM heads) become one storage again, as
        # from_pretrained leaves them: a point then writes each group once, under its first name.
        self.model.tie_weights()
        # state_dict() tensors share storage with the parameters: writing them writes the model.
        self.state = self.model.state_dict()
        self._written: dict[str, tuple] = {}
        self._mixed: dict[ParameterSpace, frozenset[str]] = {}
        self._mapped: dict[str, bool] = {}  # anchor content -> read through its memory map

    def anchors(
        self,
        checkpoints: Sequence[Checkpoint],
        ignore: Callable[[str], bool] | None = None,
        head_from: int | None = None,
    ) -> AnchorSet:
        """Open and check ``checkpoints`` against this model's architecture (tensors for which
        ``ignore`` is true excepted: those always come from the reference anchor); a bare base
        among them takes its head from anchor ``head_from`` (see :class:`AnchorSet`)."""
        return AnchorSet(checkpoints, self.model, ignore, head_from)

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

        One-hot coefficients reproduce an anchor bit for bit (a plain copy, no arithmetic; a
        cast when the anchor holds another dtype), and a tensor whose recipe has not changed
        since the last write is not touched again.
        """
        copied = ((anchors.hashes[reference], 1.0),)
        mixed_names = self._mixed_names(space)
        uniform = None if isinstance(coefficients, GroupedPoint) else _recipe(coefficients, anchors)
        for name, target in self.state.items():
            if name in anchors.secondary:  # written with the first name of its tied group
                continue
            borrowed = name in anchors.borrowed  # a bare base's head: the donor's tensor
            if name not in mixed_names or (anchors.ignore is not None and anchors.ignore(name)):
                source = anchors.supplier(reference, name) if borrowed else reference
                recipe = ((anchors.hashes[source], 1.0),) if borrowed else copied
            elif uniform is not None and not borrowed:
                recipe = uniform
            else:
                grouped = isinstance(coefficients, GroupedPoint)
                row = coefficients.for_tensor(name) if grouped else coefficients
                recipe = _recipe(row, anchors, name if borrowed else None)
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
        """Write one tensor's combination: summed in float32 (in ``target`` itself when it is
        float32, else in one float32 scratch tensor), then cast once to ``target``'s dtype, so
        a bfloat16 model holds the rounded float32 mix, not a sum of rounded terms."""
        if not recipe:  # every coefficient zero: the origin of the space
            target.zero_()
            return
        readers = [anchors.views[anchors.index[content]] for content, _ in recipe]
        mapped = [self._read_mapped(c, v) for (c, _), v in zip(recipe, readers, strict=True)]
        if len(recipe) == 1 and recipe[0][1] == 1.0:
            target.copy_(_read(readers[0], name, mapped[0]))  # an anchor's own tensor: a copy
            return
        total: torch.Tensor | None = None
        for reader, (_, coef), via_map in zip(readers, recipe, mapped, strict=True):
            source = _read(reader, name, via_map)
            if total is not None:
                total.add_(source.to(target.device), alpha=coef)  # a float32 sum of any dtype
            elif target.dtype == torch.float32:
                total = target.copy_(source).mul_(coef)
            else:
                total = source.to(target.device, torch.float32, copy=True).mul_(coef)
            del source  # one anchor's tensor in memory at a time
        if total is not target:
            target.copy_(total)  # the one cast to the working dtype

    def _read_mapped(self, content: str, view) -> bool:
        """Whether anchor ``content`` is small enough to read through its memory map."""
        if content not in self._mapped:
            checkpoint = getattr(view, "checkpoint", None)
            size = sum(f.stat().st_size for f in checkpoint.weight_files()) if checkpoint else 0
            self._mapped[content] = size < MAPPED_READ_LIMIT
        return self._mapped[content]

    def _mixed_names(self, space: ParameterSpace) -> frozenset[str]:
        """Tensors the space mixes; integer tensors (index buffers) are never mixed, only
        copied from the reference, since a fractional combination of indices means nothing.

        A tied group (one storage under several names) is one tensor: it is written under its
        first state-dict name, so that name decides whether the group takes part (a space
        that selects only another name of the group does not mix it)."""
        if space not in self._mixed:
            self._mixed[space] = frozenset(
                n for n, t in self.state.items() if t.is_floating_point() and space.takes_part(n)
            )
        return self._mixed[space]

    def forget_written(self) -> None:
        """Forget what was written (call after changing the model's weights by other means)."""
        self._written.clear()


def _read(view, name: str, mapped: bool = False) -> torch.Tensor:
    """An anchor's tensor ``name``: through the file's memory map when ``mapped``, else read from
    the file into memory of its own.

    Mapped pages once read stay resident (and counted in the process's memory) while the anchor
    is open, so a walk of large anchors would end up holding every anchor beside the working
    model (3.5x one checkpoint's size at the peak of a walk between two 1B bfloat16 models, 1.6x
    read from the file: ``benchmarks/large_walk.py``). Read from the file, only the tensor being
    mixed is in memory besides the model, at the cost of one more copy.
    """
    reader, stored = getattr(view, "reader", None), getattr(view, "names", {}).get(name)
    if mapped or reader is None or stored is None or not hasattr(reader, "read_rows"):
        return view.get(name)
    shape = reader.shape(stored)
    return reader.read_rows(stored, 0, shape[0] if shape else 1).reshape(shape)


def _recipe(
    coefficients: Sequence[float], anchors: AnchorSet, name: str | None = None
) -> tuple[tuple[str, float], ...]:
    """The (content, coefficient) terms of one tensor's combination in the store key's canonical
    form (:func:`~weightscape.evaluation.keys.canonical_terms`: equal anchors merged, zero terms
    dropped, sorted by content), so a point is computed in one order, and to the same bits,
    whatever order the anchors were given in.

    With ``name`` (a bare base's head), each anchor's term reads the tensor that stands for it
    (:meth:`AnchorSet.supplier`), so the base's term merges into its head donor's."""
    if len(coefficients) != len(anchors):
        raise WeightscapeError(
            f"Got {len(coefficients)} coefficients for {len(anchors)} "
            "anchors; give one coefficient per anchor."
        )
    hashes = anchors.hashes
    if name is not None:
        hashes = [hashes[anchors.supplier(i, name)] for i in range(len(anchors))]
    merged: dict[str, float] = {}
    for content, coef in zip(hashes, coefficients, strict=True):
        merged[content] = merged.get(content, 0.0) + float(coef)
    return tuple((content, coef) for content, coef in sorted(merged.items()) if coef != 0.0)


def working_dtype(choice: str, checkpoints: Sequence[Checkpoint]) -> torch.dtype:
    """The working model's dtype for the ``dtype`` setting (``--dtype``).

    ``float32``, ``bfloat16`` and ``float16`` are taken as they are, whatever the anchors hold
    and whichever comes first. ``anchors`` keeps the anchors' own floating dtype (a bfloat16 zoo
    evaluated in bfloat16, at half the memory), read from the files' headers.

    Raises:
        WeightscapeError: For ``anchors`` when the anchors' floating tensors are not all of one
            dtype; for an unknown name.
    """
    if choice not in DTYPES:
        raise WeightscapeError(
            f"Unknown dtype '{choice}' (--dtype). Available: {', '.join(DTYPES)}."
        )
    if choice != "anchors":
        return getattr(torch, choice)
    held = {c.name: _floating_dtypes(TensorReader(c)) for c in checkpoints}
    found = {d for dtypes in held.values() for d in dtypes}
    if len(found) != 1:
        listed = "; ".join(f"'{name}' holds {' and '.join(d)}" for name, d in held.items())
        raise WeightscapeError(
            f"--dtype anchors keeps the anchors' own dtype, but they do not hold one dtype: "
            f"{listed}. Give the dtype to evaluate in: --dtype float32, bfloat16 or float16."
        )
    return getattr(torch, found.pop())


def _floating_dtypes(reader: TensorReader) -> list[str]:
    """The floating dtypes of a checkpoint's tensors, by name (``["bfloat16"]``)."""
    return sorted({reader.dtype(n) for n in reader.keys() if reader.is_floating_point(n)})  # noqa: SIM118


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
