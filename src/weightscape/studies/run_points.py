"""Points read back from the output folder of a finished command, for ``weightscape export``.

A command's folder holds its ``run.json`` (the validated config, the working directory and the
content hash of every anchor it evaluated) and its result files. From those, a point is rebuilt
exactly as the command evaluated it:

* ``interpolate`` (``path.json``): the walk's best point by accuracy (its summary's ``best_t``),
  with the coefficient row the engine evaluated, or any ``t`` on the walked path;
* ``curve`` (``curve-table.json``, ``curve/control-K``): the best point of the fitted curve (t
  chosen on dev, as the command's table), or of the line (``mix="line"``), or any ``t``;
* ``combine`` (``combine.json``, ``combination-GROUPING.json``): the best point of the line (t
  chosen on dev), any ``t`` on it, or a learned per-group mix (``mix`` = its grouping: layer,
  module or matrix), a :class:`~weightscape.evaluation.grouped.GroupedPoint` with one
  coefficient vector per parameter group.

The anchors are resolved from the run's own config (paths relative to its working directory) and
each must still have the content hash the run recorded: a checkpoint changed since the run would
give a model the run never evaluated, so it is refused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from weightscape.errors import WeightscapeError
from weightscape.provenance import RUN_FILE

COMMANDS = ("interpolate", "curve", "combine")
"""Commands whose output folders hold points ``export`` can rebuild."""

MIXES = {
    "interpolate": ("line",),
    "curve": ("curve", "line"),
    "combine": ("line", "layer", "module", "matrix"),
}
"""Which path of each command's folder a point lies on (the first is the default); ``line`` of
``interpolate`` is the walked path, whatever its type."""


@dataclass(frozen=True)
class RunPoint:
    """A point of a finished run: what to combine, how, and where it came from.

    Attributes:
        anchors: The checkpoints, as the run resolved them.
        coefficients: One weight per anchor, or one vector per group (a learned mix).
        space: The run's parameter space (``space``, ``include``, ``exclude`` of its config).
        tokenizer: The run's tokenizer folder (None: the reference anchor's).
        dtype: The dtype the run evaluated in (``float32`` for runs older than ``--dtype``).
        describe: What the point is, for ``export.json``: the command, the path, t, and the
            metrics the run measured there when it evaluated this very point.
    """

    anchors: list[Any]
    coefficients: Any
    space: Any
    tokenizer: Path | None
    dtype: str = "float32"
    describe: dict[str, Any] = field(default_factory=dict)


def read_run_point(folder: Path, t: float | None = None, mix: str | None = None) -> RunPoint:
    """The point of ``folder`` (a finished ``interpolate``, ``curve`` or ``combine``) to export.

    Args:
        folder: The command's output folder.
        t: A t on the run's path instead of its best point.
        mix: Which path of the folder (:data:`MIXES`); default its first.

    Raises:
        WeightscapeError: Naming ``--from-run``, ``--mix`` or ``--t``: no finished run there, a
            command whose folder holds no point, a missing file, an anchor that changed or is
            gone, or a ``t`` the path does not allow.
    """
    run = _read_json(folder, RUN_FILE, "a finished command's record")
    command = run.get("command")
    if command not in COMMANDS:
        raise WeightscapeError(
            f"--from-run: '{folder}' holds the output of '{command}', which has no point to "
            f"export. Give the folder of a finished {', '.join(COMMANDS)} run."
        )
    mix = mix or MIXES[command][0]
    if mix not in MIXES[command]:
        raise WeightscapeError(
            f"--mix: the points of the {command} run in '{folder}' lie on "
            f"{' or '.join(MIXES[command])}; got '{mix}'."
        )
    reader = {"interpolate": _interpolate, "curve": _curve, "combine": _combine}[command]
    return reader(folder, run, t, mix)


def _interpolate(folder: Path, run: dict, t: float | None, mix: str) -> RunPoint:
    walk = _read_json(folder, "path.json", "the walk")
    anchors = _run_anchors(folder, run)
    describe = {"command": "interpolate", "path": walk["path"]}
    walked = {p["t"]: p for p in walk["points"]}
    if t is not None:
        if t in walked:  # the run measured this very point
            describe["metrics"] = walked[t]["metrics"]
        return _on_path(anchors, walk["path"], t, run, describe)
    point = walked.get(walk["summary"]["accuracy"]["best_t"])
    if point is None:
        raise WeightscapeError(f"--from-run: '{folder / 'path.json'}' names no best point.")
    describe.update(t=point["t"], chosen="best accuracy of the walk", metrics=point["metrics"])
    return _point(anchors, point["coefficients"], run, describe)


def _curve(folder: Path, run: dict, t: float | None, mix: str) -> RunPoint:
    config = run["config"]
    ends = _run_anchors(folder, run)
    if mix == "line":
        anchors, path = ends, "linear"
    else:
        controls = [folder / "curve" / f"control-{k}" for k in range(1, config["controls"] + 1)]
        missing = [str(c) for c in controls if not c.is_dir()]
        if missing:
            raise WeightscapeError(
                f"--from-run: the curve's control points are missing: {', '.join(missing)}."
            )
        from weightscape.models.checkpoint import Checkpoint

        fitted = [Checkpoint.from_path(c, name=f"{ends[0].name}~{c.name}") for c in controls]
        _check_recorded(fitted, run, folder)
        anchors, path = [ends[0], *fitted, ends[1]], config["path"]
    describe = {"command": "curve", "path": path, "mix": mix}
    if t is None:
        t, metrics = _best_row(folder, "curve-table.json", "curved" if mix == "curve" else "linear")
        describe.update(chosen="best t on dev, as the command's table", metrics=metrics)
    return _on_path(anchors, path, t, run, describe)


def _combine(folder: Path, run: dict, t: float | None, mix: str) -> RunPoint:
    anchors = _run_anchors(folder, run)
    if mix != "line":
        return _learned_mix(folder, run, anchors, t, mix)
    describe = {"command": "combine", "path": "linear", "mix": mix}
    if t is None:
        t, metrics = _best_row(folder, "combine.json", "linear")
        describe.update(chosen="best t on dev, as the command's table", metrics=metrics)
    return _on_path(anchors, "linear", t, run, describe)


def _learned_mix(folder: Path, run: dict, anchors: list, t: float | None, mix: str) -> RunPoint:
    """The mix learned for grouping ``mix``: sigmoid(a_g) on the first anchor per group."""
    from weightscape.evaluation.grouped import GroupedPoint

    if t is not None:
        raise WeightscapeError(f"--t: a learned {mix}-wise mix is no path; leave --t out.")
    learned = _read_json(folder, f"combination-{mix}.json", f"the learned {mix}-wise mix")
    alphas = learned["alphas"]
    point = GroupedPoint.from_mapping(mix, {g: (a, 1.0 - a) for g, a in alphas.items()})
    rows = _read_json(folder, "combine.json", "the command's table")
    row = next((r for r in rows if r["method"].startswith(f"learned {mix}-wise")), {})
    describe = {"command": "combine", "mix": mix, "groups": len(alphas)}
    describe["metrics"] = {k: row[k] for k in ("dev", "test") if k in row}
    return _point(anchors, point, run, describe)


def _best_row(folder: Path, name: str, method: str) -> tuple[float, dict[str, Any]]:
    """The t and dev/test metrics of the table row whose method starts with ``method``."""
    rows = _read_json(folder, name, "the command's table")
    row = next((r for r in rows if r["method"].startswith(method)), None)
    if row is None or "t" not in row:
        raise WeightscapeError(f"--from-run: '{folder / name}' has no '{method}' row with a t.")
    return float(row["t"]), {"dev": row["dev"], "test": row["test"]}


def _on_path(anchors: list, path: str, t: float, run: dict, describe: dict) -> RunPoint:
    """The point at ``t`` on ``path`` over ``anchors``; a t the path does not allow names --t."""
    from weightscape.geometry.paths import get_path

    try:
        row = get_path(path, len(anchors)).coefficients([t])[0]
    except WeightscapeError as err:
        raise WeightscapeError(f"--t: {err}") from None
    describe.setdefault("t", float(t))
    return _point(anchors, [float(c) for c in row], run, describe)


def _point(anchors: list, coefficients: list, run: dict, describe: dict) -> RunPoint:
    from weightscape.models.space import ParameterSpace

    config = run["config"]
    space = ParameterSpace(
        preset=config.get("space", "all"),
        include=tuple(config.get("include") or ()),
        exclude=tuple(config.get("exclude") or ()),
    )
    tokenizer = _in_cwd(run, config.get("tokenizer"))
    if tokenizer is None and config.get("zoo"):
        from weightscape.models.zoo import Zoo

        tokenizer = Zoo.from_manifest(_in_cwd(run, config["zoo"])).tokenizer
    if isinstance(coefficients, list | tuple):
        coefficients = [float(c) for c in coefficients]
    dtype = config.get("dtype") or "float32"
    return RunPoint(anchors, coefficients, space, tokenizer, dtype, describe)


def _run_anchors(folder: Path, run: dict) -> list[Any]:
    """The run's anchors, resolved as it resolved them, each checked against its record."""
    from weightscape.studies.common import resolve_checkpoints

    config = run["config"]
    cwd = Path(run.get("cwd") or ".")
    zoo = _in_cwd(run, config.get("zoo"))
    # As the run did: a path that exists wins over a name in the zoo.
    resolved = [str(cwd / a) if zoo is None or (cwd / a).exists() else a for a in config["anchors"]]
    try:
        checkpoints = resolve_checkpoints(resolved, zoo, _in_cwd(run, config.get("config")))
    except WeightscapeError as err:
        raise WeightscapeError(
            f"--from-run: the anchors of '{folder}' cannot be read any more: {err}"
        ) from None
    _check_recorded(checkpoints, run, folder)
    return checkpoints


def _check_recorded(checkpoints: list, run: dict, folder: Path) -> None:
    """Refuse a checkpoint whose content the run did not evaluate (changed since the run)."""
    recorded = {a["content_hash"] for a in run.get("anchors", [])}
    for checkpoint in checkpoints:
        if checkpoint.content_hash() not in recorded:
            raise WeightscapeError(
                f"--from-run: the checkpoint '{checkpoint.path}' ({checkpoint.name}) is not what "
                f"the run in '{folder}' evaluated: its content changed since. Rerun the command "
                "on it, or restore the checkpoint."
            )


def _in_cwd(run: dict, value: str | None) -> Path | None:
    """A path of the run's config, relative to the folder the run was started in."""
    if value is None:
        return None
    path = Path(value)
    return path if path.is_absolute() else Path(run.get("cwd") or ".") / path


def _read_json(folder: Path, name: str, what: str) -> Any:
    path = Path(folder) / name
    if not path.is_file():
        raise WeightscapeError(
            f"--from-run: '{folder}' holds no {name} ({what}). Give the output folder of a "
            f"finished {', '.join(COMMANDS)} run."
        )
    return json.loads(path.read_text())
