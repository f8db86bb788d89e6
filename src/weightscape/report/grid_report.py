"""A grid study's files: each matrix as a CSV and a heatmap sorted by the models' accuracy."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from weightscape.analyses.connectivity import ConnectivityGrid
from weightscape.report.heatmaps import plot_heatmap, write_matrix_csv

TITLES = {
    "loss_barrier": "Loss barrier height",
    "loss_convexity_gap": "Loss convexity gap",
    "loss_auc": "Loss AUC per unit Euclidean distance (minimum subtracted)",
    "loss_auc_t": "Loss AUC per unit t (minimum subtracted)",
    "accuracy_drop": "Accuracy drop (barrier on accuracy)",
    "accuracy_convexity_gap": "Accuracy convexity gap",
    "euclidean": "Euclidean distance",
    "task_vector_cosine": "Cosine similarity of task vectors",
}


def write_grid_files(grid: ConnectivityGrid, out: str | Path) -> list[Path]:
    """Write every matrix of ``grid`` as ``NAME.csv`` and ``NAME.png`` into ``out``; return
    them with the grid's own ``grid.npz`` and ``grid.json`` (saved there by the study)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = [out / "grid.npz", out / "grid.json"]
    order = np.argsort(grid.endpoint_metrics["accuracy"])
    for name, matrix in grid.matrices.items():
        files.append(write_matrix_csv(matrix, grid.names, out / f"{name}.csv"))
        files.append(
            plot_heatmap(
                matrix,
                grid.names,
                out / f"{name}.png",
                title=TITLES.get(name, name),
                order=order,
                sort_label=f"{grid.task} accuracy",
            )
        )
    return files


def render_grid(grid: ConnectivityGrid, config) -> list[str]:
    """Write the grid's CSVs and heatmaps into ``config.out``; the lines the terminal shows."""
    files = write_grid_files(grid, config.out)
    s = grid.stats
    return [
        f"{s['models']} models, {s['pairs']} pairs x {s['points_per_path']} points: "
        f"{s['computed_points']} points computed ({s['forward_passes']} forward passes) of "
        f"{s['unique_points']} distinct, in {s['seconds']} s",
        f"wrote {config.out}: " + ", ".join(sorted(p.name for p in files)),
    ]
