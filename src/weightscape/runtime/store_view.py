"""A tidy view of a results store: one flat row per point, with names instead of hashes.

A store keys points by content (``docs/store.md``); this joins each point's spec with the names
its anchors and task were last seen under, the commands of the runs that used it, and its
settings and metrics, into rows a data frame (or a CSV reader) takes as they are.

Every row says what kind of point it is (column ``kind``), decided from its spec alone, first
rule that holds:

- ``probe``: scored by the generalised loss (the spec's ``evaluation`` is ``probe``), whatever
  its coefficients: its loss is a fitted probe's, not the model's own head's;
- ``mix``: one coefficient vector per parameter group (a learned per-layer mix);
- ``endpoint``: one anchor with coefficient exactly 1 (an anchor itself);
- ``pair``: exactly two anchors with non-zero coefficients (a point on their line, inside or
  outside [0, 1]);
- ``combination``: anything else: three or more anchors, one anchor scaled by c != 1, or no
  anchor at all (terms that cancel: the origin).
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from weightscape.runtime.store import ResultStore

KINDS = ("endpoint", "pair", "combination", "mix", "probe")
HEAD = ("key", "kind", "commands")
MIDDLE = (
    "groups",
    "evaluation",
    "task",
    "task_fingerprint",
    "examples",
    "tokenizer",
    "space",
    "settings",
)
TAIL = ("seconds", "created")


def tidy_points(
    store: ResultStore,
    *,
    run: str | None = None,
    anchors: Iterable[str] = (),
    task: str | None = None,
    kind: str | None = None,
) -> list[dict[str, Any]]:
    """One flat dict per stored point, oldest first (columns: :func:`columns`).

    Args:
        store: The store to read (opened read-only or not; nothing is written).
        run: Only the points this run used (a provenance record's id).
        anchors: Only points whose anchors include every one of these names (or content hashes).
        task: Only points on this task (its name, or its fingerprint).
        kind: Only points of this kind (module docstring).
    """
    names = {r["hash"]: r["name"] for r in store.table("anchors")}
    tasks = {r["fingerprint"]: r for r in store.table("tasks")}
    commands = _commands_by_key(store)
    used = None if run is None else {u["key"] for u in uses_of(store, run)}
    wanted = set(anchors)
    rows = []
    for point in sorted(store.table("points"), key=lambda p: (p["created"], p["key"])):
        if used is not None and point["key"] not in used:
            continue
        row = tidy_row(point, names, tasks, commands.get(point["key"], ()))
        if kind is not None and row["kind"] != kind:
            continue
        if task is not None and task not in (row["task"], row["task_fingerprint"]):
            continue
        if wanted and not wanted <= {*anchor_names(row), *_anchor_hashes(row)}:
            continue
        rows.append(row)
    return rows


def tidy_row(
    point: dict[str, Any],
    names: dict[str, str],
    tasks: dict[str, dict[str, Any]],
    commands: Iterable[str] = (),
) -> dict[str, Any]:
    """The flat row of one ``points`` row, its anchors and task named by ``names`` and ``tasks``
    (a hash's first 12 characters stand for a name the store does not know)."""
    spec = json.loads(point["spec"])
    terms = spec.get("terms", [])
    grouped = isinstance(terms, dict)
    row: dict[str, Any] = {
        "key": point["key"],
        "kind": point_kind(spec),
        "commands": ";".join(sorted(set(commands))),
    }
    coefficients = _anchor_union(terms["groups"]) if grouped else _float_terms(terms)
    ordered = sorted(coefficients.items(), key=lambda hc: (_name(hc[0], names), hc[0]))
    for i, (content, coef) in enumerate(ordered, start=1):
        row[f"anchor_{i}"] = _name(content, names)
        row[f"hash_{i}"] = content
        row[f"coef_{i}"] = None if grouped else coef
    fingerprint = str(spec.get("task", ""))
    known = tasks.get(fingerprint)
    settings = spec.get("settings", {})
    row.update(
        groups=_groups_text(terms["groups"], names) if grouped else "",
        evaluation=spec.get("evaluation", "classification"),
        task=known["name"] if known else fingerprint[:12],
        task_fingerprint=fingerprint,
        examples=known["examples"] if known else None,
        tokenizer=spec.get("tokenizer", ""),
        space=json.dumps(spec["space"], sort_keys=True) if "space" in spec else "",
        settings=json.dumps(settings, sort_keys=True),
    )
    for name, value in sorted(settings.items()):
        if value is None or isinstance(value, str | int | float | bool):
            row[f"setting_{name}"] = value
    for name, value in json.loads(point["metrics"]).items():
        row[name if name not in row and name not in TAIL else f"metric_{name}"] = value
    row["seconds"] = point["seconds"]
    row["created"] = _iso(point["created"])
    return row


def point_kind(spec: dict[str, Any]) -> str:
    """The kind of the point a spec describes (module docstring)."""
    terms = spec.get("terms", [])
    if spec.get("evaluation") == "probe":
        return "probe"
    if isinstance(terms, dict):
        return "mix"
    if len(terms) == 1 and float.fromhex(terms[0][1]) == 1.0:
        return "endpoint"
    return "pair" if len(terms) == 2 else "combination"


def columns(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Every column of ``rows`` in a stable order: the point, its anchors (``anchor_1``,
    ``hash_1``, ``coef_1``, ...), what it was evaluated on, its settings, its metrics (as first
    seen), then ``seconds`` and ``created``."""
    width = max((_width(r) for r in rows), default=0)
    anchors = [f"{c}_{i}" for i in range(1, width + 1) for c in ("anchor", "hash", "coef")]
    fixed = [*HEAD, *anchors, *MIDDLE]
    settings = sorted({c for r in rows for c in r if c.startswith("setting_")})
    seen = {*fixed, *settings, *TAIL}
    metrics = list(dict.fromkeys(c for r in rows for c in r if c not in seen))
    return [*fixed, *settings, *metrics, *TAIL]


def group_points(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows summarised per group of points sharing anchors, task, settings and kind.

    Each group gives its ``anchors`` (names joined by ``+``), ``task``, ``kind``, ``settings``,
    ``count``, the smallest and largest coefficient any of its points gives any anchor
    (``coef_min``, ``coef_max``), and the mean, min and max of ``loss`` and ``accuracy``
    (None where no point has the metric).
    """
    groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        label = " + ".join(anchor_names(row)) or "(origin)"
        groups[(label, row["task"], row["kind"], row["settings"])].append(row)
    out = []
    for (label, task, kind, settings), members in sorted(groups.items()):
        coefs = [c for r in members for c in _coefficients(r)]
        summary: dict[str, Any] = {
            "anchors": label,
            "task": task,
            "kind": kind,
            "settings": settings,
            "count": len(members),
            "coef_min": min(coefs, default=None),
            "coef_max": max(coefs, default=None),
        }
        for metric in ("loss", "accuracy"):
            values = [r[metric] for r in members if _finite(r.get(metric))]
            summary[f"{metric}_mean"] = sum(values) / len(values) if values else None
            summary[f"{metric}_min"] = min(values, default=None)
            summary[f"{metric}_max"] = max(values, default=None)
        out.append(summary)
    return out


def uses_of(store: ResultStore, run: str) -> list[dict[str, Any]]:
    """The points ``run`` used: ``{"key", "computed"}`` each (computed: this run evaluated it,
    rather than reading it from the store), ordered by key."""
    uses = [u for u in store.table("uses") if u["run"] == run]
    return [{"key": u["key"], "computed": bool(u["computed"])} for u in sorted(uses, key=_key)]


def anchor_names(row: dict[str, Any]) -> list[str]:
    """The names of a tidy row's anchors, in column order."""
    return [row[f"anchor_{i}"] for i in range(1, _width(row) + 1)]


def _anchor_hashes(row: dict[str, Any]) -> list[str]:
    return [row[f"hash_{i}"] for i in range(1, _width(row) + 1)]


def _coefficients(row: dict[str, Any]) -> list[float]:
    if row["groups"]:
        return [c for terms in json.loads(row["groups"]).values() for _, c in terms]
    return [row[f"coef_{i}"] for i in range(1, _width(row) + 1)]


def _width(row: dict[str, Any]) -> int:
    n = 0
    while f"anchor_{n + 1}" in row:
        n += 1
    return n


def _commands_by_key(store: ResultStore) -> dict[str, set[str]]:
    command_of = {r["id"]: r["command"] for r in store.table("runs")}
    out: dict[str, set[str]] = defaultdict(set)
    for use in store.table("uses"):
        if use["run"] in command_of:
            out[use["key"]].add(command_of[use["run"]])
    return out


def _float_terms(terms: list[list[Any]]) -> dict[str, float]:
    return {content: float.fromhex(coef) for content, coef in terms}


def _anchor_union(groups: dict[str, list[list[Any]]]) -> dict[str, float | None]:
    return {content: None for terms in groups.values() for content, _ in terms}


def _groups_text(groups: dict[str, list[list[Any]]], names: dict[str, str]) -> str:
    named = {
        group: [[_name(content, names), float.fromhex(coef)] for content, coef in terms]
        for group, terms in sorted(groups.items())
    }
    return json.dumps(named)


def _name(content: str, names: dict[str, str]) -> str:
    return names.get(content) or content[:12]


def _iso(seconds: float) -> str:
    moment = _dt.datetime.fromtimestamp(seconds, _dt.timezone.utc)
    return moment.isoformat(timespec="seconds")


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def _key(use: dict[str, Any]) -> str:
    return use["key"]
