"""The results store: one SQLite file, the source of truth for every evaluated point.

Each point is committed in its own transaction as soon as it is computed, so a process killed at
any moment loses at most the point in flight, and a rerun recomputes nothing that is stored. WAL
mode lets many processes read and write at once; every write waits for a busy database (and
retries past SQLite's own timeout) instead of dying, and each insert is idempotent (same key,
same result).

The file is versioned (a ``meta`` table holds ``schema_version``): a store written before
versions existed (only a ``points`` table) is upgraded in place; a store of a newer weightscape,
or an SQLite file of another program, is refused with a message, never altered. A store opened
``read_only`` (``weightscape show``) is never written, upgraded or created.

Keys are content hashes, so the store also says what they mean (:meth:`ResultStore.describe`):
each executor call records the names and paths of its anchors, its task, and, inside a command,
the run and which points it used (``docs/store.md``).

Claims let several workers share one store without repeating work: before computing a point a
worker takes a short lease on its key (:meth:`ResultStore.claim`); others skip it and come back
for the result. A lease ends when the point is stored, when its owner releases it, when it
expires, or at once when its owner is a process on this machine that no longer runs.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from weightscape.errors import WeightscapeError
from weightscape.evaluation.result import PointResult

if TYPE_CHECKING:
    from weightscape.data.task import Task

SCHEMA_VERSION = 3  # 1: a points table only (before versions); 2: meta and claims tables;
# 3: what the content hashes and runs mean (anchors, tasks, runs, uses tables; docs/store.md)
POINT_COLUMNS = ("key", "spec", "metrics", "arrays", "seconds", "created")
TABLES = (
    """CREATE TABLE IF NOT EXISTS points (
        key TEXT PRIMARY KEY,
        spec TEXT NOT NULL,
        metrics TEXT NOT NULL,
        arrays BLOB NOT NULL,
        seconds REAL NOT NULL,
        created REAL NOT NULL
    )""",
    "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS claims (
        key TEXT PRIMARY KEY, owner TEXT NOT NULL, expires REAL NOT NULL
    )""",
    # The latest name and path seen for an anchor's content hash (a spec holds hashes only).
    """CREATE TABLE IF NOT EXISTS anchors (
        hash TEXT PRIMARY KEY, name TEXT NOT NULL, path TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS tasks (
        fingerprint TEXT PRIMARY KEY, name TEXT NOT NULL, examples INTEGER NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS runs (
        id TEXT PRIMARY KEY, command TEXT NOT NULL, command_line TEXT NOT NULL,
        started TEXT NOT NULL
    )""",
    # Which run used which point, and whether that run computed it (1) or reused it (0).
    """CREATE TABLE IF NOT EXISTS uses (
        run TEXT NOT NULL, key TEXT NOT NULL, computed INTEGER NOT NULL, PRIMARY KEY (run, key)
    )""",
)
TABLE_NAMES = ("points", "meta", "claims", "anchors", "tasks", "runs", "uses")
WAIT_SECONDS = 600.0  # how long a write waits for a busy store before giving up
T = TypeVar("T")


