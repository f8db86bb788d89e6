"""Where a checkpoint's tensors are, under the working model's names.

A point is written into the working model's ``state_dict()`` names. A checkpoint can hold the
same tensors under other names in two ways, both resolved here from the model and the files
themselves, never from lists of names:

* **Tied tensors**: one tensor under several names. T5's and BART's token table is ``shared``,
  ``encoder.embed_tokens`` and ``decoder.embed_tokens``; a language-model head may be the input
  embeddings. ``save_pretrained`` writes one name of each such group (transformers 5 the source
  of the tie, older versions every name). The groups are the state-dict names whose tensors share
  storage in the working model, joined with the ties the model declares
  (``all_tied_weights_keys``). A checkpoint holding any one name of a group serves the whole
  group, and a point writes the group once (:func:`secondary_names`: one storage, one write).
  ALBERT's layers shared across depth are one module, hence one set of names: nothing to resolve.
* **A bare pretrained base**: a checkpoint that lacks every tensor of the working model's task
  head (a ``BertModel`` folder such as all-MiniLM-L6-v2's, or a masked-LM checkpoint) is the
  pretrained encoder of the classifiers it is combined with. Its tensors are found under the
  classifier's names (the ``base_model_prefix``, ``bert.``, added where it was saved without it);
  its own pretraining head, if any, is not used; and **its task head is taken from the classifier
  the working model is built from** (the head donor, :func:`classifier_anchor`). On the line
  base -> classifier, t = 1 is the classifier exactly, t = 0 is the base encoder under the
  classifier's head, and every t carries the classifier's head (the head's terms all read the
  donor's tensor, so their coefficients add up to 1), so ``interpolate base ft --extrapolate``
  walks the task vector (WiSE-FT; task-vector scaling). Store keys of points with such an anchor
  name the donor (``heads_from``), since the same base with another classifier's head is another
  model.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from weightscape.errors import WeightscapeError
from weightscape.models.checkpoint import Checkpoint, TensorReader
from weightscape.models.space import is_head

if TYPE_CHECKING:
    import torch

TASK_HEAD_CLASS = "ForSequenceClassification"  # config.architectures of a finetuned classifier
logger = logging.getLogger(__name__)
_said: set[str] = set()  # one line per anchor set and process, not one per point


def tied_groups(model: torch.nn.Module, declared: bool = True) -> dict[str, tuple[str, ...]]:
    """Each state-dict name that shares its tensor with others -> the whole group, in state-dict
    order.

    Groups are the names whose tensors share storage (same memory, offset, shape and strides),
    joined (``declared``) with the ties the model declares (transformers 5
    ``all_tied_weights_keys``: tied name -> source name), so a checkpoint's tensor is found for
    a tie even in a model built without tying its weights (``no_init_weights`` skips it).
    """
    state = model.state_dict()
    parent = {name: name for name in state}

    def root(name: str) -> str:
        while parent[name] != name:
            parent[name] = parent[parent[name]]
            name = parent[name]
        return name

    def join(a: str, b: str) -> None:
        parent[root(b)] = root(a)

    first_of: dict[tuple, str] = {}
    for name, tensor in state.items():
        if tensor.numel() == 0:
            continue
        where = (
            tensor.untyped_storage().data_ptr(),
            tensor.storage_offset(),
            tuple(tensor.shape),
            tuple(tensor.stride()),
            tensor.dtype,
        )
        if where in first_of:
            join(first_of[where], name)
        else:
            first_of[where] = name
    for tied, source in _declared_ties(model) if declared else ():
        if tied in parent and source in parent:
            join(source, tied)
    groups: dict[str, list[str]] = {}
    for name in state:
        groups.setdefault(root(name), []).append(name)
    return {name: tuple(g) for g in groups.values() if len(g) > 1 for name in g}


def _declared_ties(model: Any) -> Iterable[tuple[str, str]]:
    ties = getattr(model, "all_tied_weights_keys", None)
    return ties.items() if isinstance(ties, Mapping) else ()


def secondary_names(model: torch.nn.Module) -> frozenset[str]:
    """Every name sharing storage with an earlier state-dict name: writing the first writes them
    all, so a point writes each storage once. Declared ties that are separate tensors in this
    model are not among them: each is written."""
    groups = tied_groups(model, declared=False)
    return frozenset(name for group in groups.values() for name in group[1:])


@dataclass(frozen=True)
class AnchorView:
    """One checkpoint's tensors under the working model's names.

    Attributes:
        reader: The checkpoint's tensors.
        names: Model name -> the name it has in the checkpoint, for each tensor it supplies.
        borrowed: Model names the checkpoint lacks and takes from the head donor: the task head
            of a bare base (empty for a full model).
    """

    reader: TensorReader
    names: Mapping[str, str]
    borrowed: frozenset[str] = field(default_factory=frozenset)

    @property
    def checkpoint(self) -> Checkpoint:
        return self.reader.checkpoint

    def get(self, name: str) -> Any:
        """The checkpoint's tensor for model name ``name``."""
        return self.reader.get(self.names[name])


