"""Load a :class:`~weightscape.data.task.Task` from a local table.

Supported sources (pandas, pyarrow and ``datasets`` do the parsing; all imported lazily):

- ``.csv`` and ``.tsv``: a header row, then one example per row. Cells are read as text, and a
  label column whose every value looks like an integer is read as integers. TSV follows the plain
  tab-separated convention (as in GLUE): no quoting, so a ``"`` is an ordinary character.
- ``.jsonl`` and ``.json``: one JSON object per line (``.json`` may also hold one array of
  objects). Types are kept as written.
- ``.parquet`` and ``.pq``.
- A directory written by ``datasets``' ``Dataset.save_to_disk``. A saved ``DatasetDict`` needs a
  split, given either as ``"path/to/dir::validation"`` or as ``split="validation"``.

Labels: an integer column is used as is, with ``label_names`` defaulting to the ``ClassLabel``
names where ``datasets`` has them, else ``"0" .. "k-1"`` (then the labels must cover ``0 .. k-1``,
otherwise pass ``label_names``: a missing ``0`` usually means 1-based labels). A string column
maps onto ``label_names`` (default: its sorted unique values). Row ids are the row numbers of the
table, so they point into the full file.
"""

from __future__ import annotations

import csv
import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from weightscape.data.task import Task
from weightscape.errors import WeightscapeError
from weightscape.logs import quiet_libraries

logger = logging.getLogger(__name__)

TABLE_SUFFIXES: dict[str, str] = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".jsonl": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}
# Tried in order when text_columns is not given.
DEFAULT_TEXT_COLUMNS: tuple[tuple[str, ...], ...] = (
    ("text",),
    ("sentence1", "sentence2"),
    ("premise", "hypothesis"),
    ("sentence",),
)
_INTEGER = re.compile(r"[+-]?\d+")


def load_table_task(
    path: str | os.PathLike[str],
    *,
    text_columns: str | Sequence[str] | None = None,
    label_column: str = "label",
    label_names: Sequence[str] | None = None,
    name: str | None = None,
    split: str | None = None,
) -> Task:
    """Load a task from a CSV, TSV, JSON-lines or parquet file, or a ``save_to_disk`` directory.

    Args:
        path: The file or directory; ``"dir::split"`` picks a split of a saved ``DatasetDict``.
        text_columns: One column (single-sentence task) or two (sentence pairs). Default: the
            first of ``text``, ``sentence1``/``sentence2``, ``premise``/``hypothesis``,
            ``sentence`` that the table has.
        label_column: The column holding the labels.
        label_names: The label set, in label-index order. Required when integer labels do not
            cover ``0 .. max``; fixes the order (and the full set) of string labels.
        name: The task name; defaults to the file stem (plus ``":split"`` for a split).
        split: The split of a saved ``DatasetDict`` (alternative to the ``::`` syntax).

    Raises:
        WeightscapeError: For a missing or unreadable file, an unsupported format, a missing
            column or split, missing values, or labels outside the label set.
    """
    location, split = _parse_spec(path, split)
    frame, class_names = _read_table(location, split)
    stem = location.stem if location.is_file() else location.name
    task_name = name or (f"{stem}:{split}" if split else stem)
    columns = _text_columns(frame, text_columns, location)
    if label_column not in frame.columns:
        raise _missing_column_error(label_column, "label_column", frame, location)
    if len(frame) == 0:
        raise WeightscapeError(
            f"Task '{task_name}' has no examples: '{location}' has columns but no rows."
        )
    texts = [_texts(frame, column, location) for column in columns]
    known_names = label_names if label_names is not None else class_names.get(label_column)
    labels, names = _labels(frame[label_column].tolist(), known_names, location, label_column)
    # Said because the text columns are often chosen by default: a wrong guess shows here.
    logger.info(
        "task '%s': %d examples from '%s' (text: %s; labels from '%s': %s)",
        task_name,
        len(frame),
        location,
        ", ".join(columns),
        label_column,
        ", ".join(names),
    )
    return Task(
        name=task_name,
        text_a=texts[0],
        text_b=texts[1] if len(texts) == 2 else None,
        labels=labels,
        label_names=names,
        ids=np.arange(len(frame), dtype=np.int64),
    )


