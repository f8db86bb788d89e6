"""One section per step: its reading, its interactive figures, and every file it wrote.

A :class:`StepView` reads one step's folder. The builder of its command (:data:`BUILDERS`) adds
interactive figures (each with the matching PNG as its printed fallback), tables and sentences
from the step's own JSON and arrays; then :func:`add_remaining` embeds every figure and table
file the builder did not use (PNG and SVG as images, CSV as tables with a download, Markdown as
text), so every file of every step is on the page whatever its command. A builder that fails
on an unexpected file leaves a note, and the step's files are still shown.
"""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path
from typing import Any

from weightscape.report.html import blocks, reading
from weightscape.report.html.commands import BUILDERS


class StepView:
    """One step's folder, as a section is built from it.

    Args:
        record: The step (:class:`weightscape.studies.report.StepRecord`).
        number: Its position on the page (1-based).
        figures: The page's list of figure specs, which :meth:`plot` appends to.
    """

    def __init__(self, record: Any, number: int, figures: list[dict[str, Any]]) -> None:
        self.record = record
        self.number = number
        self.folder = Path(record.folder)
        self.run: dict[str, Any] = record.run
        self.config: dict[str, Any] = record.run.get("config") or {}
        self.command = str(record.run.get("command", "?"))
        self.files: list[str] = list(record.files)
        self.used: set[str] = set()
        self.blocks: list[dict[str, Any]] = []
        self.sentences: list[str] = []
        self.notes: list[str] = []
        self._figures = figures

    # --- reading the folder -------------------------------------------------------------------

    def has(self, name: str) -> bool:
        return name in self.files

    def matching(self, pattern: str) -> list[str]:
        """The step's files matching a glob (``path-*.json``), sorted."""
        return [f for f in self.files if fnmatch.fnmatch(f, pattern)]

    def json(self, name: str) -> Any:
        """A JSON file of the step without its ``provenance`` (None when absent)."""
        if not self.has(name):
            return None
        value = json.loads((self.folder / name).read_text())
        if isinstance(value, dict):
            value.pop("provenance", None)
        return value

    def arrays(self, name: str) -> dict[str, Any] | None:
        """The arrays of an ``.npz`` file (None when absent)."""
        if not self.has(name):
            return None
        import numpy as np

        with np.load(self.folder / name, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}

    # --- adding to the section ----------------------------------------------------------------

    def say(self, sentences: list[str]) -> None:
        self.sentences += sentences

    def plot(
        self,
        key: str,
        spec: dict[str, Any],
        *,
        fallback: str | None = None,
        height: int = 420,
        half: bool = False,
    ) -> None:
        """An interactive figure; ``fallback`` (a PNG of the step) is what prints; ``half``
        figures sit two in a row."""
        figure_id = f"fig-{len(self._figures) + 1}"
        self._figures.append({"id": figure_id, "json": blocks.script_json(spec)})
        static = self.image(fallback) if fallback and self.has(fallback) else None
        self.blocks.append(
            {
                "kind": "plot",
                "id": figure_id,
                "figure": f"{self.number}: {key}",
                "height": height,
                "fallback": static,
                "caption": key,
                "half": half,
            }
        )

    def image(self, name: str) -> dict[str, Any]:
        """Embed one PNG or SVG of the step (marked used)."""
        self.used.add(name)
        suffix = Path(name).suffix.lower()
        data = (self.folder / name).read_bytes()
        return blocks.image(data, name, suffix, f"{self.number}: {name}")

    def table(self, caption: str, columns: list[str], rows: list[list[Any]], name: str) -> None:
        """A table built from the step's numbers, shown open, downloadable as ``name``."""
        download = f"{self.number:02d}-{self.command}-{name}"
        self.blocks.append(blocks.table(caption, columns, rows, download=download))

    def csv(self, name: str, collapsed: bool = False) -> None:
        """A CSV file of the step as a table (marked used)."""
        self.used.add(name)
        data = (self.folder / name).read_bytes()
        download = f"{self.number:02d}-{self.command}-{name.replace('/', '-')}"
        self.blocks.append(blocks.csv_table(data, name, download, collapsed=collapsed))

    def markdown(self, name: str) -> None:
        """A Markdown file of the step as text and tables (marked used)."""
        self.used.add(name)
        download = f"{self.number:02d}-{self.command}-{Path(name).stem}"
        self.blocks.append(blocks.markdown((self.folder / name).read_text(), name, download))


