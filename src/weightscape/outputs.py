"""Output files that are whole or absent.

Every file a command writes goes to a temporary name beside its target and is renamed over it
when complete (``os.replace`` is atomic on one file system), so a process killed while writing
never leaves a half file that a later step or report would read as complete. A write that fails
(a full disk, a read-only folder) is one :class:`WeightscapeError` naming the file, never a
traceback. A folder being written carries a marker file until its command finishes, so a folder
left by a killed run says that it is incomplete.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from weightscape.errors import WeightscapeError

INCOMPLETE = ".weightscape-incomplete"


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path to write; renamed to ``path`` when the block ends without error.

    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "a.txt"
    >>> with atomic_path(target) as tmp:
    ...     _ = tmp.write_text("whole")
    >>> target.read_text()
    'whole'
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.partial-{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield tmp
        os.replace(tmp, path)
    except OSError as err:
        raise WeightscapeError(
            f"Cannot write '{path}': {err.strerror or err}. Free some space or give another "
            "--out; the files written before are whole."
        ) from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; return the path."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; return the path."""
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | Path, data: Any, indent: int | None = 1) -> Path:
    """Write ``data`` as JSON atomically; return the path."""
    return write_text(path, json.dumps(data, indent=indent))


def write_csv(path: str | Path, header: Sequence[Any], rows: Iterable[Sequence[Any]]) -> Path:
    """Write a CSV table atomically (names from users are quoted as CSV needs); return the path.

    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "t.csv"
    >>> _ = write_csv(target, ["name", "x"], [["a,b", 1]])
    >>> target.read_text().splitlines()
    ['name,x', '"a,b",1']
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return write_text(path, buffer.getvalue())


def save_npz(path: str | Path, **arrays: Any) -> Path:
    """``numpy.savez_compressed`` atomically; return the path."""
    import numpy as np

    with atomic_path(path) as tmp, tmp.open("wb") as handle:
        np.savez_compressed(handle, **arrays)
    return Path(path)


def mark_incomplete(folder: str | Path, what: str) -> None:
    """Mark ``folder`` as being written by ``what`` (a command line)."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise WeightscapeError(
            f"Cannot create the output folder '{folder}': {err.strerror or err}. Give another "
            "--out."
        ) from None
    write_json(folder / INCOMPLETE, {"writing": what, "pid": os.getpid()})


def mark_complete(folder: str | Path) -> None:
    """Remove the marker: every file of the folder was written."""
    with contextlib.suppress(FileNotFoundError):
        (Path(folder) / INCOMPLETE).unlink()


def is_incomplete(folder: str | Path) -> bool:
    """Whether a command was writing ``folder`` and did not finish."""
    return (Path(folder) / INCOMPLETE).is_file()


@contextlib.contextmanager
def writing(folder: str | Path | None, what: str) -> Iterator[None]:
    """Mark ``folder`` incomplete while the block runs; unmark it when the block finishes.

    A block that fails leaves the marker where it wrote something, and leaves no trace where
    it wrote nothing (a refused command creates no folder).
    """
    if folder is None:
        yield
        return
    folder = Path(folder)
    created = not folder.exists()
    before = _listing(folder)
    mark_incomplete(folder, what)
    try:
        yield
    except BaseException:
        if _listing(folder) - {INCOMPLETE} == before - {INCOMPLETE}:  # it wrote nothing
            mark_complete(folder)
            if created:
                with contextlib.suppress(OSError):
                    folder.rmdir()
        raise
    mark_complete(folder)


def _listing(folder: Path) -> set:
    """The folder's entries with their modification times (empty when it does not exist)."""
    if not folder.is_dir():
        return set()
    return {
        (p.name, p.stat().st_mtime_ns) if p.name != INCOMPLETE else p.name for p in folder.iterdir()
    }


def md_cell(value: Any) -> str:
    r"""``value`` as the text of one Markdown table cell: a ``|`` or a line break in a name from
    a user cannot break the table, and HTML in it shows as text.

    >>> md_cell("a|b\nc <script>")
    'a\\|b c &lt;script&gt;'
    """
    text = str(value).replace("\\", "\\\\").replace("|", "\\|")
    text = " ".join(text.splitlines())
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
