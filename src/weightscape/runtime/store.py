"""The results store: one SQLite file, the source of truth for every evaluated point.

Each point is committed in its own transaction as soon as it is computed, so a process killed at
any moment loses at most the point in flight, and a rerun recomputes nothing that is stored. WAL
mode lets two processes write at once (each insert is idempotent: same key, same result).
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

from weightscape.errors import WeightscapeError
from weightscape.evaluation.result import PointResult

SCHEMA = """
CREATE TABLE IF NOT EXISTS points (
    key TEXT PRIMARY KEY,
    spec TEXT NOT NULL,
    metrics TEXT NOT NULL,
    arrays BLOB NOT NULL,
    seconds REAL NOT NULL,
    created REAL NOT NULL
)
"""


class ResultStore:
    """Content-addressed results of evaluated points.

    Args:
        path: The SQLite file (created with its folder if missing).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(self.path), timeout=60.0)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(SCHEMA)
            self._db.commit()
        except sqlite3.DatabaseError as err:
            raise WeightscapeError(
                f"Cannot open results store '{self.path}': {err}. Give "
                "another --store path or move the broken file away."
            ) from err

    def get(self, key: str) -> PointResult | None:
        """The stored result for ``key``, or None."""
        row = self._db.execute(
            "SELECT metrics, arrays FROM points WHERE key = ?", (key,)
        ).fetchone()
        if row is None:
            return None
        return PointResult.from_stored(json.loads(row[0]), row[1])

    def put(self, key: str, spec: dict[str, Any], result: PointResult, seconds: float) -> None:
        """Store one result durably (its own transaction)."""
        with self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO points VALUES (?, ?, ?, ?, ?, ?)",
                (
                    key,
                    json.dumps(spec, sort_keys=True),
                    json.dumps(result.metrics),
                    result.arrays_to_bytes(),
                    seconds,
                    time.time(),
                ),
            )

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM points").fetchone()[0]

    def __contains__(self, key: str) -> bool:
        return self._db.execute("SELECT 1 FROM points WHERE key = ?", (key,)).fetchone() is not None

    def close(self) -> None:
        """Close the connection."""
        self._db.close()
