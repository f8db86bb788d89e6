"""Heatmaps and CSV files of N x N matrices, optionally sorted by a per-model metric."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from weightscape.outputs import atomic_path
from weightscape.report.figures import finish, pyplot


def write_matrix_csv(matrix: np.ndarray, names: Sequence[str], path: str | Path) -> Path:
    """One row and one column per model, names in the header."""
    path = Path(path)
    with atomic_path(path) as partial, partial.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["", *names])
        for name, row in zip(names, matrix, strict=True):
            writer.writerow([name, *(f"{v:.6g}" for v in row)])
    return path


def plot_heatmap(
    matrix: np.ndarray,
    names: Sequence[str],
    png: str | Path,
    *,
    title: str,
    order: Sequence[int] | None = None,
    sort_label: str | None = None,
    boundaries: Sequence[int] = (),
) -> Path:
    """Draw ``matrix`` with rows and columns in ``order`` (e.g. sorted by HANS accuracy).

    ``boundaries`` are positions (in the sorted order) where cluster lines are drawn.
    """
    plt = pyplot()

    order = np.arange(len(names)) if order is None else np.asarray(order)
    shown = matrix[np.ix_(order, order)]
    size = max(4.0, 0.28 * len(names) + 2.5)
    fig, ax = plt.subplots(figsize=(size + 1.2, size))
    image = ax.imshow(shown, cmap="viridis")
    fig.colorbar(image, ax=ax, fraction=0.046)
    labels = [names[i] for i in order]
    ax.set_xticks(range(len(names)), labels, rotation=90, fontsize=7)
    ax.set_yticks(range(len(names)), labels, fontsize=7)
    for b in boundaries:
        ax.axhline(b - 0.5, color="white", linewidth=1.2)
        ax.axvline(b - 0.5, color="white", linewidth=1.2)
    ax.set_title(title + (f"\n(sorted by {sort_label})" if sort_label else ""), fontsize=10)
    return finish(fig, png)
