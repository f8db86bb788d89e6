"""Where every output came from: the run that wrote it.

A command (or a study file's step) runs inside :func:`recording`, which makes a
:class:`RunRecord` current for the duration. The layers below report into it without knowing who
runs them: the executor notes each anchor, task and device it evaluates with and how many points
it computed or reused (:func:`note_evaluation`). When the command has written its files, the
record is saved as ``run.json`` in its output folder, and every JSON object the command wrote
carries the same provenance (``outputs.write_json``), as lm-evaluation-harness's results do.

The record imports nothing heavy: versions are read from the installed distributions' metadata,
not by importing torch or transformers.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as _dt
import functools
import os
import platform
import subprocess
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

SCHEMA = "weightscape.run/1"
"""The version of ``run.json``'s layout (docs/outputs.md); bumped when a field changes meaning."""

RUN_FILE = "run.json"
"""The record of the latest complete run of an output folder."""


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


@functools.lru_cache(maxsize=1)
def git_commit() -> str | None:
    """The commit of the checkout weightscape runs from (an editable install), else None."""
    source = Path(__file__).resolve().parent
    try:
        done = subprocess.run(
            ["git", "-C", str(source), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = done.stdout.strip()
    return commit if done.returncode == 0 and len(commit) == 40 else None


def environment() -> dict[str, Any]:
    """Versions of weightscape and its numerical stack, the git commit and the platform."""
    return dict(_environment())


@functools.lru_cache(maxsize=1)
def _environment() -> dict[str, Any]:  # read once: a process's versions do not change
    from weightscape import __version__

    return {
        "weightscape": __version__,
        "git_commit": git_commit(),
        "python": platform.python_version(),
        "torch": _version("torch"),
        "transformers": _version("transformers"),
        "platform": platform.platform(),
    }


def now() -> str:
    """The current time in ISO 8601 with the UTC offset."""
    return _dt.datetime.now(_dt.timezone.utc).astimezone().isoformat(timespec="seconds")


@dataclass
class RunRecord:
    """What one command (or study step) ran on, what it computed, and when.

    Attributes:
        command: The command or step name (``grid``).
        command_line: What the user typed (``weightscape grid --zoo ...``).
        config: The validated configuration, as JSON.
        id: A fresh identifier; the results store lists the points each run used under it.
        study: For a study file's step: ``{"name", "file", "step"}``.
        cwd: The folder the command ran in (relative paths in the config are relative to it).
    """

    command: str
    command_line: str
    config: dict[str, Any]
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    study: dict[str, Any] | None = None
    cwd: str = field(default_factory=os.getcwd)
    started: str = field(default_factory=now)
    start_clock: float = field(default_factory=time.perf_counter)
    anchors: dict[str, dict[str, Any]] = field(default_factory=dict)
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)
    devices: list[str] = field(default_factory=list)
    computed: int = 0
    reused: int = 0

    def evaluated_nothing(self) -> bool:
        """Whether no point was evaluated (or reused) in this run."""
        return not self.tasks and self.computed + self.reused == 0

    def as_dict(self, finished: bool = False) -> dict[str, Any]:
        """The record as JSON (``run.json``; every output JSON's ``provenance``)."""
        out: dict[str, Any] = {
            "schema": SCHEMA,
            "id": self.id,
            "command": self.command,
            "command_line": self.command_line,
            "study": self.study,
            "cwd": self.cwd,
            "config": self.config,
            "started": self.started,
            "environment": environment(),
            "devices": list(self.devices),
            "anchors": list(self.anchors.values()),
            "tasks": list(self.tasks.values()),
            "points": {"computed": self.computed, "reused": self.reused},
        }
        if finished:
            out["finished"] = now()
            out["seconds"] = round(time.perf_counter() - self.start_clock, 3)
        return out


_CURRENT: contextvars.ContextVar[RunRecord | None] = contextvars.ContextVar(
    "weightscape_run", default=None
)


def current() -> RunRecord | None:
    """The run being recorded, or None (a library call outside any command)."""
    return _CURRENT.get()


@contextlib.contextmanager
def recording(record: RunRecord) -> Iterator[RunRecord]:
    """Make ``record`` current while the block runs."""
    token = _CURRENT.set(record)
    try:
        yield record
    finally:
        _CURRENT.reset(token)


def note_evaluation(
    anchors: Iterable[Any],
    task: Any,
    device: str,
    *,
    computed: int,
    reused: int,
) -> None:
    """Report one executor call into the current run (a no-op outside one).

    Args:
        anchors: The engine's checkpoints (each with ``name``, ``path`` and ``content_hash()``).
        task: The task evaluated (``name``, ``fingerprint()`` and its examples).
        device: Where the points were computed (``cpu``, ``cuda:0``).
        computed: Points evaluated by this call.
        reused: Points answered from the store (or repeated within the call).
    """
    record = current()
    if record is None:
        return
    note_anchors(anchors)
    fingerprint = task.fingerprint()
    record.tasks.setdefault(
        fingerprint,
        {"name": task.name, "examples": len(task), "fingerprint": fingerprint},
    )
    if device not in record.devices:
        record.devices.append(device)
    record.computed += computed
    record.reused += reused


def note_anchors(anchors: Iterable[Any]) -> None:
    """Report checkpoints a run read without evaluating them (task vectors, distances, a
    finetuning base) into the current run (a no-op outside one)."""
    record = current()
    if record is None:
        return
    for anchor in anchors:
        content = anchor.content_hash()
        record.anchors.setdefault(
            content,
            {"name": anchor.name, "path": str(anchor.path), "content_hash": content},
        )


def run_json(record: RunRecord, outputs: Iterable[str]) -> dict[str, Any]:
    """``run.json``: the finished record and the files the run wrote (relative paths)."""
    return {**record.as_dict(finished=True), "outputs": sorted(outputs)}


def summary_lines(record: RunRecord, folder: str | Path | None) -> list[str]:
    """The terminal's last lines for a run: what was computed and reused, on how many examples
    (nothing for a run that evaluated no point, such as ``finetune``), and where the record
    lies."""
    lines = [] if record.evaluated_nothing() else [points_line(record)]
    if folder is not None:
        lines.append(f"provenance: {Path(folder) / RUN_FILE}")
    return lines


def points_line(record: RunRecord) -> str:
    """How many points the run computed and reused, and the examples each number rests on.

    >>> record = RunRecord("interpolate", "weightscape interpolate ...", {"store": "r.sqlite"})
    >>> record.computed, record.reused = 5, 2
    >>> record.tasks["f"] = {"name": "reviews", "examples": 48, "fingerprint": "f"}
    >>> print(points_line(record))
    points: computed 5, reused 2 already in the results store r.sqlite (stored earlier by this run or another, not computed again); each number rests on 48 examples of reviews
    """  # noqa: E501
    if record.evaluated_nothing():
        return "points: none evaluated by this command"
    store = _store_of(record.config)
    where = f"the results store {store}" if store is not None else "the results store"
    line = (
        f"points: computed {record.computed}, reused {record.reused} already in {where} "
        "(stored earlier by this run or another, not computed again)"
    )
    counts = [(t["examples"], t["name"]) for t in record.tasks.values()]
    if len(counts) == 1:
        return line + f"; each number rests on {_examples(counts[0][0])} of {counts[0][1]}"
    if counts:
        each = ", ".join(f"{n} of {name}" for n, name in counts)
        return line + f"; each number rests on the examples of its task: {each}"
    return line


def _store_of(config: dict[str, Any]) -> Any:
    """The store a config names (``store``), else ``OUT/results.sqlite`` where it exists."""
    if config.get("store") is not None or config.get("out") is None:
        return config.get("store")
    default = Path(config["out"]) / "results.sqlite"
    return default if default.is_file() else None


def _examples(n: int) -> str:
    return f"{n} example" if n == 1 else f"{n} examples"
