"""A basin study: cluster a grid, measure diagnostics per model, write tables and plots."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from weightscape.analyses.basins import BasinAnalysis, analyse_basins
from weightscape.analyses.connectivity import ConnectivityGrid
from weightscape.analyses.model_metrics import evaluate_models, models_sharpness, spec_for
from weightscape.data import Task
from weightscape.evaluation.engine import EngineSpec
from weightscape.report.basin_plots import (
    cluster_table_markdown,
    plot_cluster_curves,
    plot_margin_scatter,
)
from weightscape.report.heatmaps import plot_heatmap
from weightscape.runtime.executor import Executor
from weightscape.runtime.store import ResultStore


def run_basin_study(
    grid: ConnectivityGrid,
    spec: EngineSpec,
    out: str | Path,
    *,
    diagnostics: Sequence[Task] = (),
    label_map: str | None = None,
    matrix: str = "loss_convexity_gap",
    k: int | None = None,
    delta: float | None = None,
    sharpness_task: Task | None = None,
    sharpness_steps: int = 0,
    store: ResultStore | None = None,
    executor: Executor | None = None,
    progress: bool = False,
) -> tuple[BasinAnalysis, list[Path]]:
    """Evaluate each model on each diagnostic task (through the store), optionally measure its
    epsilon-sharpness, cluster the grid, and write ``basins.json``, ``clusters.csv``,
    ``clusters.md``, sorted heatmaps, margin scatters and per-cluster curves into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    metrics: dict[str, np.ndarray] = {}
    for task in diagnostics:
        values = evaluate_models(
            spec_for(spec, task, label_map), store=store, executor=executor, progress=progress
        )
        metrics[f"{task.name}_accuracy"] = values["accuracy"]
    if sharpness_steps > 0:
        metrics["sharpness"] = models_sharpness(
            spec_for(spec, sharpness_task or spec.task), steps=sharpness_steps, progress=progress
        )
    analysis = analyse_basins(
        grid,
        list(spec.anchors),
        matrix=matrix,
        k=k,
        delta=delta,
        space=spec.space,
        model_metrics=metrics,
    )
    return analysis, _write(analysis, grid, out)


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
