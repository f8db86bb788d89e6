"""Output files that are whole or absent.

Every file a command writes goes to a temporary name beside its target and is renamed over it
when complete (``os.replace`` is atomic on one file system), so a process killed while writing
never leaves a half file that a later step or report would read as complete. A write that fails
(a full disk, a read-only folder) is one :class:`WeightscapeError` naming the file, never a
traceback. A folder being written carries a marker file until its command finishes, so a folder
left by a killed run says that it is incomplete; a command that finishes leaves ``run.json``, the
record of what it ran (:mod:`weightscape.provenance`), written just before the marker goes. Every
JSON object written while a run is recorded carries that run's ``provenance`` (docs/outputs.md).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from weightscape.errors import WeightscapeError
from weightscape.provenance import RUN_FILE, RunRecord, current, recording, run_json

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


def write_json(
    path: str | Path,
    data: Any,
    indent: int | None = 1,
    *,
    default: Callable[[Any], Any] | None = None,
    provenance: bool = True,
) -> Path:
    """Write ``data`` as JSON atomically; return the path.

    While a run is recorded (:func:`weightscape.provenance.recording`), a JSON object gets the
    key ``provenance``: the run's record at this moment (another payload, a list, is written as
    it is). ``default`` converts what JSON cannot hold, as in :func:`json.dumps`.
    """
    record = current() if provenance else None
    if record is not None and isinstance(data, dict):
        data = {**data, "provenance": record.as_dict()}
    return write_text(path, json.dumps(data, indent=indent, default=default))


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
    write_json(folder / INCOMPLETE, {"writing": what, "pid": os.getpid()}, provenance=False)


def mark_complete(folder: str | Path) -> None:
    """Remove the marker: every file of the folder was written."""
    with contextlib.suppress(FileNotFoundError):
        (Path(folder) / INCOMPLETE).unlink()


def is_incomplete(folder: str | Path) -> bool:
    """Whether a command was writing ``folder`` and did not finish."""
    return (Path(folder) / INCOMPLETE).is_file()


@contextlib.contextmanager
def writing(
    folder: str | Path | None, what: str, record: RunRecord | None = None
) -> Iterator[None]:
    """Mark ``folder`` incomplete while the block runs; unmark it when the block finishes.

    With a ``record``, the block runs recorded (:func:`weightscape.provenance.recording`), and
    when it finishes ``folder/run.json`` is written (the record and the files the block wrote)
    before the marker is removed, so a run.json always describes a complete run: the one of an
    earlier run is removed when the block starts. A block that fails leaves the marker where it
    wrote something, and leaves no trace where it wrote nothing (a refused command creates no
    folder and keeps the earlier run.json, which still describes the folder).
    """
    recorded = recording(record) if record is not None else contextlib.nullcontext()
    if folder is None:
        with recorded:
            yield
        return
    folder = Path(folder)
    created = not folder.exists()
    stale = _take(folder / RUN_FILE) if record is not None else None
    before = _listing(folder)
    mark_incomplete(folder, what)
    try:
        with recorded:
            yield
    except BaseException:
        if _listing(folder) == before:  # it wrote nothing
            if stale is not None:
                write_bytes(folder / RUN_FILE, stale)
            mark_complete(folder)
            if created:
                with contextlib.suppress(OSError):
                    folder.rmdir()
        raise
    if record is not None:
        written = _written(before, _listing(folder))
        write_json(folder / RUN_FILE, run_json(record, written), provenance=False)
    mark_complete(folder)


def _take(path: Path) -> bytes | None:
    """Remove ``path`` and return what it held (None when there was no such file)."""
    try:
        data = path.read_bytes()
        path.unlink()
    except FileNotFoundError:
        return None
    except OSError as err:
        raise WeightscapeError(
            f"Cannot replace '{path}': {err.strerror or err}. Give another --out."
        ) from None
    return data


# SQLite's companions of a store: a write may reach only these until the store is checkpointed,
# so a change to one is a change to its store.
_SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")


def _listing(folder: Path) -> dict[str, int | None]:
    """Every file under ``folder`` (relative POSIX path -> modification time in ns) and every
    folder (path + ``/`` -> None), but the run record and hidden files (the marker, a lock, a
    file being written); empty when ``folder`` does not exist."""
    found: dict[str, int | None] = {}
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        base = Path(root).relative_to(folder)
        for name in dirs:
            found[(base / name).as_posix() + "/"] = None
        for name in files:
            relative = (base / name).as_posix()
            if name.startswith(".") or relative == RUN_FILE:
                continue
            with contextlib.suppress(FileNotFoundError):  # removed while we walk
                found[relative] = os.stat(Path(root) / name).st_mtime_ns
    return found


def _written(before: dict[str, int | None], after: dict[str, int | None]) -> list[str]:
    """The files new or changed between two listings (a store for its changed companions)."""
    written = set()
    for path, mtime in after.items():
        if mtime is None or before.get(path, -1) == mtime:
            continue
        store = next((path[: -len(s)] for s in _SQLITE_COMPANIONS if path.endswith(s)), path)
        if store in after:
            written.add(store)
    return sorted(written)


def md_cell(value: Any) -> str:
    r"""``value`` as the text of one Markdown table cell: a ``|`` or a line break in a name from
    a user cannot break the table, and HTML in it shows as text.

    >>> md_cell("a|b\nc <script>")
    'a\\|b c &lt;script&gt;'
    """
    text = str(value).replace("\\", "\\\\").replace("|", "\\|")
    text = " ".join(text.splitlines())
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
