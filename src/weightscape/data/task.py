"""The :class:`Task`: a labelled text-classification dataset, validated once and immutable.

Everything downstream (tokenisation caches, the evaluation engine, the results store) keys on a
task's content, so a :class:`Task` is frozen, its arrays are read-only, and
:meth:`Task.fingerprint` hashes exactly the content that defines it. Each row carries an ``id``:
its row number in the original full dataset, so per-example outcomes stay traceable through
splits and subsets.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from weightscape.errors import WeightscapeError

DEFAULT_METRICS: tuple[str, ...] = ("loss", "accuracy", "macro_f1", "mcc")

# Bump when the canonical encoding below changes, so that old store keys can never collide.
_FINGERPRINT_VERSION = b"weightscape.task/1"


class ContentKeyed:
    """Equality and hashing by :meth:`fingerprint` (the content that defines a task), and
    read-only arrays again after unpickling (numpy gives them back writeable, e.g. in a worker
    process). Shared by every task type; ``_frozen_arrays`` names the arrays to freeze."""

    _frozen_arrays: tuple[str, ...] = ()

    def fingerprint(self) -> str:  # pragma: no cover - every task type defines it
        raise NotImplementedError

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        for name in self._frozen_arrays:
            getattr(self, name).setflags(write=False)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self.fingerprint() == other.fingerprint()

    def __hash__(self) -> int:
        return hash(self.fingerprint())


@dataclass(frozen=True, eq=False)
class Task(ContentKeyed):
    """A text-classification dataset: inputs, integer labels, label names and row ids.

    Construction validates the content and normalises it: texts become tuples of ``str``,
    ``labels`` and ``ids`` become read-only ``int64`` arrays. Two tasks are equal when their
    fingerprints are.

    Attributes:
        name: A short name, e.g. ``"rotten_tomatoes"`` or a file's stem.
        text_a: The first input text of each example.
        text_b: The second input of each example for sentence-pair tasks, else ``None``.
        labels: ``int64`` array of label indices, each in ``range(len(label_names))``.
        label_names: The name of each label index, e.g. ``("negative", "positive")``.
        ids: ``int64`` row ids into the original full dataset.
        metrics: Names of the metrics to report for this task.

    Example:
        >>> task = make_task("toy", ["good", "bad", "fine"], [1, 0, 1], ("negative", "positive"))
        >>> len(task), task.num_labels, task.ids.tolist()
        (3, 2, [0, 1, 2])
        >>> task.select([2, 0]).ids.tolist()
        [2, 0]
    """

    name: str
    text_a: tuple[str, ...]
    text_b: tuple[str, ...] | None
    labels: np.ndarray
    label_names: tuple[str, ...]
    ids: np.ndarray
    metrics: tuple[str, ...] = DEFAULT_METRICS

    def __post_init__(self) -> None:
        name = str(self.name)
        text_a = _as_texts(self.text_a, name, "text_a")
        text_b = None if self.text_b is None else _as_texts(self.text_b, name, "text_b")
        label_names = tuple(str(label) for label in self.label_names)
        labels = _as_int_array(self.labels, name, "labels")
        ids = _as_int_array(self.ids, name, "ids")
        if not text_a:
            raise WeightscapeError(
                f"Task '{name}' has no examples. Check the data source (an empty file, or a "
                "filter or split that removed every row)."
            )
        _check_lengths(name, len(text_a), text_b=text_b, labels=labels, ids=ids)
        _check_labels(name, labels, label_names)
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "text_a", text_a)
        object.__setattr__(self, "text_b", text_b)
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "label_names", label_names)
        object.__setattr__(self, "ids", ids)
        object.__setattr__(self, "metrics", tuple(str(metric) for metric in self.metrics))

    _frozen_arrays = ("labels", "ids")

    def __len__(self) -> int:
        return len(self.text_a)

    def __repr__(self) -> str:
        kind = "pairs" if self.is_pair else "single"
        return (
            f"Task(name={self.name!r}, examples={len(self)}, {kind}, "
            f"label_names={self.label_names!r})"
        )

    @property
    def num_labels(self) -> int:
        """The number of classes, ``len(label_names)``."""
        return len(self.label_names)

    @property
    def is_pair(self) -> bool:
        """Whether each example is a sentence pair (``text_b`` is set)."""
        return self.text_b is not None

    def fingerprint(self) -> str:
        """Return the sha256 hex digest of the task's content.

        The digest covers the name, both texts, labels, label names and ids (not ``metrics``,
        which say what to report, not what the data is). It is stable across processes and
        platforms, so it can key stored results; it is computed once per instance.
        """
        return self._fingerprint

    @cached_property
    def _fingerprint(self) -> str:
        # cached_property writes to the instance __dict__ directly, which a frozen dataclass allows.
        digest = hashlib.sha256(_FINGERPRINT_VERSION)
        header = {"name": self.name, "label_names": list(self.label_names), "pair": self.is_pair}
        _update(digest, json.dumps(header, sort_keys=True).encode())
        for texts in (self.text_a, self.text_b or ()):
            _update(digest, json.dumps(list(texts), ensure_ascii=False).encode())
        _update(digest, self.labels.astype("<i8").tobytes())
        _update(digest, self.ids.astype("<i8").tobytes())
        return digest.hexdigest()

    def select(self, indices: Sequence[int] | np.ndarray, name: str | None = None) -> Task:
        """Return a new task with the rows at ``indices`` (positions in this task), in that order.

        Ids are carried over, so the new rows still point into the original dataset.

        Args:
            indices: Row positions in ``range(len(self))``; repeats are allowed.
            name: The new task's name; defaults to this task's name.

        Raises:
            WeightscapeError: If an index is not an integer in ``range(len(self))``.
        """
        positions = np.asarray(indices)
        if positions.size == 0:
            positions = positions.astype(np.int64)
        if positions.ndim != 1 or not np.issubdtype(positions.dtype, np.integer):
            raise WeightscapeError(
                f"Task.select of task '{self.name}' needs a 1-D sequence of integer positions. "
                f"Got an array of dtype {positions.dtype} and shape {positions.shape} instead."
            )
        bad = positions[(positions < 0) | (positions >= len(self))]
        if bad.size:
            raise WeightscapeError(
                f"Task.select of task '{self.name}' got positions outside range(0, {len(self)}): "
                f"{_preview(bad.tolist())}. Pass row positions of this task, not ids."
            )
        take = positions.tolist()
        return Task(
            name=self.name if name is None else name,
            text_a=tuple(self.text_a[i] for i in take),
            text_b=None if self.text_b is None else tuple(self.text_b[i] for i in take),
            labels=self.labels[positions],
            label_names=self.label_names,
            ids=self.ids[positions],
            metrics=self.metrics,
        )


def make_task(
    name: str,
    text_a: Sequence[str],
    labels: Sequence[int] | np.ndarray,
    label_names: Sequence[str],
    *,
    text_b: Sequence[str] | None = None,
    ids: Sequence[int] | np.ndarray | None = None,
    metrics: Sequence[str] = DEFAULT_METRICS,
) -> Task:
    """Build a :class:`Task` from plain sequences; ``ids`` default to ``0 .. n-1``.

    Raises:
        WeightscapeError: If the content is invalid (see :class:`Task`).
    """
    row_ids = np.arange(len(text_a), dtype=np.int64) if ids is None else ids
    return Task(
        name=name,
        text_a=tuple(text_a),
        text_b=None if text_b is None else tuple(text_b),
        labels=np.asarray(labels),
        label_names=tuple(label_names),
        ids=np.asarray(row_ids),
        metrics=tuple(metrics),
    )


def _update(digest: hashlib._Hash, chunk: bytes) -> None:
    # Length-prefix each part so that no two different contents concatenate to the same bytes.
    digest.update(len(chunk).to_bytes(8, "little"))
    digest.update(chunk)


def _as_texts(texts: Sequence[str], name: str, field: str) -> tuple[str, ...]:
    values = tuple(texts)
    for row, value in enumerate(values):
        if not isinstance(value, str):
            raise WeightscapeError(
                f"Task '{name}': {field}[{row}] is {value!r} ({type(value).__name__}), not a "
                "string. Fill or drop missing texts before building the task."
            )
    return values


def _as_int_array(values: Sequence[int] | np.ndarray, name: str, field: str) -> np.ndarray:
    array = np.asarray(values)
    if array.size == 0:
        array = array.astype(np.int64)
    integral = np.issubdtype(array.dtype, np.integer) or (
        np.issubdtype(array.dtype, np.floating) and bool(np.all(np.mod(array, 1) == 0))
    )
    if array.ndim != 1 or not integral:
        raise WeightscapeError(
            f"Task '{name}': {field} must be a 1-D sequence of integers. Got an array of dtype "
            f"{array.dtype} and shape {array.shape} instead."
        )
    array = array.astype(np.int64, copy=True)
    array.setflags(write=False)
    return array


def _check_lengths(name: str, count: int, **fields: object) -> None:
    for field, values in fields.items():
        if values is not None and len(values) != count:
            raise WeightscapeError(
                f"Task '{name}': {field} has {len(values)} entries but text_a has {count}. "
                "Every field needs one entry per example."
            )


def _check_labels(name: str, labels: np.ndarray, label_names: tuple[str, ...]) -> None:
    if len(label_names) < 2:
        raise WeightscapeError(
            f"Task '{name}' needs at least 2 label names. Got {label_names!r}; pass the full "
            "label set (label_names) even if the data holds only one class."
        )
    if len(set(label_names)) != len(label_names):
        raise WeightscapeError(f"Task '{name}' has repeated label names: {label_names!r}.")
    bad = np.unique(labels[(labels < 0) | (labels >= len(label_names))])
    if bad.size:
        valid = ", ".join(f"{i}={label}" for i, label in enumerate(label_names))
        raise WeightscapeError(
            f"Task '{name}' has labels outside range(0, {len(label_names)}): "
            f"{_preview(bad.tolist())}. Valid labels: {valid}. Pass label_names covering every "
            "label, or fix the labels."
        )


def _preview(values: list[object], limit: int = 10) -> str:
    shown = ", ".join(repr(value) for value in values[:limit])
    return shown + (f", ... ({len(values)} in all)" if len(values) > limit else "")
