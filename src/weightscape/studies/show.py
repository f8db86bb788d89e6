"""What a results store holds: its points grouped by anchors, task and kind, or all of them
exported as one tidy table (parquet or CSV) for pandas.

``weightscape show STORE`` only reads: the store is opened read-only, so it is never created,
upgraded or changed, and a store other processes are writing can be shown at any time. The
kinds of point and every exported column are described in ``docs/store.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from weightscape.studies.common import StudyConfig, check_output, positional, repeated

STUDY_STEP = False  # a command that reads a store, not a step of a study file
Kind = Literal["endpoint", "pair", "combination", "mix", "probe"]


class Config(StudyConfig):
    """A results store to show, which of its points, and whether to export them."""

    store: Path = positional("the results store (a command's --store, or OUT/results.sqlite)")
    anchor: tuple[str, ...] = repeated(
        "only points whose anchors include this name (repeatable: all of them)", default=()
    )
    task: str | None = Field(None, description="only points evaluated on this task (its name)")
    kind: Kind | None = Field(
        None, description="only points of this kind: endpoint, pair, combination, mix or probe"
    )
    run: str | None = Field(None, description="only the points this run used (run.json's id)")
    export: Literal["parquet", "csv"] | None = Field(
        None, description="also write every shown point as one row of OUT/points.parquet or .csv"
    )
    out: Path | None = Field(
        None, description="folder the export is written to (default: the store's folder)"
    )

    @field_validator("store", "out")
    @classmethod
    def _writable_output(cls, path: Path | None, info: ValidationInfo) -> Path | None:
        """Only the export folder must be writable: the store is read (a missing one is refused
        when it is opened, read-only, and never created)."""
        if path is None or info.field_name == "store":
            return path
        return check_output(path, folder=True)

    @model_validator(mode="after")
    def _out_needs_export(self) -> Config:
        if self.out is not None and self.export is None:
            raise ValueError("--out is where --export writes: give --export parquet or csv too")
        return self

    def export_path(self) -> Path | None:
        """Where the export goes: ``OUT/points.parquet`` (or ``.csv``), OUT defaulting to the
        store's folder; None without ``export``."""
        if self.export is None:
            return None
        return (self.out or self.store.parent) / f"points.{self.export}"


@dataclass
class Shown:
    """What ``show`` found: the tidy rows, their columns and their groups.

    Attributes:
        store: The store's path.
        version: Its schema version (read as it is: show upgrades nothing).
        total: Points the store holds.
        rows: The points that passed the filters
            (:func:`weightscape.runtime.store_view.tidy_points`).
        columns: The rows' columns in export order.
        groups: The rows grouped (:func:`weightscape.runtime.store_view.group_points`).
        named: Whether the store knows its anchors' names (schema 3 and written since).
        export: Where the rows are to be written, or None.
    """

    store: Path
    version: int
    total: int
    rows: list[dict[str, Any]] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    groups: list[dict[str, Any]] = field(default_factory=list)
    named: bool = True
    export: Path | None = None


def run(config: Config) -> Shown:
    """Read the store (read-only) and its points that pass the filters.

    Raises:
        WeightscapeError: When the file is no weightscape store, or a newer weightscape's.
    """
    from weightscape.runtime.store import ResultStore
    from weightscape.runtime.store_view import columns, group_points, tidy_points

    store = ResultStore(config.store, read_only=True)
    try:
        rows = tidy_points(
            store, run=config.run, anchors=config.anchor, task=config.task, kind=config.kind
        )
        return Shown(
            store=config.store,
            version=store.version,
            total=len(store),
            rows=rows,
            columns=columns(rows),
            groups=group_points(rows),
            named=bool(store.table("anchors")),
            export=config.export_path(),
        )
    finally:
        store.close()