def build_section(record: Any, number: int, figures: list[dict[str, Any]]) -> dict[str, Any]:
    """The section of one step: what the template draws."""
    view = StepView(record, number, figures)
    builder = BUILDERS.get(view.command)
    if builder is not None:
        mark = (len(view.blocks), len(figures), set(view.used), len(view.sentences))
        try:
            builder(view)
        except Exception as err:  # an odd file must not cost the whole page
            del view.blocks[mark[0] :], figures[mark[1] :], view.sentences[mark[3] :]
            view.used = mark[2]
            view.notes.append(
                f"The {view.command} figures could not be drawn from this folder's files "
                f"({type(err).__name__}: {err}); its files are shown as they are."
            )
    add_remaining(view)
    if not view.sentences:
        images = sum(f.lower().endswith((".png", ".svg")) for f in view.files)
        tables = sum(f.lower().endswith((".csv", ".md")) for f in view.files)
        view.say(reading.generic(view.command, images, tables))
    return {
        "number": number,
        "anchor": f"step-{number}",
        "command": view.command,
        "folder": record.relative,
        "run": record.run,
        "sentences": view.sentences,
        "blocks": view.blocks,
        "notes": view.notes,
        "settings": settings_rows(view.config),
        "points": points_block(record, number, view.command),
    }


def add_remaining(view: StepView) -> None:
    """Every figure, table and text file the builder did not show, as it is: Markdown tables
    (the step's own summary) first, then the figures, then each CSV (collapsed), then the names
    of the data files."""
    for name in view.files:
        if name not in view.used and name.lower().endswith(".md"):
            view.markdown(name)
    images = [
        view.image(f)
        for f in view.files
        if f.lower().endswith((".png", ".svg")) and f not in view.used
    ]
    if images:
        title = "Figures" if len(images) == len(view.matching("*.png")) else "More figures"
        view.blocks.append({"kind": "images", "title": title, "items": images})
    for name in view.files:
        if name not in view.used and name.lower().endswith(".csv"):
            view.csv(name, collapsed=True)
    others = [f for f in view.files if f not in view.used and not f.endswith("train_log.json")]
    if others:
        view.blocks.append({"kind": "files", "items": others})


def settings_rows(config: dict[str, Any]) -> list[list[str]]:
    """The step's configuration as (setting, value) rows."""
    return [[str(k), _setting(v)] for k, v in config.items()]


def _setting(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(_setting(v) for v in value) if value else "(none)"
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return blocks.number(value)


POINT_COLUMNS = ("kind", "anchors", "task", "examples", "loss", "accuracy", "computed")


def points_block(record: Any, number: int, command: str) -> dict[str, Any] | None:
    """The table of stored points the step's run used (all columns in its CSV)."""
    rows = record.points
    if not rows:
        return None
    columns = list(dict.fromkeys(c for row in rows for c in row))
    shown = [[row.get(c) for c in POINT_COLUMNS[:2]] for row in rows]
    for row, line in zip(rows, shown, strict=True):
        line[1] = " + ".join(
            f"{row[f'anchor_{i}']} x {blocks.number(row.get(f'coef_{i}'))}"
            if row.get(f"coef_{i}") is not None
            else str(row[f"anchor_{i}"])
            for i in range(1, _width(row) + 1)
        )
        line += [row.get("task"), row.get("examples"), row.get("loss"), row.get("accuracy")]
        line.append("computed" if row.get("computed") else "reused")
    table = blocks.table(
        "Stored points this step used",
        list(POINT_COLUMNS),
        shown,
        download=f"{number:02d}-{command}-points.csv",
        csv_data=blocks.csv_text(columns, ([row.get(c) for c in columns] for row in rows)),
        collapsed=True,
    )
    table["store"] = str(record.store) if record.store else None
    return table


def _width(row: dict[str, Any]) -> int:
    n = 0
    while f"anchor_{n + 1}" in row:
        n += 1
    return n
