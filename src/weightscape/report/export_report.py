"""Rendering of ``weightscape export``: what the exported folder holds, as a file and as lines.

The study (:mod:`weightscape.studies.export`) writes the model; this module only adds
``export.json`` (the point: its kind, t and path, the run it came from, the anchors and their
coefficients) beside it and says in the terminal how to load it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from weightscape.outputs import write_json

EXPORT_FILE = "export.json"


def render_export(result: Any, config: Any) -> list[str]:
    """Write ``export.json`` into the exported folder; the lines the terminal shows."""
    folder = Path(result.folder.path)
    write_json(
        folder / EXPORT_FILE,
        {
            "point": result.point,
            "anchors": result.anchors,
            "coefficients": result.coefficients,
            "format": config.format,
        },
    )
    done = "kept the identical export in" if result.reused else "exported"
    return [
        f"{done} {folder}: {describe_point(result.point)}",
        coefficient_line(result.anchors, result.coefficients),
        f"load it with {loader(folder, config.format)}",
    ]


def coefficient_line(anchors: list[str], coefficients: Any) -> str:
    """The weights in one line; a learned mix by the range of its groups' first weight.

    >>> coefficient_line(["a", "b"], [0.25, 0.75])
    'coefficients: a 0.25, b 0.75'
    >>> mix = {"group_by": "layer", "groups": {"x": [0.2, 0.8], "y": [0.6, 0.4]}}
    >>> coefficient_line(["a", "b"], mix)
    'coefficients: 2 layer groups, 0.2 to 0.6 on a (the rest on b)'
    """
    if isinstance(coefficients, dict):
        firsts = [v[0] for v in coefficients["groups"].values()]
        return (
            f"coefficients: {len(firsts)} {coefficients['group_by']} groups, {min(firsts):.6g} "
            f"to {max(firsts):.6g} on {anchors[0]} (the rest on {anchors[-1]})"
        )
    pairs = zip(anchors, coefficients, strict=True)
    return "coefficients: " + ", ".join(f"{n} {c:.6g}" for n, c in pairs)


def describe_point(point: dict[str, Any]) -> str:
    """The point in words.

    >>> describe_point({"kind": "path", "path": "linear", "t": 0.5})
    't = 0.5 on the linear path'
    >>> describe_point({"kind": "from-run", "run": "out/i", "command": "interpolate",
    ...                 "path": "linear", "t": 0.3, "chosen": "best accuracy of the walk"})
    "t = 0.3 on the linear path of the interpolate run 'out/i' (best accuracy of the walk)"
    """
    kind = point["kind"]
    if kind == "centroid":
        return "the centroid of the anchors"
    if kind == "coefficients":
        return "the given coefficients"
    if "groups" in point:
        return f"the learned {point['mix']}-wise mix of the combine run '{point['run']}'"
    text = f"t = {point['t']:.6g} on the {point['path']} path"
    if kind == "from-run":
        text += f" of the {point['command']} run '{point['run']}'"
        if "chosen" in point:
            text += f" ({point['chosen']})"
    return text


def loader(folder: Path, format: str) -> str:
    """How to load the export: the class its ``config.json`` names (``architectures``), or
    peft's ``PeftModel`` over the base for an adapter folder."""
    import json

    if format == "peft":
        return f"PeftModel.from_pretrained(base_model, '{folder}')"
    config = folder / "config.json"
    names = json.loads(config.read_text()).get("architectures") if config.is_file() else None
    return f"{(names or ['AutoModel'])[0]}.from_pretrained('{folder}')"
