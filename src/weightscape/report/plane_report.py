"""Contour plots of a metric over the plane through three models, and writing a plane to disk."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from weightscape.analyses.plane import PlaneResult
from weightscape.metrics import get_point_metric
from weightscape.report.figures import (
    FONT_MIN,
    SEQUENTIAL,
    colour,
    colourbar,
    finish,
    label_axes,
    metric_label,
    pyplot,
)
from weightscape.studies import plane

PLOTTED = ("loss", "accuracy")
# Better values show bright (each point metric declares its direction), so good regions look
# alike in every plot: lower loss, higher accuracy.


def write_plane(result: PlaneResult, out: str | Path) -> dict[str, Path]:
    """Write plane.npz, plane.json, plane_loss.png and plane_accuracy.png into ``out``.

    Returns:
        ``{"npz", "json", "loss", "accuracy"}`` -> the files' paths.
    """
    out = result.save(out)
    files = {"npz": out / "plane.npz", "json": out / "plane.json"}
    for metric in PLOTTED:
        files[metric] = plot_plane(result, metric, out / f"plane_{metric}.png")
    return files


def render_plane(result: PlaneResult, config: plane.Config) -> list[str]:
    """Write the plane's files into ``config.out`` (:func:`write_plane`); the terminal lines."""
    files = write_plane(result, config.out)
    own = result.model_metrics
    lines = [f"{'model':<24} {'x':>10} {'y':>10} {'loss':>9} {'acc':>7}"]
    for k, name in enumerate(result.names):
        x, y = result.model_xy[k]
        lines.append(
            f"{name:<24} {x:10.4g} {y:10.4g} {own['loss'][k]:9.4f} {own['accuracy'][k]:7.4f}"
        )
    s = result.stats
    lines.append(
        f"{s['resolution'][0]}x{s['resolution'][1]} grid + 3 models: {s['unique_points']} "
        f"distinct point(s), in {s['seconds']} s"
    )
    lines.append(f"wrote {config.out}: " + ", ".join(p.name for p in files.values()))
    return lines


def plot_plane(
    result: PlaneResult, metric: str, png: str | Path, *, title: str | None = None
) -> Path:
    """Filled contours of ``metric`` over the plane, the models marked, labelled and joined.

    Axes are the plane's orthonormal coordinates and drawn to equal scale, so distances and
    angles on the figure are those in weight space. Each model's label carries its own value.
    """
    plt = pyplot()

    surface = np.ma.masked_invalid(result.surfaces[metric])
    fig, ax = plt.subplots(figsize=(6.8, 5.6))
    filled = ax.contourf(result.xs, result.ys, surface, levels=20, cmap=_colormap(metric))
    ax.contour(result.xs, result.ys, surface, levels=filled.levels, colors="white", linewidths=0.3)
    colourbar(fig, filled, ax, metric_label(metric))
    ax.grid(False)
    _draw_models(ax, result, metric)
    ax.set_aspect("equal", adjustable="box")
    names = ", ".join(result.names)
    label_axes(
        ax,
        f"u: along {result.names[1]} - {result.names[0]} (weight space, L2)",
        f"v: orthogonal, toward {result.names[2]} (L2)",
        title or f"{metric.capitalize()} over the plane through {names}\non {result.task}",
    )
    return finish(fig, png)


def _draw_models(ax, result: PlaneResult, metric: str) -> None:
    xy = result.model_xy
    triangle = np.vstack([xy, xy[:1]])
    ax.plot(triangle[:, 0], triangle[:, 1], color="black", linewidth=0.9, linestyle="--")
    ax.scatter(xy[:, 0], xy[:, 1], color=colour(5), edgecolor="black", zorder=3, s=40)
    own = result.model_metrics.get(metric)
    for k, (name, (x, y)) in enumerate(zip(result.names, xy, strict=True)):
        label = name if own is None else f"{name}\n{own[k]:.4g}"
        ax.annotate(
            label,
            (x, y),
            xytext=(6, 6),
            textcoords="offset points",
            fontsize=FONT_MIN,
            bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "alpha": 0.8},
        )


def _colormap(metric: str) -> str:
    return SEQUENTIAL if get_point_metric(metric).higher_is_better else f"{SEQUENTIAL}_r"
