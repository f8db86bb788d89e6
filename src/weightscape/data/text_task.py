"""The :class:`TextTask`: unlabelled documents for language-model losses along paths.

A text task is what a causal or masked language model is scored on (the per-token negative log
likelihood of its own text): documents and their row ids, nothing else. Like
:class:`~weightscape.data.task.Task` it is frozen and keyed by its content
(:meth:`TextTask.fingerprint`), so the results store, splits and subsets treat both alike.

Sources (:func:`load_text_task`, or ``--task text:PATH`` on the command line):

- a plain text file (any suffix but the table ones): one document per nonempty line (leading and
  trailing white space stripped);
- a ``.jsonl``/``.json`` file or a directory written by ``datasets``' ``save_to_disk``
  (``"dir::split"`` for a ``DatasetDict``): the ``text`` column, or the one named by
  ``text_column``. Every cell must be a nonempty string.

Ids are 0-based positions among the documents of the source (lines kept, rows of the table).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from weightscape.data.task import ContentKeyed
from weightscape.errors import WeightscapeError

__all__ = ["TEXT_PREFIX", "TextTask", "load_text_task", "make_text_task"]

TEXT_PREFIX = "text:"
"""How a task spec names a text task: ``text:PATH`` (``--task text:corpus.txt``)."""

TEXT_METRICS: tuple[str, ...] = ("loss", "perplexity", "accuracy")
_FINGERPRINT_VERSION = b"weightscape.text_task/1"
_TABLE_SUFFIXES = (".jsonl", ".json")


@dataclass(frozen=True, eq=False)
class TextTask(ContentKeyed):
    """Documents to score a language model on, with their row ids.

    A text task has no labels: ``labels``, ``num_labels`` and ``text_b`` are None, so code that
    completes classification metrics from stored labels (the results store) leaves its points
    as they are.

    Attributes:
        name: A short name, e.g. the file's stem.
        texts: The documents.
        ids: ``int64`` row ids into the source's documents.
        metrics: Names of the metrics reported for this task.

    Example:
        >>> task = make_text_task("toy", ["a b c", "d e", "f"])
        >>> len(task), task.ids.tolist(), task.select([2, 0]).ids.tolist()
        (3, [0, 1, 2], [2, 0])
    """

    name: str
    texts: tuple[str, ...]
    ids: np.ndarray
    metrics: tuple[str, ...] = TEXT_METRICS

    labels = None  # no labels: see the class docstring
    num_labels = None
    text_b = None
    is_pair = False

    def __post_init__(self) -> None:
        name = str(self.name)
        texts = tuple(self.texts)
        bad = [row for row, text in enumerate(texts) if not isinstance(text, str) or not text]
        if bad:
            raise WeightscapeError(
                f"Text task '{name}': documents {bad[:10]} are empty or not strings. Drop or "
                "fill them first."
            )
        if not texts:
            raise WeightscapeError(
                f"Text task '{name}' has no documents. Check the data source (an empty file, or "
                "a split or subset that removed every row)."
            )
        ids = np.asarray(self.ids)
        if ids.size == 0:
            ids = ids.astype(np.int64)
        if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer) or len(ids) != len(texts):
            raise WeightscapeError(
                f"Text task '{name}': ids must be {len(texts)} integers, one per document. Got "
                f"an array of dtype {ids.dtype} and shape {ids.shape} instead."
            )
        ids = ids.astype(np.int64, copy=True)
        ids.setflags(write=False)
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "texts", texts)
        object.__setattr__(self, "ids", ids)
        object.__setattr__(self, "metrics", tuple(str(metric) for metric in self.metrics))

    _frozen_arrays = ("ids",)

    def __len__(self) -> int:
        return len(self.texts)

    def __repr__(self) -> str:
        return f"TextTask(name={self.name!r}, documents={len(self)})"

    @property
    def text_a(self) -> tuple[str, ...]:
        """The documents (the name classification tasks give their first input)."""
        return self.texts

    def fingerprint(self) -> str:
        """The sha256 hex digest of the name, the documents and the ids (not ``metrics``).

        Its own version prefix keeps it apart from every classification task's fingerprint.
        """
        return self._fingerprint

    @cached_property
    def _fingerprint(self) -> str:
        digest = hashlib.sha256(_FINGERPRINT_VERSION)
        for chunk in (
            json.dumps({"name": self.name}).encode(),
            json.dumps(list(self.texts), ensure_ascii=False).encode(),
            self.ids.astype("<i8").tobytes(),
        ):
            digest.update(len(chunk).to_bytes(8, "little"))  # length-prefixed: no ambiguity
            digest.update(chunk)
        return digest.hexdigest()

    def select(self, indices: Sequence[int] | np.ndarray, name: str | None = None) -> TextTask:
        """A new task with the documents at ``indices`` (positions in this task), in that order.

        Raises:
            WeightscapeError: If an index is not an integer in ``range(len(self))``.
        """
        positions = np.asarray(indices)
        if positions.size == 0:
            positions = positions.astype(np.int64)
        if positions.ndim != 1 or not np.issubdtype(positions.dtype, np.integer):
            raise WeightscapeError(
                f"TextTask.select of task '{self.name}' needs a 1-D sequence of integer "
                f"positions. Got dtype {positions.dtype}, shape {positions.shape} instead."
            )
        if positions.size and (positions.min() < 0 or positions.max() >= len(self)):
            raise WeightscapeError(
                f"TextTask.select of task '{self.name}' got positions outside "
                f"range(0, {len(self)}). Pass row positions of this task, not ids."
            )
        return TextTask(
            name=self.name if name is None else name,
            texts=tuple(self.texts[i] for i in positions.tolist()),
            ids=self.ids[positions],
            metrics=self.metrics,
        )


def make_text_task(
    name: str, texts: Sequence[str], ids: Sequence[int] | np.ndarray | None = None
) -> TextTask:
    """A :class:`TextTask` from plain sequences; ``ids`` default to ``0 .. n-1``."""
    row_ids = np.arange(len(texts), dtype=np.int64) if ids is None else ids
    return TextTask(name=name, texts=tuple(texts), ids=np.asarray(row_ids))


def is_text_spec(spec: object) -> bool:
    """Whether a task spec names a text task (``text:PATH``)."""
    return isinstance(spec, str) and spec.startswith(TEXT_PREFIX)


def load_text_task(
    spec: str | os.PathLike[str], *, text_column: str | None = None, name: str | None = None
) -> TextTask:
    """Load a text task from ``text:PATH`` (or a bare path): a text file, JSONL or datasets folder.

    Args:
        spec: ``text:PATH`` as the user typed it, or the path alone.
        text_column: The column of a JSONL file or datasets folder holding the documents
            (default ``text``); refused for a plain text file, which has no columns.
        name: The task name; defaults to the file stem (plus ``":split"`` for a split).

    Raises:
        WeightscapeError: Naming ``spec`` as given, for a missing path, an unreadable or empty
            source, a missing column, or empty or non-string documents.
    """
    typed = os.fspath(spec)
    path_text = typed[len(TEXT_PREFIX) :] if typed.startswith(TEXT_PREFIX) else typed
    if not path_text.strip():
        raise WeightscapeError(
            f"The text task '{typed}' names no file. Write text:PATH, e.g. text:corpus.txt."
        )
    from weightscape.data.tables import _parse_spec, _read_table

    try:
        named = Path(path_text.rsplit("::", 1)[0] if "::" in path_text else path_text)
        if not Path(path_text).expanduser().exists() and not named.expanduser().exists():
            raise WeightscapeError(
                f"No file or directory at '{named}'. Give a plain text file (one document "
                "per line), a JSON-lines file with a 'text' field, or a datasets folder."
            )
        location, split = _parse_spec(path_text, None)
        if location.is_file() and location.suffix.lower() not in _TABLE_SUFFIXES:
            if text_column is not None:
                raise WeightscapeError(
                    f"A text column ('{text_column}') was given, but '{location}' is a plain text "
                    "file (one document per line). Drop the column, or give a JSONL file."
                )
            texts = _lines(location)
        else:
            frame, _ = _read_table(location, split)
            texts = _column_texts(frame, text_column or "text", location)
    except WeightscapeError as err:
        raise WeightscapeError(f"Cannot load the text task '{typed}': {err}") from None
    if not texts:
        raise WeightscapeError(
            f"Cannot load the text task '{typed}': '{location}' holds no documents (no "
            "nonempty line or row)."
        )
    stem = location.stem if location.is_file() else location.name
    task_name = name or (f"{stem}:{split}" if split else stem)
    return make_text_task(task_name, texts)


def _lines(location: Path) -> list[str]:
    try:
        raw = location.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise WeightscapeError(f"'{location}' is not readable UTF-8 text ({err}).") from None
    return [line.strip() for line in raw.splitlines() if line.strip()]


def _column_texts(frame, column: str, location: Path) -> list[str]:
    if column not in frame.columns:
        available = ", ".join(str(c) for c in frame.columns) or "none"
        raise WeightscapeError(
            f"Column '{column}' is not in '{location}'. Available columns: {available}. Name "
            "the documents' column with --text-columns."
        )
    values = frame[column].tolist()
    bad = [row for row, v in enumerate(values) if not isinstance(v, str) or not v.strip()]
    if bad:
        raise WeightscapeError(
            f"Column '{column}' of '{location}' has {len(bad)} empty or non-text value(s), at "
            f"rows {bad[:10]} (0-based). Fill or drop them first."
        )
    return [str(v) for v in values]
