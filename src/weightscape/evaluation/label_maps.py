"""Label maps: evaluate a k-class model on a task with fewer, coarser classes.

An MNLI model has three outputs (entailment, neutral, contradiction) and HANS two (entailment,
non-entailment). Juneja et al. (2023, appendix F.3) take the non-entailment logit as the maximum
of the neutral and contradiction logits and keep the entailment logit. A :class:`LabelMap` does
that for any grouping: each target class owns a group of source classes, and its logit is the
group's logits reduced by

- ``"max"``: the largest logit in the group (Juneja et al.'s paper, and their code's default
  ``pool="max"``). The argmax of the mapped logits is the group of the model's own argmax, so
  accuracy equals collapsing the predicted label.
- ``"logit_sum"``: the sum of the group's logits, their code's other option (``pool="sum"`` in
  ``get_logits_converter``, ``src/constellations/model_loaders/modelling_utils.py`` of
  aNOnWhyMooS/connectivity). Unlike the other two it is not invariant to adding one constant to
  every logit (which leaves the model's probabilities unchanged): a group of two gains the
  constant twice, so its predictions depend on the logits' offset.
- ``"logsumexp"``: ``logsumexp`` of the group's logits, so that ``softmax`` of the mapped logits
  is the sum of the model's probabilities over each group (exactly, when the groups cover every
  source class; renormalised over the covered classes otherwise). The loss is then
  ``-log P(group)``, the probability-sum reading; predictions can differ from ``"max"`` when
  probability is spread.

The reduction once named ``"sum"`` (and the map ``mnli_to_hans_sum``) computed ``logsumexp``, not
the sum its name says; both names are retired and now raise an error naming the two
reductions, so a number computed under the old name is never silently replaced by another.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np
import torch

from weightscape.errors import WeightscapeError, unknown_name_error

REDUCTIONS = ("max", "logit_sum", "logsumexp")
RETIRED_REDUCTIONS = {
    "sum": "The label-map reduction 'sum' was retired: it computed logsumexp (probabilities "
    "summed over the group), not a sum of logits. Choose reduce='logsumexp' for that, or "
    "reduce='logit_sum' for Juneja et al.'s pool='sum' (the group's logits added).",
}
"""Reduction names that once meant something else: an error that names the replacements."""


@dataclass(frozen=True)
class LabelMap:
    """Map ``(batch, k)`` logits to ``(batch, len(groups))`` by reducing groups of classes.

    Attributes:
        groups: For each target class, the source class indices it collects; every source index
            may appear in at most one group, and source classes in no group are ignored.
        names: The target class names, one per group.
        reduce: ``"max"``, ``"logit_sum"`` or ``"logsumexp"``; see the module docstring.
        sources: The names of the source classes the indices in ``groups`` refer to, in index
            order. A model's output columns are matched to them by name (its config's
            ``id2label``) before the map applies, so a model that orders its classes otherwise
            is still read right (:mod:`weightscape.models.labels`).

    Example:
        >>> logits = torch.tensor([[2.0, 1.0, 3.0]])
        >>> MNLI_TO_HANS.apply(logits)
        tensor([[2., 3.]])
        >>> MNLI_TO_HANS.map_labels([0, 1, 2]).tolist()
        [0, 1, 1]
    """

    groups: tuple[tuple[int, ...], ...]
    names: tuple[str, ...]
    reduce: str = "max"
    sources: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        groups = _check_groups(self.groups)
        names = tuple(str(name) for name in self.names)
        if len(names) != len(groups) or len(set(names)) != len(names):
            raise WeightscapeError(
                f"A LabelMap needs one distinct name per group: {len(groups)} groups, got names "
                f"{names!r}. Pass names=(...) with one name for each group."
            )
        if self.reduce in RETIRED_REDUCTIONS:
            raise WeightscapeError(RETIRED_REDUCTIONS[self.reduce])
        if self.reduce not in REDUCTIONS:
            raise unknown_name_error("label-map reduction", str(self.reduce), REDUCTIONS)
        object.__setattr__(self, "groups", groups)
        object.__setattr__(self, "names", names)
        if self.sources is not None:
            sources = tuple(str(name) for name in self.sources)
            if len(sources) < self.num_sources or len(set(sources)) != len(sources):
                raise WeightscapeError(
                    f"The 'sources' of a LabelMap must name each of its {self.num_sources} source "
                    f"classes once, in index order. Got {self.sources!r} instead."
                )
            object.__setattr__(self, "sources", sources)

    @property
    def num_sources(self) -> int:
        """The fewest source classes a model needs: one more than the largest index used."""
        return 1 + max(index for group in self.groups for index in group)

    def apply(self, logits: torch.Tensor) -> torch.Tensor:
        """Reduce each group's logits: ``(batch, k)`` -> ``(batch, len(groups))``.

        Raises:
            WeightscapeError: If ``logits`` is not 2-D or has fewer than :attr:`num_sources`
                columns.
        """
        if logits.ndim != 2 or logits.shape[1] < self.num_sources:
            raise WeightscapeError(
                f"LabelMap {self.names} needs logits of shape (batch, k) with k >= "
                f"{self.num_sources}. Got shape {tuple(logits.shape)}; is the model's head the "
                "one the map was written for?"
            )
        reducer = _REDUCERS[self.reduce]
        return torch.stack([reducer(logits[:, list(group)]) for group in self.groups], dim=1)

    def map_labels(self, labels: np.ndarray | list[int]) -> np.ndarray:
        """Map source labels (e.g. MNLI gold labels) to target labels, as ``int64``.

        Raises:
            WeightscapeError: If a label belongs to no group.
        """
        lookup = {index: target for target, group in enumerate(self.groups) for index in group}
        source = np.asarray(labels, dtype=np.int64).ravel()
        unmapped = sorted({int(label) for label in source} - set(lookup))
        if unmapped:
            raise WeightscapeError(
                f"Labels {unmapped} belong to no group of LabelMap {self.names} "
                f"(groups {self.groups}). Add them to a group or drop those rows."
            )
        return np.array([lookup[int(label)] for label in source], dtype=np.int64)


def _max(group_logits: torch.Tensor) -> torch.Tensor:
    return group_logits.max(dim=1).values


def _logit_sum(group_logits: torch.Tensor) -> torch.Tensor:
    return group_logits.sum(dim=1)


def _logsumexp(group_logits: torch.Tensor) -> torch.Tensor:
    return torch.logsumexp(group_logits, dim=1)


_REDUCERS = {"max": _max, "logit_sum": _logit_sum, "logsumexp": _logsumexp}


def _check_groups(groups: object) -> tuple[tuple[int, ...], ...]:
    try:
        checked = tuple(tuple(group) for group in groups)  # type: ignore[union-attr]
    except TypeError:
        checked = ()
    flat = [index for group in checked for index in group]
    valid = (
        bool(checked)
        and all(checked)
        and all(
            isinstance(i, numbers.Integral) and not isinstance(i, bool) and i >= 0 for i in flat
        )
    )
    if not valid:
        raise WeightscapeError(
            "The 'groups' of a LabelMap must be a non-empty sequence of non-empty sequences of "
            f"class indices >= 0, e.g. ((0,), (1, 2)). Got {groups!r} instead."
        )
    repeated = sorted({i for i in flat if flat.count(i) > 1})
    if repeated:
        raise WeightscapeError(
            f"Source classes {repeated} appear in more than one group of a LabelMap "
            f"({groups!r}). Each source class may belong to one group at most."
        )
    return tuple(tuple(int(i) for i in group) for group in checked)


MNLI_CLASSES = ("entailment", "neutral", "contradiction")
MNLI_TO_HANS = LabelMap(
    groups=((0,), (1, 2)), names=("entailment", "non-entailment"), sources=MNLI_CLASSES
)
"""MNLI (entailment, neutral, contradiction) to HANS, the max rule of Juneja et al. (2023).
The source classes are matched to a model's columns by name, whatever order the model uses."""

