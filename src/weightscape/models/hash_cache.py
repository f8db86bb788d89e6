"""Digests of large files computed once per file, not once per command.

Hashing an anchor reads every byte of its weights (about 1 s per GB here), and so does the scan
for non-finite values; a command used to pay both for every anchor at every start. This cache
keeps each result in a small SQLite file (``$WEIGHTSCAPE_CACHE/file-digests.sqlite``, by default
under ``~/.cache/weightscape``) keyed by the file's resolved path, size, modification time,
status-change time, inode and device: a file rewritten, replaced, moved over or touched in any way
changes one of these (the status-change time cannot be set back by a user), and its digest is
computed afresh.

The cache can only make a command faster, never wrong or failing: an unreadable, read-only or
damaged cache file is ignored. ``WEIGHTSCAPE_REHASH=1`` (the CLI's ``--rehash``) recomputes
every digest and overwrites what the cache held.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

CACHE_ENV = "WEIGHTSCAPE_CACHE"
REHASH_ENV = "WEIGHTSCAPE_REHASH"
FILE_NAME = "file-digests.sqlite"
_SCHEMA = """CREATE TABLE IF NOT EXISTS digests (
    kind TEXT NOT NULL, path TEXT NOT NULL, stamp TEXT NOT NULL, value TEXT NOT NULL,
    PRIMARY KEY (kind, path)
)"""

_session: dict[tuple[str, str, str], str] = {}  # this process's answers, checked by the same stamp


def cache_file() -> Path:
    """Where the digests are kept."""
    root = os.environ.get(CACHE_ENV)
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "weightscape"
    return base / FILE_NAME


def rehashing() -> bool:
    """Whether cached digests are ignored (and overwritten): ``WEIGHTSCAPE_REHASH=1``."""
    return os.environ.get(REHASH_ENV, "") not in ("", "0")


def stamp(path: str | Path) -> str:
    """What identifies one version of a file without reading it.

    >>> import tempfile
    >>> f = Path(tempfile.mkdtemp()) / "w.bin"
    >>> _ = f.write_bytes(b"a")
    >>> first = stamp(f)
    >>> _ = f.write_bytes(b"b")
    >>> stamp(f) == first
    False
    """
    s = os.stat(path)
    return f"{s.st_size}:{s.st_mtime_ns}:{s.st_ctime_ns}:{s.st_ino}:{s.st_dev}"


class CacheDatabase:
    """One SQLite file of a cache, opened once per process and place (opened again when
    ``$WEIGHTSCAPE_CACHE`` points elsewhere). Use :meth:`connection` with :attr:`lock` held.

    Args:
        where: Gives the file's path (read at every call).
        schema: The ``CREATE TABLE IF NOT EXISTS`` statement of its table.
    """

    def __init__(self, where: Callable[[], Path], schema: str) -> None:
        self.where, self.schema = where, schema
        self.lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None
        self._opened_at: Path | None = None

    def connection(self) -> sqlite3.Connection | None:
        """The open connection, or None when the file cannot be opened or written: a cache only
        saves time, so without one every value is computed."""
        where = self.where()
        if self._connection is not None and self._opened_at == where:
            return self._connection
        try:
            where.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(str(where), timeout=2.0, check_same_thread=False)
            connection.execute(self.schema)
            connection.commit()
        except (OSError, sqlite3.Error):
            return None
        self._connection, self._opened_at = connection, where
        return connection

    def forget(self) -> None:
        """Close this process's connection (tests that point the cache elsewhere or damage it)."""
        with self.lock:
            if self._connection is not None:
                with contextlib.suppress(sqlite3.Error):
                    self._connection.close()
            self._connection, self._opened_at = None, None


_database = CacheDatabase(cache_file, _SCHEMA)


def cached_digest(kind: str, path: str | Path, compute: Callable[[Path], str]) -> str:
    """``compute(path)``, answered from the cache when this version of the file was seen.

    Args:
        kind: What the digest is (``sha256``, ``nonfinite``): one file has one value per kind.
        path: The file.
        compute: Reads the file and returns its digest as text.
    """
    path = Path(path).resolve()
    version = stamp(path)
    memo = (kind, str(path), version)
    if memo in _session:  # computed (or read) by this process: even --rehash reads once
        return _session[memo]
    with _database.lock:
        db = _database.connection()
        if db is not None and not rehashing():
            with contextlib.suppress(sqlite3.Error):
                row = db.execute(
                    "SELECT stamp, value FROM digests WHERE kind = ? AND path = ?",
                    (kind, str(path)),
                ).fetchone()
                if row is not None and row[0] == version:
                    _session[memo] = row[1]
                    return row[1]
    value = compute(path)
    if stamp(path) != version:  # changed while it was read: keep nothing
        return value
    _session[memo] = value
    with _database.lock:
        db = _database.connection()
        if db is not None:
            with contextlib.suppress(sqlite3.Error):
                db.execute(
                    "INSERT OR REPLACE INTO digests VALUES (?, ?, ?, ?)",
                    (kind, str(path), version, value),
                )
                db.commit()
    return value


def forget_session() -> None:
    """Drop this process's in-memory answers (tests; the on-disk cache is untouched)."""
    _session.clear()
