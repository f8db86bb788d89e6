"""Rendering of ``weightscape show``: a terminal table of a store's groups of points, and the
tidy export (parquet or CSV) of every shown point."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path
from typing import Any

from weightscape.outputs import atomic_path
from weightscape.studies.show import Shown

HEADER = ("anchors", "task", "kind", "points", "coefficients", "loss", "accuracy")


def render_show(result: Shown, config: Any) -> list[str]:
    """The terminal's lines: the store, one line per group of points; with ``--export``, the
    rows are written first and the file named."""
    lines = [
        f"results store {_text(str(result.store))} (schema {result.version}): "
        f"{result.total} points, {len(result.rows)} shown"
    ]
    if not result.named and result.rows:
        lines.append(
            "  (this store does not name its anchors and tasks yet: they show as the first 12 "
            "characters of their content hashes until a command evaluates with them again)"
        )
    lines += group_table(result.groups)
    if result.export is not None:
        write_points(result.rows, result.columns, result.export)
        rows = "1 row" if len(result.rows) == 1 else f"{len(result.rows)} rows"
        lines.append(f"wrote {result.export}: {rows}")
    return lines


def group_table(groups: list[dict[str, Any]]) -> list[str]:
    """One aligned line per group (names from users printed as plain text: control characters
    escaped), then the settings each group's number stands for when they differ."""
    if not groups:
        return ["no stored points match"]
    settings = list(dict.fromkeys(g["settings"] for g in groups))
    header = [*HEADER, "settings"] if len(settings) > 1 else list(HEADER)
    table = [header]
    for group in groups:
        cells = [
            _text(group["anchors"]),
            _text(group["task"]),
            group["kind"],
            str(group["count"]),
            _range(group["coef_min"], group["coef_max"]),
            _metric(group, "loss"),
            _metric(group, "accuracy"),
        ]
        if len(settings) > 1:
            cells.append(f"[{settings.index(group['settings']) + 1}]")
        table.append(cells)
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in table
    ]
    if len(settings) == 1:
        return [*lines, f"settings: {_text(settings[0])}"]
    return [*lines, *(f"settings [{i}]: {_text(s)}" for i, s in enumerate(settings, 1))]


def write_points(rows: list[dict[str, Any]], columns: list[str], path: Path) -> Path:
    """Write the tidy rows as parquet or CSV (by ``path``'s suffix), whole or not at all."""
    import pandas as pd

    frame = pd.DataFrame(_uniform(rows, columns), columns=columns)
    with atomic_path(path) as partial:
        if path.suffix == ".parquet":
            frame.to_parquet(partial, index=False)
        else:
            frame.to_csv(partial, index=False)
    return path


def _uniform(rows: list[dict[str, Any]], columns: list[str]) -> list[dict[str, Any]]:
    """Every row with every column (None where it has none); a column whose values are text in
    one row and numbers in another (a setting that changed type) is written as text."""
    mixed = {c for c in columns if len({_family(r.get(c)) for r in rows} - {None}) > 1}
    return [
        {c: str(r[c]) if c in mixed and r.get(c) is not None else r.get(c) for c in columns}
        for r in rows
    ]


def _family(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "bool"
    return "number" if isinstance(value, int | float) else type(value).__name__


def _range(low: float | None, high: float | None) -> str:
    if low is None or high is None:
        return "-"
    return f"{low:.4g}" if low == high else f"{low:.4g}..{high:.4g}"


def _metric(group: dict[str, Any], name: str) -> str:
    mean = group[f"{name}_mean"]
    if mean is None:
        return "-"
    if group["count"] == 1 or group[f"{name}_min"] == group[f"{name}_max"]:
        return f"{mean:.4f}"
    return f"{mean:.4f} ({group[f'{name}_min']:.4f}..{group[f'{name}_max']:.4f})"


def _text(value: str) -> str:
    """A name from a user as one line of plain text: control characters (a terminal's escape
    sequences, line breaks) are shown escaped, never obeyed."""
    return "".join(
        json.dumps(ch)[1:-1] if unicodedata.category(ch)[0] == "C" else ch for ch in value
    )
