"""The HTML report: one self-contained page of a study's (or a command's) results.

``weightscape report FOLDER`` (and the last step of ``weightscape run``) writes
``FOLDER/report.html`` from the folder's ``run.json`` files, its output files and the results
store (:mod:`weightscape.studies.report` gathers them; nothing is computed): a header saying what
was compared, when, how long each step took and with what software; then one section per step
with sentences read from its numbers, interactive figures (static PNGs for printing) and every
table as a CSV download.

The page needs no network: CSS, the page script and plotly.js (from the pinned ``plotly``
package, inlined once) are inside it, images are ``data:`` URIs. Every name from a user is
escaped by jinja2's autoescape, and figure data go into JSON script elements with ``<``, ``>``
and ``&`` escaped (:func:`weightscape.report.html.blocks.script_json`).
"""

from __future__ import annotations

import datetime as _dt
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from weightscape.outputs import write_text
from weightscape.report.html import blocks
from weightscape.report.html.sections import build_section

# Config fields worth naming in the steps table (the whole config is in each section).
KEY_SETTINGS = (
    "anchors", "zoo_file", "task", "source_task", "target_task", "task_a", "task_b", "split",
    "subset", "eval_examples", "points", "path", "steps", "k", "by", "diagnostic", "base",
    "targets", "space",
)  # fmt: skip


def render_report(result, config) -> list[str]:
    """Write ``report.html`` into the reported folder (atomically); the terminal lines.

    Args:
        result: What :func:`weightscape.studies.report.run` gathered.
        config: The report's :class:`~weightscape.studies.report.Config`.
    """
    text, sections = build_page(result)
    path = write_text(Path(result.folder) / "report.html", text)
    size = len(text.encode("utf-8")) / 1e6
    return [
        f"wrote {path} ({size:.1f} MB, {sections} section{'s' if sections != 1 else ''}): "
        "open it in a browser; it needs no network"
    ]


def write_report(out: str | Path, store: str | Path | None = None) -> Path:
    """Write ``out/report.html`` for a finished command's or study's folder; its path.

    Raises:
        WeightscapeError: When ``out`` holds no ``run.json``.
    """
    from weightscape.studies.report import Config, run

    config = Config(folder=Path(out), store=Path(store) if store is not None else None)
    render_report(run(config), config)
    return Path(out) / "report.html"


def build_page(data) -> tuple[str, int]:
    """The page's HTML and its number of step sections."""
    from markupsafe import Markup

    figures: list[dict[str, Any]] = []
    sections = [build_section(step, i, figures) for i, step in enumerate(data.steps, 1)]
    for section in sections:
        section["meta"] = _meta(section["run"])
        section["settings"] = blocks.table(
            "Settings",
            ["setting", "value"],
            section["settings"],
            download=f"{section['number']:02d}-{section['command']}-settings.csv",
        )
        section["no_points"] = _no_points(data, section)
    for figure in figures:
        figure["json"] = Markup(figure["json"])  # escaped by script_json
    from weightscape import __version__

    html = (
        _environment()
        .get_template("report.html")
        .render(
            title=data.title or _title(data),
            version=__version__,
            generated=_dt.datetime.now().astimezone().isoformat(timespec="seconds"),
            folder=str(data.folder),
            overview=overview(data),
            sections=sections,
            figures=figures,
            css=Markup(_asset("report.css")),
            page_js=Markup(_asset("report.js")),
            plotly_js=Markup(_plotly_js()),
        )
    )
    return html, len(sections)


def overview(data) -> dict[str, Any]:
    """The header: what was run and compared, when, for how long, and with what."""
    runs = [step.run for step in data.steps]
    started = min((str(r.get("started")) for r in runs if r.get("started")), default="?")
    finished = max((str(r.get("finished")) for r in runs if r.get("finished")), default="?")
    seconds = sum(float(r.get("seconds") or 0) for r in runs)
    computed = sum(int((r.get("points") or {}).get("computed") or 0) for r in runs)
    reused = sum(int((r.get("points") or {}).get("reused") or 0) for r in runs)
    lead = [
        f"{len(runs)} step{'s' if len(runs) != 1 else ''} run from {started} to {finished} "
        f"({seconds:.1f} s of work); {computed} points computed and {reused} reused from the "
        "results store.",
    ]
    notes = []
    if data.missing_store:
        notes.append(
            f"No results store was found ({data.missing_store}): the stored-points tables are "
            "missing. Give its path with --store to include them."
        )
    return {
        "lead": lead,
        "notes": notes,
        "steps": _steps_table(data),
        "models": _models_table(runs),
        "tasks": _tasks_table(runs),
        "environment": _environment_table(runs),
    }


