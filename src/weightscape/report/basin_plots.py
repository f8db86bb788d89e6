"""Plots of a basin analysis: margin-vs-diagnostic scatters, per-cluster path curves, Juneja et
al.'s Fig. 1 (curves within and between the best and worst models), and the Markdown tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from weightscape.analyses.basins import BasinAnalysis
from weightscape.analyses.connectivity import ConnectivityGrid
from weightscape.report.figures import (
    FONT_MIN,
    STEP,
    T_AXIS,
    categorical_cmap,
    colour,
    finish,
    label_axes,
    metric_label,
    pyplot,
    text_colour_on,
)

MARGIN_LABELS = {
    "spectral": "spectral embedding, unitless",
    "weights": "weight space, L2 distance",
}


def plot_margin_scatter(
    analysis: BasinAnalysis, metric: str, png: str | Path, kind: str | None = None
) -> Path:
    """Centroid margin ||w - c_0|| - ||w - c_other|| against a per-model metric, least-squares
    fit and Pearson r in the title (Juneja et al.'s Fig. 3a); ``kind`` picks the margin
    (``spectral`` or ``weights``; default: the analysis's own)."""
    plt = pyplot()
    kind = kind or analysis.margin_kind
    x, y = analysis.margins.get(kind, analysis.margin), analysis.model_metrics[metric]
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    for cluster in range(analysis.k):
        mask = analysis.labels == cluster
        ax.scatter(x[mask], y[mask], label=f"cluster {cluster}", s=28, color=colour(cluster))
    if np.ptp(x) > 0:
        slope, intercept = np.polyfit(x, y, 1)
        xs = np.linspace(x.min(), x.max(), 50)
        ax.plot(xs, slope * xs + intercept, color="black", linewidth=1, label="least-squares fit")
    correlations = analysis.margin_correlations.get(kind, analysis.correlations)
    r = correlations.get(metric, {}).get("pearson_r", float("nan"))
    label_axes(
        ax,
        f"centroid margin ||w - c0|| - ||w - c_other||\n({MARGIN_LABELS.get(kind, kind)})",
        metric_label(metric),
        f"{metric.replace('_', ' ')} against the centroid margin (Pearson r = {r:.3f})",
    )
    ax.legend()
    return finish(fig, png)


def plot_cluster_curves(
    analysis: BasinAnalysis, grid: ConnectivityGrid, png: str | Path, metric: str = "loss"
) -> Path:
    """Mean (and spread) of the interpolation curves within each cluster and between clusters."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    labels = analysis.labels
    n = len(labels)
    groups: dict[str, list[np.ndarray]] = {}
    for i in range(n):
        for j in range(i + 1, n):
            a, b = sorted((int(labels[i]), int(labels[j])))
            name = f"within {a}" if a == b else f"between {a} and {b}"
            groups.setdefault(name, []).append(grid.curves[metric][i, j])
    for i, (name, curves) in enumerate(sorted(groups.items())):
        stack = np.vstack(curves)
        mean, std = stack.mean(0), stack.std(0)
        ax.plot(grid.ts, mean, color=colour(i), label=f"{name} ({len(curves)} pairs)")
        ax.fill_between(grid.ts, mean - std, mean + std, color=colour(i), alpha=0.15)
    label_axes(
        ax,
        T_AXIS,
        metric_label(metric),
        f"Linear paths within and between clusters on {grid.task or 'the grid task'}\n"
        "(mean ± std over pairs)",
    )
    ax.legend()
    return finish(fig, png)


def plot_extreme_groups(groups: dict, png: str | Path) -> Path:
    """Juneja et al.'s Fig. 1: mean (± std) loss and accuracy along the pairs within the top
    group, within the bottom group and between them, on the ID task and the diagnostic."""
    plt = pyplot()
    sources = {f"ID ({groups.get('id_task') or 'grid task'})": groups["curves"]["in_distribution"]}
    sources.update({f"diagnostic ({t})": c for t, c in groups["curves"]["diagnostics"].items()})
    metrics = [m for m in ("loss", "accuracy") if all(m in c for c in sources.values())]
    ts = np.asarray(groups["ts"])
    fig, axes = plt.subplots(
        len(metrics), 3, figsize=(11, 3.4 * len(metrics)), squeeze=False, sharex=True
    )
    names = {"gen-gen": "top-top", "heur-heur": "bottom-bottom", "gen-heur": "top-to-bottom"}
    for row, metric in enumerate(metrics):
        for col, pair_type in enumerate(names):
            ax = axes[row][col]
            pairs = 0
            for source, curves in sources.items():
                summary = curves[metric][pair_type]
                if summary["mean"] is None:
                    continue
                mean, std = np.asarray(summary["mean"]), np.asarray(summary["std"])
                i = list(sources).index(source)
                ax.plot(ts, mean, marker="o", markersize=3, color=colour(i), label=source)
                ax.fill_between(ts, mean - std, mean + std, color=colour(i), alpha=0.15)
                pairs = summary["pairs"]
            ax.set_title(f"{names[pair_type]} (N = {pairs} pairs)")
            ax.set_ylabel(metric_label(metric))
            if row == len(metrics) - 1:
                ax.set_xlabel(T_AXIS)
    labelled = [ax for ax in np.ravel(axes) if ax.get_legend_handles_labels()[0]]
    if labelled:  # a group of one model has no pairs: the legend goes where lines are
        labelled[0].legend()
    fig.suptitle(
        f"Linear paths among the {groups['k']} best and {groups['k']} worst models by "
        f"{groups['by']} (mean ± std over pairs)"
    )
    return finish(fig, png)


def separation_markdown(analysis: BasinAnalysis) -> str:
    """Juneja et al.'s Table 1 statistics of each cluster against C1 (the larger cluster)."""
    metrics = list(analysis.model_metrics)
    c1 = next((row["cluster"] for row in analysis.table if row.get("c1")), None)
    lines = [
        f"Separation from C1 = cluster {c1} (the largest; the first of equal ones): "
        "(mu_C1 - mu_C2) / sigma_C1 ; "
        "(mu_C1 - max_C2) / sigma_C1, sigma with ddof 0 (Juneja et al., Table 1)",
        "",
        "| cluster | " + " | ".join(metrics) + " |",
        "|---|" + "---|" * len(metrics),
    ]
    for row in analysis.table:
        if row.get("c1"):
            continue
        cells = [
            f"{row['separation'][m]['mean']:.2f} ; {row['separation'][m]['max']:.2f}"
            for m in metrics
        ]
        lines.append(f"| {row['cluster']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def convexity_markdown(analysis: BasinAnalysis) -> str:
    """Per cluster: the largest convexity gap inside it and the Jensen gaps of random convex
    combinations of its models (Juneja et al.'s epsilon-convex basins)."""
    lines = [
        "| cluster | size | largest convexity gap (pair) | combinations | Jensen gap max | "
        "Jensen gap mean | epsilon >= |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in analysis.convexity:
        pair = " / ".join(row["max_gap_pair"]) if row["max_gap_pair"] else "-"
        jensen = (
            [f"{row['jensen_gap_max']:.4g}", f"{row['jensen_gap_mean']:.4g}"]
            if row["samples"]
            else ["-", "-"]
        )
        lines.append(
            f"| {row['cluster']} | {row['size']} | {row['max_convexity_gap']:.4g} ({pair}) | "
            f"{row['samples']} | {jensen[0]} | {jensen[1]} | {row['epsilon']:.4g} |"
        )
    return "\n".join(lines)


def cluster_table_markdown(analysis: BasinAnalysis) -> str:
    """Per-cluster mean ± std (overlap) of each metric, as a Markdown table."""
    metrics = list(analysis.model_metrics)
    lines = [
        "| cluster | size | " + " | ".join(metrics) + " |",
        "|---|---|" + "---|" * len(metrics),
    ]
    for row in analysis.table:
        cells = []
        for m in metrics:
            s = row["metrics"][m]
            cells.append(f"{s['mean']:.4f} ± {s['std']:.4f} (overlap {s['overlap']:.2f})")
        lines.append(f"| {row['cluster']} | {row['size']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_trajectory(trajectory, png: str | Path) -> Path:
    """Runs (rows) by training steps (columns), coloured by basin."""
    plt = pyplot()
    runs, steps = len(trajectory.runs), len(trajectory.steps)
    fig, ax = plt.subplots(figsize=(max(5.0, 2.0 + 0.9 * steps), 1.6 + 0.35 * runs))
    cmap = categorical_cmap()
    labels = np.asarray(trajectory.labels)
    # One palette colour per basin number (cycling past the palette's length).
    ax.imshow(labels % cmap.N, cmap=cmap, vmin=-0.5, vmax=cmap.N - 0.5, aspect="auto")
    ax.grid(False)
    for (i, j), label in np.ndenumerate(labels):
        ink = text_colour_on(cmap(int(label) % cmap.N))
        ax.text(j, i, str(label), ha="center", va="center", fontsize=FONT_MIN + 1, color=ink)
    ax.set_xticks(range(steps), [str(s) for s in trajectory.steps])
    ax.set_yticks(range(runs), trajectory.runs)
    label_axes(ax, STEP, "run", "Basin (cluster number) of each run over training")
    return finish(fig, png)
