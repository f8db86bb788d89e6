"""A region study: PB at three granularities, edges and interpolation across data, with plots.

:func:`run_region_study` runs the chosen sections of a :class:`RegionStudy`, saves everything
they measured to ``regions.json`` (written after each section, so an interrupted study keeps
what it finished, and the store makes a rerun skip every evaluated point), then draws the plots
and the markdown summary from that file alone (:func:`write_region_report`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from weightscape.analyses.region_edges import RADII, centroid_moves, extrapolation_curves
from weightscape.analyses.region_paths import centroid_interpolation, interpolation_across_data
from weightscape.analyses.region_pb import LEVELS, region_comparisons
from weightscape.analyses.regions import RegionStudy
from weightscape.errors import unknown_name_error
from weightscape.report.region_plots import (
    plot_extrapolation,
    plot_interpolation,
    plot_loss_distributions,
    plot_moves,
    region_markdown,
)

SECTIONS = ("pb", "edges", "paths")


def run_region_study(
    study: RegionStudy,
    out: str | Path,
    *,
    sections: Sequence[str] = SECTIONS,
    hull_size: int = 10,
    levels: Sequence[str] = LEVELS,
    radii: Sequence[float] = RADII,
    extrapolation_steps: int = 6,
    reach: float = 32.0,
    max_pairs: int = 6,
) -> tuple[dict[str, Any], list[Path]]:
    """Run ``sections`` of the study; returns the results and the files written."""
    for section in sections:
        if section not in SECTIONS:
            raise unknown_name_error("section", section, SECTIONS)
    for level in levels:
        if level not in LEVELS:
            raise unknown_name_error("level", level, LEVELS)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"settings": _settings(study, hull_size, radii, max_pairs)}
    steps = {
        "pb": lambda: {"comparisons": region_comparisons(study, hull_size, levels)},
        "edges": lambda: {
            "extrapolation": extrapolation_curves(study, extrapolation_steps, reach),
            "moves": centroid_moves(study, radii),
        },
        "paths": lambda: {
            "interpolation": interpolation_across_data(study, max_pairs=max_pairs),
            "centroid_interpolation": centroid_interpolation(study),
        },
    }
    for section in sections:
        start = time.perf_counter()
        results.update(steps[section]())
        results.setdefault("seconds", {})[section] = round(time.perf_counter() - start, 1)
        _save(results, out / "regions.json")
    return results, write_region_report(out / "regions.json")


def write_region_report(path: str | Path) -> list[Path]:
    """Plots and ``regions.md`` from a saved ``regions.json`` (nothing is evaluated)."""
    path = Path(path)
    out = path.parent
    results = json.loads(path.read_text())
    files = [path]
    if "comparisons" in results:
        files.append(plot_loss_distributions(results["comparisons"], out / "region-losses.png"))
    if "extrapolation" in results:
        files.append(plot_extrapolation(results["extrapolation"], out / "region-extrapolation.png"))
        files.append(plot_moves(results["moves"], out / "region-moves.png"))
    if "interpolation" in results:
        files.append(plot_interpolation(results, out / "region-interpolation.png"))
    markdown = out / "regions.md"
    markdown.write_text(region_markdown(results))
    files.append(markdown)
    return files


def _settings(study: RegionStudy, hull_size: int, radii, max_pairs: int) -> dict[str, Any]:
    first = next(iter(study.targets.values()))
    return {
        "models": [m.name for m in study.models],
        "groups": {g: [study.models[i].name for i in m] for g, m in study.groups.items()},
        "families": {f: [study.models[i].name for i in m] for f, m in study.families.items()},
        "targets": sorted(study.targets),
        "probe_train_examples": len(first.train),
        "probe_test_examples": len(first.test),
        "probe": {"c": study.probe.c, "max_iter": study.probe.max_iter},
        "eval": {"batch_size": study.settings.batch_size, "max_length": study.settings.max_length},
        "space": study.space.describe(),
        "random_directions": study.random_directions,
        "seed": study.seed,
        "hull_size": hull_size,
        "radii": list(radii),
        "max_pairs": max_pairs,
    }


def _save(results: dict[str, Any], path: Path) -> None:
    partial = path.with_suffix(".json.partial")
    partial.write_text(json.dumps(results, indent=1))
    partial.replace(path)  # atomic: a killed study never leaves half a file