def lacks_head(reader: TensorReader, head_names: Sequence[str]) -> bool:
    """Whether a checkpoint is a bare base: the model has a task head and it holds none of it."""
    return bool(head_names) and not any(name in reader for name in head_names)


def view_of(
    reader: TensorReader,
    names: Sequence[str],
    groups: Mapping[str, tuple[str, ...]],
    prefix: str,
) -> AnchorView:
    """``reader`` seen under the model's ``names`` (tied aliases; for a bare base also the
    ``prefix``-less names and the head borrowed, see the module docstring)."""
    heads = [n for n in names if is_head(n)]
    # A head tied to the embeddings (a language model's lm_head) is held under its tie's name.
    base = bool(heads) and not any(_find(reader, groups.get(h, (h,)), None) for h in heads)
    strip = f"{prefix}." if base and prefix else None
    found = {}
    for name in names:
        where = _find(reader, (name, *groups.get(name, ())), strip)  # its own name first
        if where is not None:
            found[name] = where
    return AnchorView(reader, found, frozenset(heads) if base else frozenset())


def _find(reader: TensorReader, candidates: Sequence[str], strip: str | None) -> str | None:
    for candidate in candidates:
        if candidate in reader:
            return candidate
    if strip is not None:
        for candidate in candidates:
            if candidate.startswith(strip) and candidate[len(strip) :] in reader:
                return candidate[len(strip) :]
    return None


def unused_names(view: AnchorView, non_persistent: set[str], prefix: str) -> list[str]:
    """Checkpoint tensors the model has no place for (sorted): not read under any model name,
    not a buffer the model keeps out of its state dict, and, for a bare base, not its own
    pretraining head (a masked-LM base's ``cls.*``)."""
    used = set(view.names.values())
    return sorted(
        name
        for name in view.reader.keys()  # noqa: SIM118
        if name not in used
        and name not in non_persistent
        and f"{prefix}.{name}" not in non_persistent
        and not (view.borrowed and is_head(name))
    )


def classifier_anchor(checkpoints: Sequence[Checkpoint], reference: int) -> int:
    """The anchor the working model is built from: ``reference``, unless its config names a
    model without a task head (``config.architectures`` such as ``["BertModel"]``) and another
    anchor's names a sequence classifier; then the first such anchor.

    So ``interpolate base ft`` and ``interpolate ft base`` build the same classifier.
    """
    if _is_classifier(checkpoints[reference]) is not False:
        return reference
    for i, checkpoint in enumerate(checkpoints):
        if _is_classifier(checkpoint):
            return i
    return reference


def _is_classifier(checkpoint: Checkpoint) -> bool | None:
    """Whether ``config.architectures`` names a sequence classifier (None: it names nothing)."""
    try:
        config = json.loads((checkpoint.config_dir() / "config.json").read_text())
    except (OSError, ValueError, WeightscapeError):
        return None  # no config (bare weight files) or an unreadable one (build_model says)
    names = config.get("architectures") if isinstance(config, dict) else None
    if not isinstance(names, list) or not names:
        return None
    return any(str(n).endswith(TASK_HEAD_CLASS) for n in names)


def head_donor_hash(checkpoints: Sequence[Checkpoint], donor: int) -> str | None:
    """The content hash of the head donor when some anchor is a bare base (it takes the donor's
    head, so the donor is part of what such points compute), else None. Reads only names."""
    donor_reader = TensorReader(checkpoints[donor])
    heads = [n for n in donor_reader.keys() if is_head(n)]  # noqa: SIM118
    if any(lacks_head(TensorReader(c), heads) for c in checkpoints):
        return checkpoints[donor].content_hash()
    return None


