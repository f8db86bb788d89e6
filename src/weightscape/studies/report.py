"""What ``weightscape report FOLDER`` reads: a finished output folder's runs, files and points.

A command leaves ``run.json`` in its output folder (:mod:`weightscape.provenance`); a study file
leaves one in each step's folder. This gathers, without computing anything, every step of the
folder (the folder itself when it holds a ``run.json``, else each sub-folder that does, in the
order the steps ran), its record, the files it wrote, and the stored points each run used (read
from the results store, opened read-only and never created). The HTML page is drawn from these
alone (:mod:`weightscape.report.html`).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationInfo, field_validator

from weightscape.studies.common import StudyConfig, check_output, positional

STUDY_STEP = False  # it reads what the steps wrote: no step of a study file itself
RUN_FILE = "run.json"
STUDY_FILE = "study.json"  # a study file's record of its finished steps (studies.study_file)
REPORT_FILE = "report.html"
MAX_DEPTH = 2  # step folders lie at most this deep under the reported folder
# Files a page shows or reads (checkpoints, tokenizers and logs of training are not listed).
LISTED = (".png", ".svg", ".csv", ".md", ".json", ".npz", ".yaml")
# A folder holding one of these is a checkpoint: its files are weights and configs, not results.
CHECKPOINT = ("model.safetensors", "pytorch_model.bin", "adapter_config.json")


class Config(StudyConfig):
    """The folder to report on, the store its points are read from, and the page's title."""

    folder: Path = positional(
        "output folder of a command or a study file (the OUT it wrote run.json files into)"
    )
    store: Path | None = Field(
        None,
        description="results store to read the points from (default: the one each run's "
        "config names, else FOLDER/results.sqlite)",
    )
    title: str | None = Field(None, description="title of the page (default: the study's name)")

    @field_validator("folder", "store")
    @classmethod
    def _writable_output(cls, path: Path | None, info: ValidationInfo) -> Path | None:
        """The folder must exist and take report.html; the store is only read (a missing one
        means no stored-points tables)."""
        if path is None or info.field_name == "store":
            return path
        if not Path(path).is_dir():
            raise ValueError(f"'{path}' is not a folder; give the output folder of a command")
        return check_output(path, folder=True)


@dataclass
class StepRecord:
    """One run found in the folder.

    Attributes:
        folder: The run's output folder.
        relative: That folder relative to the reported one (``.`` for the folder itself).
        run: Its ``run.json``.
        files: The files it holds (relative POSIX paths, :data:`LISTED` kinds), sorted.
        points: The stored points the run used, as tidy rows with ``computed`` (True: this run
            evaluated it), or None when no store was found.
        store: The store those points were read from, or None.
    """

    folder: Path
    relative: str
    run: dict[str, Any]
    files: list[str] = field(default_factory=list)
    points: list[dict[str, Any]] | None = None
    store: Path | None = None


@dataclass
class ReportInput:
    """Everything the page is drawn from."""

    folder: Path
    title: str | None
    steps: list[StepRecord]
    stores: list[Path] = field(default_factory=list)
    missing_store: str | None = None


def run(config: Config) -> ReportInput:
    """Gather the folder's runs, their files and their stored points.

    Raises:
        WeightscapeError: When the folder holds no ``run.json`` at all.
    """
    folder = Path(config.folder)
    runs = find_runs(folder)
    counts = Counter(path for path, _ in runs)
    shared = {path for path, n in counts.items() if n > 1}
    steps = [
        StepRecord(
            path,
            _relative(path, folder),
            run,
            # Steps writing into one folder (finetune steps into one zoo) each show what they
            # wrote; a folder of its own shows all it holds.
            files=own_files(path, run) if path in shared else list_files(path, folder),
        )
        for path, run in runs
    ]
    result = ReportInput(folder=folder, title=config.title, steps=steps)
    stores: dict[Path, list[StepRecord]] = {}
    for step in steps:
        store = config.store or store_of(step, folder)
        if store is not None:
            stores.setdefault(Path(store), []).append(step)
    for store, users in stores.items():
        _read_points(store, users)
        if any(step.points is not None for step in users):
            result.stores.append(store)
    if not result.stores:
        result.missing_store = str(config.store or folder / "results.sqlite")
    return result


