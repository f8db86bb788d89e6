"""Heatmaps and CSV files of N x N matrices, optionally sorted by a per-model metric."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from weightscape.outputs import atomic_path
from weightscape.report.figures import (
    DIVERGING,
    FONT_MIN,
    SEQUENTIAL,
    colourbar,
    drawn_from,
    figure_digest,
    finish,
    label_axes,
    pyplot,
    wrap,
)


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
    value_label: str | None = None,
    signed: bool = False,
) -> Path:
    """Draw ``matrix`` with rows and columns in ``order`` (e.g. sorted by HANS accuracy).

    ``boundaries`` are positions (in the sorted order) where cluster lines are drawn.
    ``value_label`` labels the colour bar (the quantity and its unit; default: the title).
    ``signed`` values (a cosine similarity) take the diverging map, centred on 0. Both axes are
    the models, by name, labelled with the order they are sorted in.

    A PNG already drawn from exactly these inputs by this code (its digest,
    :func:`~weightscape.report.figures.figure_digest`) is kept as it is, not drawn again: a
    rerun whose numbers did not change leaves the same bytes without paying for them.
    """
    order = np.arange(len(names)) if order is None else np.asarray(order)
    digest = figure_digest(
        f"{__name__}:plot_heatmap",
        np.asarray(matrix),
        [str(n) for n in names],
        title,
        [int(i) for i in order],
        sort_label,
        [int(b) for b in boundaries],
        value_label,
        bool(signed),
    )
    if drawn_from(png, digest):
        return Path(png)
    plt = pyplot()

    shown = matrix[np.ix_(order, order)]
    size = max(5.0, 0.28 * len(names) + 2.5)
    fig, ax = plt.subplots(figsize=(size + 1.2, size))
    if signed:
        finite = np.abs(shown[np.isfinite(shown)])
        limit = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
        image = ax.imshow(shown, cmap=DIVERGING, vmin=-limit, vmax=limit)
    else:
        image = ax.imshow(shown, cmap=SEQUENTIAL)
    colourbar(fig, image, ax, value_label or title)
    ax.grid(False)
    labels = [names[i] for i in order]
    ax.set_xticks(range(len(names)), labels, rotation=90, fontsize=FONT_MIN)
    ax.set_yticks(range(len(names)), labels, fontsize=FONT_MIN)
    axis = f"model, sorted by {sort_label}" if sort_label else "model"
    label_axes(ax, axis, axis, wrap(title, int(9 * size)))
    line = "black" if signed else "white"  # the diverging map is white at 0
    for b in boundaries:
        ax.axhline(b - 0.5, color=line, linewidth=1.2)
        ax.axvline(b - 0.5, color=line, linewidth=1.2)
    return finish(fig, png, digest=digest)