def head_donor(views: Sequence[AnchorView], head_from: int | None) -> int:
    """The anchor whose task head a bare base takes: ``head_from`` (the anchor the working model
    was built from), or the first anchor with a head; says once which anchors borrow it.

    Raises:
        WeightscapeError: When some anchor lacks the head and ``head_from`` does too, or none has
            one.
    """
    bases = [v.checkpoint.name for v in views if v.borrowed]
    full = [i for i, v in enumerate(views) if not v.borrowed]
    if not bases:
        return head_from if head_from is not None else 0
    if not full or (head_from is not None and views[head_from].borrowed):
        built = views[head_from].checkpoint.name if head_from is not None else bases[0]
        raise WeightscapeError(
            f"The working model is built from '{built}', which has no classification head "
            f"(anchors without one: {', '.join(bases)}). A bare pretrained model takes its head "
            "from a classifier finetuned from it: give such a classifier among the anchors and "
            "make sure its config.json names its class (architectures: "
            f"[...{TASK_HEAD_CLASS}])."
        )
    donor = head_from if head_from is not None else full[0]
    message = (
        f"{', '.join(repr(b) for b in bases)} {'has' if len(bases) == 1 else 'have'} no "
        f"classification head: on every point the head of '{views[donor].checkpoint.name}' "
        "stands for it (t = 0 on the line base -> classifier is the base under the classifier's "
        "head)."
    )
    if message not in _said:
        _said.add(message)
        logger.warning(message)
    return donor


class NameView:
    """A checkpoint read under the names of a task model, with no model built (weight-space
    statistics: distances, Gram matrices, task vectors).

    A name resolves to the checkpoint's own tensor of that name, else to the name without its
    first component (a bare base saved without the task model's ``bert.`` prefix), else, for a
    task-head tensor when ``donor`` is given, to the donor's: the head a bare base borrows from
    its classifier, as in the engine (so the base -> classifier distance is over the encoder).

    Attributes:
        skip_missing: Whether names it cannot resolve are left out of statistics instead of
            reported (a base's missing head in task vectors).
    """

    def __init__(
        self,
        reader: TensorReader,
        donor: TensorReader | None = None,
        skip_missing: bool = False,
    ) -> None:
        self.reader, self.donor, self.skip_missing = reader, donor, skip_missing
        self.checkpoint = reader.checkpoint

    def resolve(self, name: str) -> tuple[TensorReader, str] | None:
        """Where the tensor for ``name`` is: ``(reader, its name there)``, or None."""
        if name in self.reader:
            return self.reader, name
        stripped = name.split(".", 1)[1] if "." in name else name
        if stripped in self.reader:
            return self.reader, stripped
        if self.donor is not None and is_head(name) and name in self.donor:
            return self.donor, name
        return None

    def keys(self) -> list[str]:
        """The names it answers to: the donor's (a bare base seen as its classifier), else its
        own."""
        if self.donor is None:
            return self.reader.keys()
        return [n for n in self.donor.keys() if n in self]  # noqa: SIM118

    def __contains__(self, name: str) -> bool:
        return self.resolve(name) is not None

    def _at(self, name: str) -> tuple[TensorReader, str]:
        where = self.resolve(name)
        if where is None:
            raise KeyError(name)
        return where

    def shape(self, name: str) -> tuple[int, ...]:
        reader, local = self._at(name)
        return reader.shape(local)

    def is_floating_point(self, name: str) -> bool:
        reader, local = self._at(name)
        return reader.is_floating_point(local)

    def get(self, name: str) -> Any:
        reader, local = self._at(name)
        return reader.get(local)

    def read_rows(self, name: str, start: int, stop: int) -> Any:
        reader, local = self._at(name)
        return reader.read_rows(local, start, stop)


def aligned_readers(checkpoints: Sequence[Checkpoint]) -> list[TensorReader | NameView]:
    """Readers of ``checkpoints``, a bare base among them seen as its classifier (a
    :class:`NameView` whose donor is the first checkpoint whose config names a sequence
    classifier)."""
    readers = [TensorReader(c) for c in checkpoints]
    donor = next((r for r in readers if _is_classifier(r.checkpoint)), None)
    if donor is None:
        return list(readers)
    heads = [n for n in donor.keys() if is_head(n)]  # noqa: SIM118
    return [NameView(r, donor) if lacks_head(r, heads) else r for r in readers]
