"""A region study's report: plots and the markdown summary, drawn from ``regions.json`` alone.

The study (:mod:`weightscape.studies.region`) runs the sections and saves what they measured
to ``regions.json``; nothing here evaluates anything.
"""

from __future__ import annotations

import json
from pathlib import Path

from weightscape.report.region_plots import (
    plot_extrapolation,
    plot_general_moves,
    plot_interpolation,
    plot_loss_distributions,
    plot_moves,
    region_markdown,
)


def render_region(result, config) -> list[str]:
    """Write the plots and ``regions.md`` next to the study's ``regions.json`` (in
    ``config.out``); the lines the terminal shows: PB per group, then the files."""
    plan = result.results.get("plan", {})
    planned = (
        f"points: {plan['to_evaluate']} evaluated ({plan['distinct']} distinct, "
        f"{plan['stored']} already stored)"
    )
    if getattr(config, "estimate_only", False):
        return [planned.replace("evaluated", "to evaluate"), f"wrote {result.path}"]
    files = write_region_report(result.path)
    lines = [planned] if plan else []
    lines += [
        f"{row['level']:<8} {row['group']:<18} PB(In,Ex)={row['pb_in_ex']:.3f} "
        f"PB(In',Ex)={row['pb_hull_ex']:.3f} PB(In',In)={row['pb_hull_in']:.3f}"
        for row in result.results.get("comparisons", [])
    ]
    lines.append(f"wrote {config.out}: " + ", ".join(p.name for p in files))
    return lines


def write_region_report(path: str | Path) -> list[Path]:
    """Plots and ``regions.md`` from a saved ``regions.json`` (nothing is evaluated)."""
    path = Path(path)
    out = path.parent
    results = json.loads(path.read_text())
    files = [path]
    if "comparisons" in results:
        files.append(plot_loss_distributions(results["comparisons"], out / "region-losses.png"))
    if "extrapolation" in results and results["extrapolation"]["curves"]:
        files.append(plot_extrapolation(results["extrapolation"], out / "region-extrapolation.png"))
    if results.get("moves"):
        files.append(plot_moves(results["moves"], out / "region-moves.png"))
    if "general_moves" in results:
        files.append(plot_general_moves(results["general_moves"], out / "region-moves-general.png"))
    if "interpolation" in results:
        files.append(plot_interpolation(results, out / "region-interpolation.png"))
    markdown = out / "regions.md"
    markdown.write_text(region_markdown(results))
    files.append(markdown)
    return files
