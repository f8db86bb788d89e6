"""Plots of a basin analysis: margin-vs-diagnostic scatters and per-cluster path curves."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from weightscape.analyses.basins import BasinAnalysis
from weightscape.analyses.connectivity import ConnectivityGrid
from weightscape.report.figures import finish, pyplot


def plot_margin_scatter(analysis: BasinAnalysis, metric: str, png: str | Path) -> Path:
    """Centroid margin ||w - c_0|| - ||w - c_other|| against a per-model metric, least-squares
    fit and Pearson r in the title (Juneja et al.'s Fig. 3a)."""
    plt = pyplot()
    x, y = analysis.margin, analysis.model_metrics[metric]
    fig, ax = plt.subplots(figsize=(5, 4))
    for cluster in range(analysis.k):
        mask = analysis.labels == cluster
        ax.scatter(x[mask], y[mask], label=f"cluster {cluster}", s=28)
    if np.ptp(x) > 0:
        slope, intercept = np.polyfit(x, y, 1)
        xs = np.linspace(x.min(), x.max(), 50)
        ax.plot(xs, slope * xs + intercept, color="black", linewidth=1)
    r = analysis.correlations.get(metric, {}).get("pearson_r", float("nan"))
    ax.set_xlabel("||w - c0|| - ||w - c_other||")
    ax.set_ylabel(metric.replace("_", " "), fontsize=8)
    ax.set_title(f"Pearson r = {r:.3f}", fontsize=10)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return finish(fig, png)


def plot_cluster_curves(
    analysis: BasinAnalysis, grid: ConnectivityGrid, png: str | Path, metric: str = "loss"
) -> Path:
    """Mean (and spread) of the interpolation curves within each cluster and between clusters."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 4))
    labels = analysis.labels
    n = len(labels)
    groups: dict[str, list[np.ndarray]] = {}
    for i in range(n):
        for j in range(i + 1, n):
            a, b = sorted((int(labels[i]), int(labels[j])))
            name = f"within {a}" if a == b else f"between {a} and {b}"
            groups.setdefault(name, []).append(grid.curves[metric][i, j])
    for name, curves in sorted(groups.items()):
        stack = np.vstack(curves)
        mean, std = stack.mean(0), stack.std(0)
        ax.plot(grid.ts, mean, label=f"{name} ({len(curves)} pairs)")
        ax.fill_between(grid.ts, mean - std, mean + std, alpha=0.15)
    ax.set_xlabel("t")
    ax.set_ylabel(f"{metric} on {grid.task or 'the grid task'}")
    ax.set_title("Interpolation curves by cluster (mean ± std)", fontsize=10)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return finish(fig, png)


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
    fig, ax = plt.subplots(figsize=(1.2 + 0.9 * steps, 1.0 + 0.35 * runs))
    ax.imshow(trajectory.labels, cmap="tab10", vmin=0, vmax=9, aspect="auto")
    for (i, j), label in np.ndenumerate(trajectory.labels):
        ax.text(j, i, str(label), ha="center", va="center", fontsize=8, color="white")
    ax.set_xticks(range(steps), [str(s) for s in trajectory.steps])
    ax.set_yticks(range(runs), trajectory.runs, fontsize=8)
    ax.set_xlabel("training step")
    ax.set_title("Basin of each run over training", fontsize=10)
    return finish(fig, png)
