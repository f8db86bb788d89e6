"""A basin study's files: tables, sorted heatmaps, margin scatters, per-cluster curves, the
epsilon-convexity check and Juneja et al.'s Fig. 1; and a trajectory study's table and plot."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from weightscape.analyses.basins import BasinAnalysis
from weightscape.analyses.connectivity import ConnectivityGrid
from weightscape.analyses.trajectories import BasinTrajectory
from weightscape.outputs import atomic_path, write_json, write_text
from weightscape.report.basin_plots import (
    cluster_table_markdown,
    convexity_markdown,
    plot_cluster_curves,
    plot_extreme_groups,
    plot_margin_scatter,
    plot_trajectory,
    separation_markdown,
)
from weightscape.report.grid_report import SIGNED, TITLES, VALUE_LABELS
from weightscape.report.heatmaps import plot_heatmap


def render_basins(result, config) -> list[str]:
    """Write ``basins.json``, ``clusters.csv``, ``clusters.md``, sorted heatmaps, margin
    scatters (both margins), per-cluster curves and, when measured, ``extreme_groups.json`` and
    ``extreme_groups.png`` (Juneja et al.'s Fig. 1) into ``config.out``; the lines the terminal
    shows.

    Args:
        result: The basins study's result (``analysis`` and ``grid``).
        config: The study's config (``out``).
    """
    analysis: BasinAnalysis = result.analysis
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    files = _write(analysis, result.grid, out)
    lines = [
        f"{analysis.k} clusters on {analysis.matrix} (delta {analysis.delta:.4g}): "
        + ", ".join(f"{n}={c}" for n, c in zip(analysis.names, analysis.labels, strict=True))
    ]
    other = [k for k in analysis.margin_correlations if k != analysis.margin_kind]
    for metric, corr in analysis.correlations.items():
        r2 = analysis.regressions[metric]["r2"]
        also = "".join(
            f", {analysis.margin_correlations[k][metric]['pearson_r']:.3f} with the {k} margin"
            for k in other
            if metric in analysis.margin_correlations[k]
        )
        lines.append(
            f"  {metric}: Pearson r {corr['pearson_r']:.3f} with the {analysis.margin_kind} "
            f"centroid margin{also}, membership R^2 {r2:.3f}"
        )
    lines += _convexity_lines(analysis)
    if "sharpness" in analysis.settings:
        record = analysis.settings["sharpness"]
        lines.append(
            f"sharpness ({record['preset']}): {record['steps']} steps, {record['mode']} mode, "
            f"{record['examples_used']} examples in batches of {record['batch_size']}"
        )
    if analysis.groups:
        groups = analysis.groups
        lines.append(
            f"Fig. 1 groups by {groups['by']}: top {', '.join(groups['top'])}; bottom "
            f"{', '.join(groups['bottom'])}"
        )
    lines.append(f"wrote {out}: " + ", ".join(sorted(p.name for p in files)))
    return lines


def _convexity_lines(analysis: BasinAnalysis) -> list[str]:
    lines = []
    for row in analysis.convexity:
        if row["size"] < 2:
            continue
        text = (
            f"  cluster {row['cluster']} ({row['size']} models): largest convexity gap "
            f"{row['max_convexity_gap']:.4g} ({' / '.join(row['max_gap_pair'])})"
        )
        if row["samples"]:
            text += (
                f"; Jensen gap over {row['samples']} convex combinations max "
                f"{row['jensen_gap_max']:.4g}, mean {row['jensen_gap_mean']:.4g}"
            )
        lines.append(text + f"; epsilon >= {row['epsilon']:.4g}")
    return lines


def render_trajectories(trajectory: BasinTrajectory, config) -> list[str]:
    """Write ``trajectory.json`` and ``trajectory.png`` into ``config.out`` (next to the
    study's ``grid-step-K`` folders); the run-by-step table the terminal shows."""
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "trajectory.json", trajectory.to_dict())
    plot_trajectory(trajectory, out / "trajectory.png")
    lines = ["run".ljust(24) + " ".join(f"{s:>6}" for s in trajectory.steps)]
    for run, row in zip(trajectory.runs, trajectory.labels, strict=True):
        lines.append(run.ljust(24) + " ".join(f"{v:>6}" for v in row))
    lines.append(f"wrote {out}: trajectory.json, trajectory.png, grid-step-*/")
    return lines


def _write(analysis: BasinAnalysis, grid: ConnectivityGrid, out: Path) -> list[Path]:
    files = [out / "basins.json", out / "clusters.csv", out / "clusters.md"]
    write_json(files[0], analysis.to_dict(), default=float)
    with atomic_path(files[1]) as partial, partial.open("w", newline="") as handle:
        writer = csv.writer(handle)
        kinds = list(analysis.margins)
        writer.writerow(
            ["model", "cluster", "margin", *(f"margin_{k}" for k in kinds), *analysis.model_metrics]
        )
        for i, name in enumerate(analysis.names):
            writer.writerow(
                [
                    name,
                    int(analysis.labels[i]),
                    f"{analysis.margin[i]:.6g}",
                    *(f"{analysis.margins[k][i]:.6g}" for k in kinds),
                    *(f"{v[i]:.6g}" for v in analysis.model_metrics.values()),
                ]
            )
    sections = [cluster_table_markdown(analysis)]
    if analysis.k > 1:
        sections.append(separation_markdown(analysis))
    if analysis.convexity:
        sections.append(convexity_markdown(analysis))
    write_text(files[2], "\n\n".join(sections) + "\n")
    by_cluster = np.lexsort((analysis.margin, analysis.labels))
    boundaries = np.flatnonzero(np.diff(analysis.labels[by_cluster])) + 1
    matrix = grid.matrices[analysis.matrix]
    shown = {
        "title": f"{TITLES.get(analysis.matrix, analysis.matrix)} between model pairs",
        "value_label": VALUE_LABELS.get(analysis.matrix),
        "signed": analysis.matrix in SIGNED,
    }
    files.append(
        plot_heatmap(
            matrix,
            grid.names,
            out / f"{analysis.matrix}_by_cluster.png",
            **shown,
            order=by_cluster,
            sort_label="cluster",
            boundaries=boundaries,
        )
    )
    for metric in analysis.model_metrics:
        files.append(
            plot_heatmap(
                matrix,
                grid.names,
                out / f"{analysis.matrix}_by_{metric}.png",
                **shown,
                order=analysis.order_by(metric),
                sort_label=metric,
            )
        )
        if metric in analysis.correlations:
            files.append(plot_margin_scatter(analysis, metric, out / f"margin_vs_{metric}.png"))
            for kind in analysis.margin_correlations:
                if kind != analysis.margin_kind:
                    png = out / f"margin_{kind}_vs_{metric}.png"
                    files.append(plot_margin_scatter(analysis, metric, png, kind=kind))
    files.append(plot_cluster_curves(analysis, grid, out / "cluster_curves.png"))
    if analysis.groups:
        files.append(out / "extreme_groups.json")
        write_json(files[-1], analysis.groups, default=float)
        files.append(plot_extreme_groups(analysis.groups, out / "extreme_groups.png"))
    return files