def _parse_spec(path: str | os.PathLike[str], split: str | None) -> tuple[Path, str | None]:
    text = os.fspath(path)
    if "::" in text and not Path(text).exists():
        text, spec_split = text.rsplit("::", 1)
        if split is not None and split != spec_split:
            raise WeightscapeError(
                f"Two different splits given for '{text}': '{spec_split}' in the path and "
                f"'{split}' as split=. Give one."
            )
        split = spec_split
    location = Path(text).expanduser()
    if not location.exists():
        raise WeightscapeError(
            f"No file or directory at '{location}'. Give a CSV, TSV, JSON-lines or parquet file, "
            "or a directory written by datasets' save_to_disk."
        )
    if location.is_file() and split is not None:
        raise WeightscapeError(
            f"A split ('{split}') was given for the file '{location}', but splits only apply to a "
            "saved DatasetDict directory. Drop the split, or split the task with "
            "weightscape.data.split."
        )
    return location, split


def _read_table(location: Path, split: str | None) -> tuple[Any, dict[str, tuple[str, ...]]]:
    """Return the table as a pandas DataFrame and the ClassLabel names of its columns."""
    if location.is_dir():
        return _read_saved_dataset(location, split)
    kind = TABLE_SUFFIXES.get(location.suffix.lower())
    if kind is None:
        supported = ", ".join(sorted(TABLE_SUFFIXES))
        raise WeightscapeError(
            f"Unsupported table format '{location.suffix}' for '{location}'. Supported: "
            f"{supported}, or a directory written by datasets' save_to_disk."
        )
    logger.debug("reading '%s' as %s", location, kind.upper())
    import pandas as pd

    try:
        if kind in ("csv", "tsv"):
            options = {"sep": "\t", "quoting": csv.QUOTE_NONE} if kind == "tsv" else {}
            frame = pd.read_csv(location, dtype=str, **options)
        elif kind == "jsonl":
            is_array = location.read_text(encoding="utf-8").lstrip().startswith("[")
            frame = pd.read_json(location, lines=not is_array, dtype=False)
        else:
            frame = pd.read_parquet(location)
    except pd.errors.EmptyDataError as error:
        raise WeightscapeError(f"The file '{location}' is empty: it has no header.") from error
    except (ValueError, OSError, UnicodeDecodeError) as error:
        raise WeightscapeError(
            f"Could not read '{location}' as {kind.upper()}: {error}. Check that the file is "
            "complete and in that format (UTF-8 text for CSV, TSV and JSON lines)."
        ) from error
    return frame, {}


@quiet_libraries("datasets")
def _read_saved_dataset(
    location: Path, split: str | None
) -> tuple[Any, dict[str, tuple[str, ...]]]:
    # load_from_disk reads local files only: no offline switch needed (nor set: see logs.py).
    import datasets

    try:
        loaded = datasets.load_from_disk(str(location))
    except (FileNotFoundError, ValueError) as error:
        raise WeightscapeError(
            f"The directory '{location}' is not a dataset written by datasets' save_to_disk "
            f"({error}). Point to such a directory, or to a CSV, JSON-lines or parquet file."
        ) from error
    if isinstance(loaded, datasets.DatasetDict):
        available = ", ".join(sorted(loaded))
        if split is None:
            raise WeightscapeError(
                f"'{location}' holds a DatasetDict with splits {available}. Choose one as "
                f"'{location}::<split>' or with split=."
            )
        if split not in loaded:
            raise WeightscapeError(
                f"Unknown split '{split}' in '{location}'. Available: {available}."
            )
        loaded = loaded[split]
    elif split is not None:
        raise WeightscapeError(
            f"A split ('{split}') was given, but '{location}' holds a single Dataset, not a "
            "DatasetDict. Drop the split."
        )
    class_names = {
        column: tuple(feature.names)
        for column, feature in loaded.features.items()
        if isinstance(feature, datasets.ClassLabel)
    }
    return loaded.to_pandas(), class_names


