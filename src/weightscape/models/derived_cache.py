"""Values derived from checkpoints' contents, kept across commands and keyed by those contents.

Some numbers are read off every byte of several anchors (the Gram matrix behind a grid's distance
and cosine matrices) and cost more than everything else a fully stored rerun does. This cache
keeps them in a small SQLite file beside the digest cache (``$WEIGHTSCAPE_CACHE/derived.sqlite``,
:mod:`weightscape.models.hash_cache`), under a key the caller builds from everything the value
depends on: the anchors' content hashes (never their paths), the settings, and
:func:`code_version` of the code that computes it. A changed input is another key, so a stale
value cannot be returned; it is simply computed again.

The cache can only make a command faster, never wrong or failing: each value is stored with its
SHA-256 and checked when read, and an unreadable, damaged or read-only cache file, or a value that
fails its check, is a miss. ``WEIGHTSCAPE_REHASH=1`` (the CLI's ``--rehash``) ignores it and
overwrites what it held.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from weightscape.models.hash_cache import CacheDatabase, cache_file, rehashing

FILE_NAME = "derived.sqlite"
_SCHEMA = """CREATE TABLE IF NOT EXISTS derived (
    kind TEXT NOT NULL, key TEXT NOT NULL, checksum TEXT NOT NULL, value BLOB NOT NULL,
    PRIMARY KEY (kind, key)
)"""


def derived_file() -> Path:
    """Where the derived values are kept (the digest cache's folder)."""
    return cache_file().parent / FILE_NAME


_database = CacheDatabase(derived_file, _SCHEMA)


def cache_key(*parts: Any) -> str:
    """A key for the parts (JSON-serialisable: strings, numbers, lists, dicts, None).

    >>> cache_key("a", [1, 2]) == cache_key("a", [1, 2]) != cache_key("a", [2, 1])
    True
    """
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def code_version(modules: Iterable[str]) -> str:
    """A digest of the source files of ``modules`` (dotted names; a package stands for every
    ``.py`` file under it), so that any edit of the code that computes a value gives it another
    key. Reading a few dozen small files costs about a millisecond."""
    import importlib.util

    digest = hashlib.sha256()
    for name in sorted(modules):
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            raise ValueError(f"no source for module {name!r}")
        origin = Path(spec.origin)
        files = sorted(origin.parent.rglob("*.py")) if origin.name == "__init__.py" else [origin]
        for file in files:
            digest.update(f"{name}:{file.name}:".encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()


def get(kind: str, key: str) -> bytes | None:
    """The bytes stored for ``(kind, key)``, or None: not stored, failing its checksum, the
    cache unreadable, or ``--rehash``."""
    if rehashing():
        return None
    with _database.lock:
        db = _database.connection()
        if db is None:
            return None
        try:
            row = db.execute(
                "SELECT checksum, value FROM derived WHERE kind = ? AND key = ?", (kind, key)
            ).fetchone()
        except sqlite3.Error:
            return None
    if row is None:
        return None
    checksum, value = row
    if not isinstance(value, bytes) or hashlib.sha256(value).hexdigest() != checksum:
        return None
    return value


def put(kind: str, key: str, value: bytes) -> None:
    """Store ``value`` under ``(kind, key)`` (silently nothing when the cache is unwritable)."""
    checksum = hashlib.sha256(value).hexdigest()
    with _database.lock:
        db = _database.connection()
        if db is None:
            return
        with contextlib.suppress(sqlite3.Error):
            db.execute(
                "INSERT OR REPLACE INTO derived VALUES (?, ?, ?, ?)", (kind, key, checksum, value)
            )
            db.commit()


def forget_connection() -> None:
    """Close this process's connection (tests that point the cache elsewhere or damage it)."""
    _database.forget()