def _steps_table(data) -> dict[str, Any]:
    columns = ["#", "step", "folder", "started", "seconds", "computed", "reused", "device"]
    columns.append("settings")
    rows = []
    for i, step in enumerate(data.steps, 1):
        run, config = step.run, step.run.get("config") or {}
        points = run.get("points") or {}
        keys = ("zoo_file",) if config.get("zoo_file") else KEY_SETTINGS  # its runs' settings
        settings = "; ".join(
            f"{k}={_short(config[k])}" for k in keys if config.get(k) not in (None, [], "")
        )
        devices = ", ".join(map(str, run.get("devices") or []))
        rows.append(
            [i, run.get("command"), step.relative, run.get("started"), run.get("seconds"),
             points.get("computed"), points.get("reused"), devices, settings]
        )  # fmt: skip
    return blocks.table("Steps in the order they ran", columns, rows, download="steps.csv")


def _models_table(runs: list[dict[str, Any]]) -> dict[str, Any] | None:
    seen: dict[str, list[Any]] = {}
    for i, run in enumerate(runs, 1):
        for anchor in run.get("anchors") or []:
            row = seen.setdefault(
                str(anchor.get("content_hash")),
                [anchor.get("name"), anchor.get("path"), anchor.get("content_hash"), []],
            )
            row[3].append(str(i))
    if not seen:
        return None
    rows = [[*row[:3], ", ".join(row[3])] for row in seen.values()]
    columns = ["model", "path", "content hash (SHA-256 of its tensors)", "steps"]
    return blocks.table("Checkpoints the steps evaluated", columns, rows, download="models.csv")


def _tasks_table(runs: list[dict[str, Any]]) -> dict[str, Any] | None:
    seen: dict[str, list[Any]] = {}
    for i, run in enumerate(runs, 1):
        for task in run.get("tasks") or []:
            row = seen.setdefault(
                str(task.get("fingerprint")),
                [task.get("name"), task.get("examples"), task.get("fingerprint"), []],
            )
            row[3].append(str(i))
    if not seen:
        return None
    rows = [[*row[:3], ", ".join(row[3])] for row in seen.values()]
    columns = ["task", "examples", "fingerprint", "steps"]
    return blocks.table("Tasks the points were evaluated on", columns, rows, download="tasks.csv")


def _environment_table(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Versions, commit and platform; one column per distinct environment (the devices are
    in the steps table)."""
    groups: dict[str, tuple[dict[str, Any], list[str]]] = {}
    for i, run in enumerate(runs, 1):
        env = dict(run.get("environment") or {})
        key = repr(sorted(env.items()))
        groups.setdefault(key, (env, []))[1].append(str(i))
    keys = list(dict.fromkeys(k for env, _ in groups.values() for k in env))
    columns = ["", *(f"steps {', '.join(steps)}" for _, steps in groups.values())]
    if len(groups) == 1:
        columns = ["", "every step"]
    rows = [[key, *(env.get(key) for env, _ in groups.values())] for key in keys]
    return blocks.table("Software and hardware", columns, rows, download="environment.csv")


def _meta(run: dict[str, Any]) -> str:
    points = run.get("points") or {}
    study = run.get("study") or {}
    where = f"step {study.get('step')} of study '{study.get('name')}'; " if study else ""
    return (
        f"{where}started {run.get('started', '?')}, took {run.get('seconds', '?')} s; "
        f"{points.get('computed', 0)} points computed, {points.get('reused', 0)} reused"
    )


def _no_points(data, section: dict[str, Any]) -> str:
    if data.missing_store:
        return "No results store was found, so the points this step used are not listed."
    if not (section["run"].get("points") or {}).get("computed") and not (
        section["run"].get("points") or {}
    ).get("reused"):
        return "This step evaluated no point (it trains, or reads weights only)."
    return "The results store holds no record of the points this step used."


def _title(data) -> str:
    for step in data.steps:
        study = step.run.get("study") or {}
        if study.get("name"):
            return f"{study['name']}: weightscape report"
    first = data.steps[0].run.get("command", "weightscape") if data.steps else "weightscape"
    return f"{first} in {Path(data.folder).name}: weightscape report"


def _short(value: Any) -> str:
    text = ", ".join(map(str, value)) if isinstance(value, list | tuple) else str(value)
    return text if len(text) <= 60 else "..." + text[-57:]


@lru_cache(maxsize=1)
def _environment():
    from jinja2 import Environment, PackageLoader, StrictUndefined

    return Environment(
        loader=PackageLoader("weightscape.report.html", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=False,
    )


def _asset(name: str) -> str:
    return (resources.files("weightscape.report.html") / "templates" / name).read_text("utf-8")


@lru_cache(maxsize=1)
def _plotly_js() -> str:
    """plotly.js as the pinned ``plotly`` package bundles it (no CDN)."""
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()
