"""A basin study's files: tables, sorted heatmaps, margin scatters and per-cluster curves;
and a trajectory study's table and plot."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from weightscape.analyses.basins import BasinAnalysis
from weightscape.analyses.connectivity import ConnectivityGrid
from weightscape.analyses.trajectories import BasinTrajectory
from weightscape.report.basin_plots import (
    cluster_table_markdown,
    plot_cluster_curves,
    plot_margin_scatter,
    plot_trajectory,
)
from weightscape.report.heatmaps import plot_heatmap


def render_basins(result, config) -> list[str]:
    """Write ``basins.json``, ``clusters.csv``, ``clusters.md``, sorted heatmaps, margin
    scatters and per-cluster curves into ``config.out``; the lines the terminal shows.

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
    for metric, corr in analysis.correlations.items():
        r2 = analysis.regressions[metric]["r2"]
        lines.append(
            f"  {metric}: Pearson r {corr['pearson_r']:.3f} with the centroid margin, "
            f"membership R^2 {r2:.3f}"
        )
    lines.append(f"wrote {out}: " + ", ".join(sorted(p.name for p in files)))
    return lines


def render_trajectories(trajectory: BasinTrajectory, config) -> list[str]:
    """Write ``trajectory.json`` and ``trajectory.png`` into ``config.out`` (next to the
    study's ``grid-step-K`` folders); the run-by-step table the terminal shows."""
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "trajectory.json").write_text(json.dumps(trajectory.to_dict(), indent=1))
    plot_trajectory(trajectory, out / "trajectory.png")
    lines = ["run".ljust(24) + " ".join(f"{s:>6}" for s in trajectory.steps)]
    for run, row in zip(trajectory.runs, trajectory.labels, strict=True):
        lines.append(run.ljust(24) + " ".join(f"{v:>6}" for v in row))
    lines.append(f"wrote {out}: trajectory.json, trajectory.png, grid-step-*/")
    return lines


def _write(analysis: BasinAnalysis, grid: ConnectivityGrid, out: Path) -> list[Path]:
    files = [out / "basins.json", out / "clusters.csv", out / "clusters.md"]
    files[0].write_text(json.dumps(analysis.to_dict(), indent=1, default=float))
    with files[1].open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["model", "cluster", "margin", *analysis.model_metrics])
        for i, name in enumerate(analysis.names):
            writer.writerow(
                [
                    name,
                    int(analysis.labels[i]),
                    f"{analysis.margin[i]:.6g}",
                    *(f"{v[i]:.6g}" for v in analysis.model_metrics.values()),
                ]
            )
    files[2].write_text(cluster_table_markdown(analysis) + "\n")
    by_cluster = np.lexsort((analysis.margin, analysis.labels))
    boundaries = np.flatnonzero(np.diff(analysis.labels[by_cluster])) + 1
    matrix = grid.matrices[analysis.matrix]
    files.append(
        plot_heatmap(
            matrix,
            grid.names,
            out / f"{analysis.matrix}_by_cluster.png",
            title=analysis.matrix,
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
                title=analysis.matrix,
                order=analysis.order_by(metric),
                sort_label=metric,
            )
        )
        if metric in analysis.correlations:
            files.append(plot_margin_scatter(analysis, metric, out / f"margin_vs_{metric}.png"))
    files.append(plot_cluster_curves(analysis, grid, out / "cluster_curves.png"))
    return files