def _text_columns(
    frame: Any, text_columns: str | Sequence[str] | None, location: Path
) -> tuple[str, ...]:
    if text_columns is None:
        for candidate in DEFAULT_TEXT_COLUMNS:
            if all(column in frame.columns for column in candidate):
                return candidate
        raise WeightscapeError(
            f"Could not guess the text columns of '{location}': it has none of "
            f"{', '.join('/'.join(c) for c in DEFAULT_TEXT_COLUMNS)}. Available columns: "
            f"{_column_list(frame)}. Pass text_columns."
        )
    columns = (text_columns,) if isinstance(text_columns, str) else tuple(text_columns)
    if len(columns) not in (1, 2):
        raise WeightscapeError(
            "The 'text_columns' parameter must name one column (single sentences) or two "
            f"(sentence pairs). Got {columns!r} instead."
        )
    for column in columns:
        if column not in frame.columns:
            raise _missing_column_error(column, "text_columns", frame, location)
    return columns


def _texts(frame: Any, column: str, location: Path) -> tuple[str, ...]:
    values = frame[column].tolist()
    missing = [row for row, value in enumerate(values) if _is_missing(value)]
    if missing:
        raise WeightscapeError(
            f"Column '{column}' of '{location}' has {len(missing)} missing value(s), at rows "
            f"{_rows(missing)} (0-based, header excluded). Fill or drop them first."
        )
    # str() because pandas 3 may hand back numpy/arrow scalars; texts must be plain Python str.
    return tuple(str(value) for value in values)


def _labels(
    values: list[Any], label_names: Sequence[str] | None, location: Path, column: str
) -> tuple[np.ndarray, tuple[str, ...]]:
    missing = [row for row, value in enumerate(values) if _is_missing(value)]
    if missing:
        raise WeightscapeError(
            f"Label column '{column}' of '{location}' has {len(missing)} missing value(s), at "
            f"rows {_rows(missing)} (0-based, header excluded). Fill or drop them first."
        )
    integers = _as_integers(values)
    if integers is None:
        return _string_labels([str(value) for value in values], label_names, location, column)
    if label_names is not None:
        return integers, tuple(label_names)
    absent = sorted(set(range(int(integers.max()) + 1)) - set(integers.tolist()))
    if absent or integers.min() < 0:
        raise WeightscapeError(
            f"Integer labels in column '{column}' of '{location}' range over "
            f"{sorted(set(integers.tolist()))[:10]} and do not cover 0..{integers.max()} "
            f"(missing: {absent[:10]}). Pass label_names to give the label set (labels index "
            "into it), or relabel them 0..k-1."
        )
    return integers, tuple(str(index) for index in range(int(integers.max()) + 1))


def _string_labels(
    values: list[str], label_names: Sequence[str] | None, location: Path, column: str
) -> tuple[np.ndarray, tuple[str, ...]]:
    names = tuple(label_names) if label_names is not None else tuple(sorted(set(values)))
    index = {label: position for position, label in enumerate(names)}
    unknown = sorted(set(values) - set(index))
    if unknown:
        raise WeightscapeError(
            f"Labels {unknown[:10]} in column '{column}' of '{location}' are not in the label set "
            f"{list(names)}. Add them to label_names or fix the data."
        )
    return np.array([index[value] for value in values], dtype=np.int64), names


def _as_integers(values: list[Any]) -> np.ndarray | None:
    """Return the labels as int64 if every one is an integer (or integer-looking text)."""
    if all(_is_integral_number(value) for value in values):
        return np.array(values, dtype=np.int64)
    if all(isinstance(value, str) and _INTEGER.fullmatch(value.strip()) for value in values):
        return np.array([int(value) for value in values], dtype=np.int64)
    return None


def _is_integral_number(value: Any) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return False
    if isinstance(value, (int, np.integer)):
        return True
    return isinstance(value, (float, np.floating)) and float(value).is_integer()


def _is_missing(value: Any) -> bool:
    import pandas as pd

    # None, NaN, pd.NA and NaT; "is True" because isna of a list cell is an array, not missing.
    return pd.isna(value) is True


def _missing_column_error(column: str, parameter: str, frame: Any, location: Path) -> Exception:
    return WeightscapeError(
        f"Column '{column}' ({parameter}) is not in '{location}'. Available columns: "
        f"{_column_list(frame)}."
    )


def _column_list(frame: Any) -> str:
    return ", ".join(str(column) for column in frame.columns)


def _rows(rows: list[int]) -> str:
    return ", ".join(map(str, rows[:10])) + (", ..." if len(rows) > 10 else "")