LABEL_MAPS: dict[str, LabelMap] = {
    "mnli_to_hans": MNLI_TO_HANS,
    "mnli_to_hans_logit_sum": LabelMap(
        ((0,), (1, 2)), MNLI_TO_HANS.names, reduce="logit_sum", sources=MNLI_CLASSES
    ),
    "mnli_to_hans_logsumexp": LabelMap(
        ((0,), (1, 2)), MNLI_TO_HANS.names, reduce="logsumexp", sources=MNLI_CLASSES
    ),
}
"""Registry of named label maps, for study files and the command line."""

RETIRED_LABEL_MAPS = {
    "mnli_to_hans_sum": "The label map 'mnli_to_hans_sum' was retired: it computed logsumexp "
    "(the probabilities of neutral and contradiction added), not the sum of logits its name "
    "says. Choose 'mnli_to_hans_logsumexp' for that number, or 'mnli_to_hans_logit_sum' for "
    "Juneja et al.'s pool='sum' (neutral + contradiction logits); 'mnli_to_hans' is the "
    "paper's max rule.",
}
"""Label-map names that once meant something else: an error that names the replacements."""


def get_label_map(name: str) -> LabelMap:
    """The label map registered as ``name``.

    Raises:
        WeightscapeError: For an unknown name (with the closest valid one), or a retired one
            (naming its replacements).

    >>> get_label_map("mnli_to_hans").reduce
    'max'
    """
    if name in RETIRED_LABEL_MAPS:
        raise WeightscapeError(RETIRED_LABEL_MAPS[name])
    if name not in LABEL_MAPS:
        raise unknown_name_error("label map", str(name), LABEL_MAPS)
    return LABEL_MAPS[name]
