"""The pieces of the page, embedded so that the file stands alone and no name can escape.

Each block is a plain dict the template draws (``kind``: ``plot``, ``images``, ``table``,
``markdown``, ``note``, ``files``). Images become ``data:`` URIs, tables carry their CSV as a
``data:`` download, and figure specs go into ``<script type="application/json">`` with every
``<``, ``>`` and ``&`` written as a ``\\u`` escape, so no string in them can end the script.
Text is escaped by the template (jinja2 autoescape), never here.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import html
import io
import json
import math
import re
from collections.abc import Iterable, Sequence
from typing import Any

MAX_ROWS = 200  # rows a table shows; its CSV download holds them all
MIME = {".png": "image/png", ".svg": "image/svg+xml"}
_SCRIPT_UNSAFE = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028"}
_SCRIPT_UNSAFE["\u2029"] = "\\u2029"


def finite(value: Any) -> Any:
    """``value`` with every NaN or infinity (at any depth) replaced by None: JSON has no NaN,
    and ``JSON.parse`` rejects it."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return finite(value.tolist())
    return value


def script_json(value: Any) -> str:
    """``value`` as JSON safe inside a ``<script>`` element (no ``<``, ``>`` or ``&``).

    >>> script_json({"name": "</script><b>", "x": float("nan")})
    '{"name":"\\\\u003c/script\\\\u003e\\\\u003cb\\\\u003e","x":null}'
    """
    text = json.dumps(finite(value), allow_nan=False, separators=(",", ":"))
    return re.sub("[<>&\u2028\u2029]", lambda m: _SCRIPT_UNSAFE[m.group()], text)


def data_uri(data: bytes, mime: str) -> str:
    """``data`` as a base64 ``data:`` URI."""
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def image(data: bytes, file: str, suffix: str, figure: str) -> dict[str, Any]:
    """An embedded image: its ``data:`` URI, file name, SHA-256 (the tests compare it) and, for
    a PNG, its size in pixels (so it takes its place before it is decoded)."""
    width = height = None
    if suffix == ".png" and data[12:16] == b"IHDR":
        width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    return {
        "file": file,
        "figure": figure,
        "src": data_uri(data, MIME[suffix]),
        "sha256": hashlib.sha256(data).hexdigest(),
        "width": width,
        "height": height,
        "wide": bool(width and height and width > 2 * height),  # a row of panels
    }


def number(value: Any) -> str:
    """A cell: floats to 6 significant digits, None and NaN as empty, the rest as text."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def csv_text(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A CSV table; floats in full precision (``repr``), None as an empty cell."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if v is None else repr(v) if isinstance(v, float) else v for v in row])
    return buffer.getvalue()


def table(
    caption: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    download: str,
    csv_data: str | bytes | None = None,
    file: str | None = None,
    collapsed: bool = False,
    note: str | None = None,
) -> dict[str, Any]:
    """A table block: up to :data:`MAX_ROWS` rows shown, all of them in the CSV download
    (``csv_data``, else the rows themselves in full precision)."""
    data = csv_data if csv_data is not None else csv_text(columns, rows)
    if isinstance(data, str):
        data = data.encode("utf-8")
    shown = [[number(v) for v in row] for row in rows[:MAX_ROWS]]
    if len(rows) > MAX_ROWS:
        more = f"The first {MAX_ROWS} of {len(rows)} rows; the CSV holds them all."
        note = f"{note} {more}" if note else more
    return {
        "kind": "table",
        "caption": caption,
        "columns": [str(c) for c in columns],
        "rows": shown,
        "size": f"{len(rows)} row{'s' if len(rows) != 1 else ''} x {len(columns)} columns",
        "href": data_uri(data, "text/csv"),
        "download": download,
        "file": file,
        "collapsed": collapsed,
        "note": note,
    }


def csv_table(data: bytes, file: str, download: str, collapsed: bool = True) -> dict[str, Any]:
    """A CSV file as a table block; the download is the file's own bytes."""
    text = data.decode("utf-8", errors="replace")
    parsed = list(csv.reader(io.StringIO(text, newline="")))
    columns, rows = (parsed[0], parsed[1:]) if parsed else ([], [])
    block = table(file, columns, rows, download=download, csv_data=data, file=file)
    block["collapsed"] = collapsed
    return block


def markdown(text: str, file: str, download: str) -> dict[str, Any]:
    """A Markdown file (the tables weightscape writes) as headings, paragraphs and tables, each
    table downloadable as ``download``-N.csv.

    Cells written by :func:`weightscape.outputs.md_cell` are unescaped here (``\\|``, ``&lt;``)
    so the template escapes each once, and a name shows as typed.
    """
    parts: list[dict[str, Any]] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        if line.startswith("|"):
            block = []
            while i < len(lines) and lines[i].strip().startswith("|"):
                block.append(_cells(lines[i].strip()))
                i += 1
            body = [r for r in block[1:] if not all(re.fullmatch(r":?-+:?", c) for c in r)]
            tables = sum(p["kind"] == "table" for p in parts) + 1
            parts.append(
                {
                    "kind": "table",
                    "columns": block[0],
                    "rows": body,
                    "href": data_uri(csv_text(block[0], body).encode("utf-8"), "text/csv"),
                    "download": f"{download}-{tables}.csv",
                }
            )
            continue
        if line.startswith("#"):
            parts.append({"kind": "heading", "text": _plain(line.lstrip("#").strip())})
        elif line.startswith(("- ", "* ")):
            if not parts or parts[-1]["kind"] != "list":
                parts.append({"kind": "list", "items": []})
            parts[-1]["items"].append(_plain(line[2:]))
        elif line:
            parts.append({"kind": "paragraph", "text": _plain(line)})
        i += 1
    return {"kind": "markdown", "file": file, "parts": parts}


def _cells(line: str) -> list[str]:
    inner = line[1:-1] if line.endswith("|") and not line.endswith("\\|") else line[1:]
    cells = re.split(r"(?<!\\)\|", inner)
    return [_plain(c.strip()) for c in cells]


def _plain(text: str) -> str:
    """Markdown text as plain text: escapes undone, emphasis and code marks dropped."""
    text = text.replace("\\|", "|").replace("\\\\", "\\")
    text = re.sub(r"\*\*(.+?)\*\*", r"\1", text)
    text = re.sub(r"`([^`]*)`", r"\1", text)
    return html.unescape(text)
