"""A grid study's files: each matrix as a CSV and a heatmap sorted by the models' accuracy."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from weightscape.analyses.connectivity import ConnectivityGrid
from weightscape.report.figures import DISTANCE
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
# Colour-bar labels: the quantity and its unit.
VALUE_LABELS = {
    "loss_barrier": "loss barrier (nats)",
    "loss_convexity_gap": "loss convexity gap (nats)",
    "loss_auc": "loss AUC (nats x L2 distance)",
    "loss_auc_t": "loss AUC (nats x t)",
    "accuracy_drop": "accuracy drop (fraction correct)",
    "accuracy_convexity_gap": "accuracy convexity gap (fraction correct)",
    "euclidean": DISTANCE,
    "task_vector_cosine": "cosine similarity (-1 to 1)",
}
SIGNED = {"task_vector_cosine"}  # drawn with the diverging map, centred on 0


def write_grid_files(grid: ConnectivityGrid, out: str | Path) -> list[Path]:
    """Write every matrix of ``grid`` as ``NAME.csv`` and ``NAME.png`` into ``out``; return
    them with the grid's own ``grid.npz`` and ``grid.json`` (saved there by the study)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = [out / "grid.npz", out / "grid.json"]
    order = np.argsort(grid.endpoint_metrics["accuracy"])
    on_task = f" on {grid.task}" if grid.task else ""
    for name, matrix in grid.matrices.items():
        files.append(write_matrix_csv(matrix, grid.names, out / f"{name}.csv"))
        files.append(
            plot_heatmap(
                matrix,
                grid.names,
                out / f"{name}.png",
                title=f"{TITLES.get(name, name)} between model pairs" + on_task,
                order=order,
                sort_label=f"{grid.task} accuracy",
                value_label=VALUE_LABELS.get(name),
                signed=name in SIGNED,
            )
        )
    return files


def render_grid(grid: ConnectivityGrid, config) -> list[str]:
    """Write the grid's CSVs and heatmaps into ``config.out``; the lines the terminal shows."""
    files = write_grid_files(grid, config.out)
    s = grid.stats
    return [
        f"{s['models']} models, {s['pairs']} pairs x {s['points_per_path']} points: "
        f"{s['unique_points']} distinct points"
        + (
            f" ({s['forward_passes']} batched forward passes for those computed now)"
            if s.get("forward_passes") is not None
            else ""
        )
        + f", in {s['seconds']} s",
        f"wrote {config.out}: " + ", ".join(sorted(p.name for p in files)),
    ]