def this_worker() -> str:
    """The owner name of claims taken by this process: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


class ResultStore:
    """Content-addressed results of evaluated points.

    Args:
        path: The SQLite file (created with its folder if missing).
        wait: Seconds a read or write waits for a store that other processes hold busy.
        read_only: Only read: a missing file is an error (not a new store), an older schema is
            read as it is (not upgraded), and nothing is ever written.
    """

    def __init__(
        self, path: str | Path, *, wait: float = WAIT_SECONDS, read_only: bool = False
    ) -> None:
        self.path = Path(path)
        self.wait = wait
        self.read_only = read_only
        if self.path.is_dir():
            raise WeightscapeError(
                f"The results store '{self.path}' is a folder. Give a file path (--store)."
            )
        if read_only:
            self._connect_read_only()
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise WeightscapeError(
                f"Cannot create the folder of results store '{self.path}': {err.strerror}. "
                "Give a writable --store or --out."
            ) from None
        try:
            self._db = sqlite3.connect(str(self.path), timeout=min(wait, 60.0))
            self._retry(self._open)
        except sqlite3.DatabaseError as err:
            raise WeightscapeError(
                f"Cannot open results store '{self.path}': {err}. It is not an SQLite file "
                "(or is damaged): give another --store path."
            ) from None

    # --- opening -----------------------------------------------------------------------------

    def _connect_read_only(self) -> None:
        if not self.path.is_file():
            raise WeightscapeError(
                f"The results store '{self.path}' does not exist. Give the path of a store a "
                "command wrote (its --store, or OUT/results.sqlite)."
            )
        uri = f"{self.path.resolve().as_uri()}?mode=ro"
        try:
            self._db = sqlite3.connect(uri, uri=True, timeout=min(self.wait, 60.0))
            self._retry(self._open)
        except sqlite3.DatabaseError as err:
            raise WeightscapeError(
                f"Cannot read results store '{self.path}': {err}. It is not an SQLite file "
                "(or is damaged): give another store path."
            ) from None

    def _open(self) -> None:
        self.tables = {
            r[0] for r in self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
        tables = self.tables
        self._check_foreign(tables)
        version = self.version = self._version(tables)
        if self.read_only and not tables:
            raise WeightscapeError(
                f"'{self.path}' is an empty file, not a weightscape results store. Give the path "
                "of a store a command wrote."
            )
        if version > SCHEMA_VERSION:
            raise WeightscapeError(
                f"The results store '{self.path}' was written by a newer weightscape (schema "
                f"{version}; this one reads up to {SCHEMA_VERSION}). Upgrade weightscape, or give "
                "another --store."
            )
        if not self.writable:
            return  # read what is there; writing is refused when a point must be stored
        mode = self._db.execute("PRAGMA journal_mode").fetchone()[0]
        if mode != "wal":
            self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        if version < SCHEMA_VERSION:
            with self._db:
                for table in TABLES:
                    self._db.execute(table)
                self._db.execute(
                    "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (SCHEMA_VERSION,)
                )
            self.version = SCHEMA_VERSION
            self.tables = {*tables, *TABLE_NAMES}

    def _check_foreign(self, tables: set[str]) -> None:
        if not tables:
            return
        if "points" not in tables:
            raise WeightscapeError(
                f"'{self.path}' is an SQLite file of another program (tables: "
                f"{', '.join(sorted(tables))}), not a weightscape results store. Give another "
                "--store path; it was not changed."
            )
        columns = tuple(r[1] for r in self._db.execute("PRAGMA table_info(points)"))
        if columns != POINT_COLUMNS:
            raise WeightscapeError(
                f"The results store '{self.path}' has a 'points' table with columns "
                f"{', '.join(columns)}, not weightscape's ({', '.join(POINT_COLUMNS)}): another "
                "program's file, or a damaged one. Give another --store path; it was not changed."
            )

    def _version(self, tables: set[str]) -> int:
        if "meta" not in tables:
            return 1 if "points" in tables else 0
        row = self._db.execute("SELECT value FROM meta WHERE name = 'schema_version'").fetchone()
        return int(row[0]) if row else 1

    @property
    def writable(self) -> bool:
        """Whether this process may add points (the file and its folder are writable, and the
        store was not opened read-only)."""
        if self.read_only:
            return False
        folder_ok = os.access(self.path.parent, os.W_OK)
        return folder_ok and (not self.path.exists() or os.access(self.path, os.W_OK))

    def _retry(self, action: Callable[[], T]) -> T:
        """Run ``action``, retrying while other processes hold the database busy."""
        deadline = time.monotonic() + self.wait
        delay = 0.01
        while True:
            try:
                return action()
            except sqlite3.OperationalError as err:
                busy = "locked" in str(err) or "busy" in str(err)
                if not busy:
                    if "readonly" in str(err):
                        raise WeightscapeError(
                            f"The results store '{self.path}' is read-only, and a new point must "
                            "be stored. Give a writable --store (or copy the file)."
                        ) from None
                    raise
                if time.monotonic() > deadline:
                    raise WeightscapeError(
                        f"The results store '{self.path}' stayed busy (locked by other "
                        f"processes) for {self.wait:.0f} s. Nothing was lost: rerun to resume."
                    ) from None
                time.sleep(delay)
                delay = min(delay * 2, 1.0)

    # --- points -------------------------------------------------------------------------------

    def get(self, key: str, task: Task | None = None) -> PointResult | None:
        """The stored result for ``key``, or None.

        With the ``task`` the point was evaluated on, registered point metrics the stored row
        lacks (it was written before they were registered) are computed from its stored
        per-example predictions and losses; the row itself is not changed.
        """
        row = self._retry(
            lambda: self._db.execute(
                "SELECT metrics, arrays FROM points WHERE key = ?", (key,)
            ).fetchone()
        )
        if row is None:
            return None
        if task is None:
            return PointResult.from_stored(json.loads(row[0]), row[1])
        return PointResult.from_stored(json.loads(row[0]), row[1], task.labels, task.num_labels)

    def put(self, key: str, spec: dict[str, Any], result: PointResult, seconds: float) -> None:
        """Store one result durably (its own transaction); its claim, if any, ends."""
        row = (
            key,
            json.dumps(spec, sort_keys=True),
            json.dumps(result.metrics),
            result.arrays_to_bytes(),
            seconds,
            time.time(),
        )

        def write() -> None:
            with self._db:
                self._db.execute("INSERT OR REPLACE INTO points VALUES (?, ?, ?, ?, ?, ?)", row)
                self._db.execute("DELETE FROM claims WHERE key = ?", (key,))

        self._retry(write)

    def table(self, name: str) -> list[dict[str, Any]]:
        """Every row of one of the store's tables as a dict (``points`` without its per-example
        ``arrays``); empty when the table is absent (an older store opened read-only)."""
        if name not in TABLE_NAMES:
            raise ValueError(f"Unknown store table '{name}'. Available: {', '.join(TABLE_NAMES)}.")
        if name not in self.tables:
            return []
        columns = [c for c in self._columns(name) if c != "arrays"]
        query = f"SELECT {', '.join(columns)} FROM {name}"  # names from the schema, not users
        rows = self._retry(lambda: self._db.execute(query).fetchall())
        return [dict(zip(columns, row, strict=True)) for row in rows]

    def _columns(self, name: str) -> list[str]:
        return [r[1] for r in self._db.execute(f"PRAGMA table_info({name})")]

    # --- what the keys mean -------------------------------------------------------------------

    def describe(
        self,
        *,
        anchors: Iterable[tuple[str, str, str]] = (),
        task: tuple[str, str, int] | None = None,
        run: tuple[str, str, str, str] | None = None,
        uses: Iterable[tuple[str, bool]] = (),
    ) -> None:
        """Record what stored keys mean, in one transaction; nothing for a read-only store.

        Args:
            anchors: ``(content hash, name, path)`` of each anchor; the latest name wins.
            task: ``(fingerprint, name, number of examples)``.
            run: ``(id, command, command line, started)`` of the run using the points.
            uses: ``(key, computed)`` of each point ``run`` used; a point the run computed once
                stays computed when the run reuses it later.
        """
        if not self.writable:
            return
        anchor_rows = [(h, str(name), str(path)) for h, name, path in anchors]
        use_rows = [(run[0], key, int(bool(done))) for key, done in uses] if run else []

        def write() -> None:
            with self._db:
                self._db.executemany("INSERT OR REPLACE INTO anchors VALUES (?, ?, ?)", anchor_rows)
                if task is not None:
                    self._db.execute("INSERT OR REPLACE INTO tasks VALUES (?, ?, ?)", task)
                if run is not None:
                    self._db.execute("INSERT OR IGNORE INTO runs VALUES (?, ?, ?, ?)", run)
                self._db.executemany(
                    "INSERT INTO uses VALUES (?, ?, ?) ON CONFLICT (run, key) "
                    "DO UPDATE SET computed = max(computed, excluded.computed)",
                    use_rows,
                )

        self._retry(write)

    def __len__(self) -> int:
        return self._retry(lambda: self._db.execute("SELECT COUNT(*) FROM points").fetchone()[0])

    def __contains__(self, key: str) -> bool:
        query = "SELECT 1 FROM points WHERE key = ?"
        return self._retry(lambda: self._db.execute(query, (key,)).fetchone()) is not None

    # --- claims -------------------------------------------------------------------------------

    def claim(self, key: str, owner: str | None = None, lease: float = 300.0) -> bool:
        """Take the lease on ``key`` for ``owner`` (default: this process) unless another live
        worker holds it; True when ``owner`` now holds it (or the point is already stored)."""
        owner = owner or this_worker()

        def take() -> bool:
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                if self._db.execute("SELECT 1 FROM points WHERE key = ?", (key,)).fetchone():
                    return True
                held = self._db.execute(
                    "SELECT owner, expires FROM claims WHERE key = ?", (key,)
                ).fetchone()
                if held and held[0] != owner and held[1] > time.time() and _alive(held[0]):
                    return False
                self._db.execute(
                    "INSERT OR REPLACE INTO claims VALUES (?, ?, ?)",
                    (key, owner, time.time() + lease),
                )
                return True

        return self._retry(take)

    def release(self, key: str, owner: str | None = None) -> None:
        """End ``owner``'s lease on ``key`` (a point it will not compute after all)."""
        owner = owner or this_worker()

        def drop() -> None:
            with self._db:
                self._db.execute("DELETE FROM claims WHERE key = ? AND owner = ?", (key, owner))

        self._retry(drop)

    def close(self) -> None:
        """Close the connection."""
        self._db.close()


def _alive(owner: str) -> bool:
    """Whether a claim's owner may still run: False only for a process of this machine that
    has ended (a claim of a killed worker then frees at once, not at its expiry)."""
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