def find_runs(folder: Path) -> list[tuple[Path, dict[str, Any]]]:
    """The folder's runs in the order they ran: the folder itself when it holds ``run.json``,
    else every sub-folder (at most :data:`MAX_DEPTH` deep) that does, by study step then start.

    Raises:
        WeightscapeError: When there is none.
    """
    from weightscape.errors import WeightscapeError

    if (folder / STUDY_FILE).is_file():
        study = _read_run(folder / STUDY_FILE)
        found = [
            (_step_folder(folder, step.get("folder")), step["run"])
            for step in study.get("steps", [])
            if isinstance(step, dict) and isinstance(step.get("run"), dict)
        ]
        if found:
            return sorted(found, key=lambda item: _order(item[1]))
    if (folder / RUN_FILE).is_file():
        return [(folder, _read_run(folder / RUN_FILE))]
    found = []
    for root, dirs, files in os.walk(folder):
        depth = len(Path(root).relative_to(folder).parts)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")) if depth < MAX_DEPTH else []
        if depth and RUN_FILE in files:
            found.append((Path(root), _read_run(Path(root) / RUN_FILE)))
            dirs[:] = []  # a step's own sub-folders (checkpoints, grids) are its files
    if not found:
        raise WeightscapeError(
            f"'{folder}' holds no weightscape results: no run.json in it or in its sub-folders. "
            "Give the --out of a finished command or the out of a study file (`weightscape run "
            "STUDY.yaml` writes one run.json per step); a run killed before it finished leaves "
            "none, so rerun it first."
        )
    return sorted(found, key=lambda item: _order(item[1]))


def _order(run: dict[str, Any]) -> tuple:
    step = (run.get("study") or {}).get("step")
    return (step if isinstance(step, int) else 10**9, str(run.get("started", "")))


def _read_run(path: Path) -> dict[str, Any]:
    from weightscape.errors import WeightscapeError

    try:
        run = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise WeightscapeError(
            f"Cannot read '{path}': {err}. Rerun the command that wrote it."
        ) from None
    if not isinstance(run, dict):
        raise WeightscapeError(f"'{path}' is no run record (not a JSON object).")
    return run


def _step_folder(top: Path, folder: Any) -> Path:
    path = Path(str(folder))
    return path if path.is_absolute() else top / path


def own_files(step: Path, run: dict[str, Any]) -> list[str]:
    """The files a run wrote (its record's ``outputs``) that a page shows and that are still
    there."""
    outputs = run.get("outputs") or []
    return sorted(
        name
        for name in outputs
        if isinstance(name, str)
        and name.lower().endswith(LISTED)
        and Path(name).name not in (RUN_FILE, REPORT_FILE)
        and (step / name).is_file()
        # a checkpoint's own files (config.json, tokenizer) are weights' companions, no results
        and not any((step / name).parent.joinpath(c).is_file() for c in CHECKPOINT)
    )


def list_files(step: Path, top: Path) -> list[str]:
    """The step's files a page shows (:data:`LISTED`), relative to ``step``; hidden files,
    ``run.json`` and the folders of other steps (or of the reported folder) are left out."""
    out = []
    for root, dirs, files in os.walk(step):
        here = Path(root)
        dirs[:] = sorted(
            d
            for d in dirs
            if not d.startswith(".")
            and here / d != top
            and not any((here / d / name).is_file() for name in (RUN_FILE, *CHECKPOINT))
        )
        for name in files:
            relative = (here / name).relative_to(step).as_posix()
            if name.startswith(".") or relative in (RUN_FILE, REPORT_FILE):
                continue
            if name.lower().endswith(LISTED):
                out.append(relative)
    return sorted(out)


def store_of(step: StepRecord, top: Path) -> Path | None:
    """The store a run wrote its points to: its config's ``store``, else its folder's
    ``results.sqlite``, else the reported folder's (the first that exists), else None."""
    config = step.run.get("config") or {}
    named = config.get("store") if isinstance(config, dict) else None
    candidates = []
    if isinstance(named, str):  # given relative to where the command ran: try both
        candidates += [Path(named), top / Path(named).name]
    candidates += [step.folder / "results.sqlite", top / "results.sqlite"]
    return next((path for path in candidates if path.is_file()), None)


def _read_points(store: Path, steps: list[StepRecord]) -> None:
    """Fill each step's ``points`` from ``store`` (read-only; left None when unreadable)."""
    from weightscape.errors import WeightscapeError
    from weightscape.runtime.store import ResultStore
    from weightscape.runtime.store_view import tidy_points, uses_of

    try:
        opened = ResultStore(store, read_only=True)
    except WeightscapeError:
        return
    try:
        by_key = {row["key"]: row for row in tidy_points(opened)}
        for step in steps:
            used = {u["key"]: u["computed"] for u in uses_of(opened, str(step.run.get("id")))}
            step.points = [
                {**row, "computed": used[key]} for key, row in by_key.items() if key in used
            ]
            step.store = store
    finally:
        opened.close()


def _relative(path: Path, top: Path) -> str:
    return path.relative_to(top).as_posix() if path != top else "."
