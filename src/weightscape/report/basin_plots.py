"""Plots of a basin analysis: margin-vs-diagnostic scatters, per-cluster path curves, Juneja et
al.'s Fig. 1 (curves within and between the best and worst models), and the Markdown tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from weightscape.analyses.basins import BasinAnalysis
from weightscape.analyses.connectivity import ConnectivityGrid
from weightscape.report.figures import finish, pyplot

MARGIN_LABELS = {"spectral": "spectral embedding", "weights": "weight space"}


def plot_margin_scatter(
    analysis: BasinAnalysis, metric: str, png: str | Path, kind: str | None = None
) -> Path:
    """Centroid margin ||w - c_0|| - ||w - c_other|| against a per-model metric, least-squares
    fit and Pearson r in the title (Juneja et al.'s Fig. 3a); ``kind`` picks the margin
    (``spectral`` or ``weights``; default: the analysis's own)."""
    plt = pyplot()
    kind = kind or analysis.margin_kind
    x, y = analysis.margins.get(kind, analysis.margin), analysis.model_metrics[metric]
    fig, ax = plt.subplots(figsize=(5, 4))
    for cluster in range(analysis.k):
        mask = analysis.labels == cluster
        ax.scatter(x[mask], y[mask], label=f"cluster {cluster}", s=28)
    if np.ptp(x) > 0:
        slope, intercept = np.polyfit(x, y, 1)
        xs = np.linspace(x.min(), x.max(), 50)
        ax.plot(xs, slope * xs + intercept, color="black", linewidth=1)
    correlations = analysis.margin_correlations.get(kind, analysis.correlations)
    r = correlations.get(metric, {}).get("pearson_r", float("nan"))
    ax.set_xlabel(f"||w - c0|| - ||w - c_other|| ({MARGIN_LABELS.get(kind, kind)})")
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


def plot_extreme_groups(groups: dict, png: str | Path) -> Path:
    """Juneja et al.'s Fig. 1: mean (± std) loss and accuracy along the pairs within the top
    group, within the bottom group and between them, on the ID task and the diagnostic."""
    plt = pyplot()
    sources = {f"ID ({groups.get('id_task') or 'grid task'})": groups["curves"]["in_distribution"]}
    sources.update({f"diagnostic ({t})": c for t, c in groups["curves"]["diagnostics"].items()})
    metrics = [m for m in ("loss", "accuracy") if all(m in c for c in sources.values())]
    ts = np.asarray(groups["ts"])
    fig, axes = plt.subplots(
        len(metrics), 3, figsize=(11, 3.2 * len(metrics)), squeeze=False, sharex=True
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
                ax.plot(ts, mean, marker="o", markersize=3, label=source)
                ax.fill_between(ts, mean - std, mean + std, alpha=0.15)
                pairs = summary["pairs"]
            ax.set_title(f"{names[pair_type]} (N = {pairs} pairs)", fontsize=9)
            ax.set_ylabel(metric, fontsize=8)
            ax.grid(alpha=0.3)
            if row == len(metrics) - 1:
                ax.set_xlabel("t")
    labelled = [ax for ax in np.ravel(axes) if ax.get_legend_handles_labels()[0]]
    if labelled:  # a group of one model has no pairs: the legend goes where lines are
        labelled[0].legend(fontsize=7)
    fig.suptitle(
        f"{groups['k']} best and {groups['k']} worst models by {groups['by']}", fontsize=10
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
    fig, ax = plt.subplots(figsize=(1.2 + 0.9 * steps, 1.0 + 0.35 * runs))
    ax.imshow(trajectory.labels, cmap="tab10", vmin=0, vmax=9, aspect="auto")
    for (i, j), label in np.ndenumerate(trajectory.labels):
        ax.text(j, i, str(label), ha="center", va="center", fontsize=8, color="white")
    ax.set_xticks(range(steps), [str(s) for s in trajectory.steps])
    ax.set_yticks(range(runs), trajectory.runs, fontsize=8)
    ax.set_xlabel("training step")
    ax.set_title("Basin of each run over training", fontsize=10)
    return finish(fig, png)
