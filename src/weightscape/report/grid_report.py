"""A grid study: the connectivity grid plus weight-space distances, written with plots."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from weightscape.analyses.connectivity import ConnectivityGrid, connectivity_grid
from weightscape.analyses.weight_stats import cosine_similarities, euclidean_distances, gram_matrix
from weightscape.evaluation.engine import EngineSpec
from weightscape.models.checkpoint import Checkpoint
from weightscape.report.heatmaps import plot_heatmap, write_matrix_csv
from weightscape.runtime.executor import Executor
from weightscape.runtime.store import ResultStore

TITLES = {
    "loss_barrier": "Loss barrier height",
    "loss_convexity_gap": "Loss convexity gap",
    "loss_auc": "Loss AUC (minimum subtracted)",
    "accuracy_drop": "Accuracy drop (barrier on accuracy)",
    "accuracy_convexity_gap": "Accuracy convexity gap",
    "euclidean": "Euclidean distance",
    "task_vector_cosine": "Cosine similarity of task vectors",
}


def run_grid_study(
    spec: EngineSpec,
    out: str | Path,
    *,
    points: int = 11,
    store: ResultStore | None = None,
    executor: Executor | None = None,
    base: Checkpoint | None = None,
    progress: bool = False,
) -> tuple[ConnectivityGrid, list[Path]]:
    """Evaluate the grid, add Euclidean distances (and task-vector cosines when ``base`` is
    known, all streamed tensor by tensor), save arrays, CSVs and heatmaps into ``out``."""
    out = Path(out)
    grid = connectivity_grid(spec, points=points, store=store, executor=executor, progress=progress)
    add_weight_matrices(grid, list(spec.anchors), spec, base)
    files = [grid.save(out) / "grid.npz", out / "grid.json"]
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
                sort_label=f"{spec.task.name} accuracy",
            )
        )
    return grid, files


def add_weight_matrices(
    grid: ConnectivityGrid, anchors: list[Checkpoint], spec: EngineSpec, base: Checkpoint | None
) -> None:
    """Euclidean distances over the grid's space; with a base, cosines of task vectors over the
    tensors the base has (a new classification head has no pretrained counterpart)."""
    grid.matrices["euclidean"] = euclidean_distances(gram_matrix(anchors, spec.space))
    if base is not None:
        gram = gram_matrix(anchors, spec.space, base, skip_missing_in_base=True)
        cosines = cosine_similarities(gram)
        np.fill_diagonal(cosines, 1.0)
        grid.matrices["task_vector_cosine"] = cosines
