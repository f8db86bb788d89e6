"""Plots and tables of a region study, drawn from its saved results only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from weightscape.outputs import md_cell
from weightscape.report.figures import (
    GENERALISED_LOSS,
    NEUTRAL,
    PALETTE,
    colour,
    finish,
    label_axes,
    plain_log_ticks,
    pyplot,
    wrap,
)

GROUPS = ("In", "In'", "Ex")
COLOURS = {"In": PALETTE[0], "In'": PALETTE[2], "Ex": PALETTE[5]}
RADIUS = "radius (in mean model-to-centroid distances)"
PROBE_ACCURACY = "accuracy (linear probe, fraction correct)"


def plot_loss_distributions(comparisons: list[dict[str, Any]], png: str | Path) -> Path:
    """Box plots of the In, In' and Ex generalised losses of every group (Gueta et al. Fig. 4)."""
    plt = pyplot()
    fig, axes = plt.subplots(
        1, len(comparisons), figsize=(max(6.4, 3.2 * len(comparisons)), 4.6), squeeze=False
    )
    for ax, row in zip(axes[0], comparisons, strict=True):
        box = ax.boxplot([row["losses"][g] for g in GROUPS], patch_artist=True)
        ax.set_xticks([1, 2, 3], ["In", "In'", "Ex" if row["level"] != "general" else "Rand"])
        for patch, group in zip(box["boxes"], GROUPS, strict=True):
            patch.set_facecolor(COLOURS[group])
            patch.set_alpha(0.6)
        title = wrap(f"{row['level']}: {row['group']}", 30)
        label_axes(ax, "set of models", wrap(GENERALISED_LOSS, 32), title)
    fig.suptitle(
        wrap(
            "Generalised loss of a group's models (In), of points in their hull (In') and of "
            "the models outside (Ex)",
            int(16 * fig.get_figwidth()),
        )
    )
    return finish(fig, png)


def plot_extrapolation(extrapolation: dict[str, Any], png: str | Path) -> Path:
    """Mean +- std loss along lines through two models, past both ends, per category (Gueta
    et al. §6.1, Figs. 5 and 12)."""
    plt = pyplot()
    summary = extrapolation["summary"]
    fig, axes = plt.subplots(
        1, len(summary), figsize=(max(6.4, 4.2 * len(summary)), 4.4), squeeze=False, sharey=True
    )
    t = np.array(extrapolation["t"])
    for ax, (category, entry) in zip(axes[0], summary.items(), strict=True):
        mean, std = np.array(entry["loss"]["mean"]), np.array(entry["loss"]["std"])
        ax.plot(t, mean, marker=".", color=colour(0), label=f"mean over {entry['n_pairs']} pairs")
        ax.fill_between(t, np.clip(mean - std, 1e-12, None), mean + std, color=colour(0), alpha=0.2)
        ax.set_xscale("symlog", linthresh=1.0)
        ax.axvspan(0, 1, color=NEUTRAL, alpha=0.15, label="between the models")
        ax.set_title(wrap(category, 40))
        ax.set_xlabel("t (0 and 1: the two models;\nsymlog scale)")
        ax.set_yscale("log")
        plain_log_ticks(ax, "x")
        plain_log_ticks(ax, "y")
    axes[0][0].set_ylabel(wrap(f"{GENERALISED_LOSS}, log scale", 36))
    axes[0][0].legend()
    fig.suptitle("Generalised loss along lines through two models, past both ends (mean ± std)")
    return finish(fig, png)


def plot_moves(records: list[dict[str, Any]], png: str | Path) -> Path:
    """Accuracy moving from each group's centroid, toward the pretrained model and along random
    directions, against the finetuned models' own accuracy (Gueta et al. Fig. 11)."""
    plt = pyplot()
    fig, axes = plt.subplots(
        1, len(records), figsize=(max(6.4, 4.2 * len(records)), 4.6), squeeze=False
    )
    for ax, record in zip(axes[0], records, strict=True):
        for i, (name, values) in enumerate(record["moves"].items()):
            style = ":" if name.startswith("random") else "-"
            ax.plot(
                record["radii"], values["accuracy"], style, marker=".", color=colour(i), label=name
            )
        mean = np.mean(record["models"]["accuracy"])
        ax.axhline(mean, color="black", ls="--", label="finetuned")
        label_axes(ax, wrap(RADIUS, 36), wrap(PROBE_ACCURACY, 32), wrap(record["group"], 36))
    axes[0][0].legend()
    fig.suptitle(
        wrap(
            "Accuracy moving from each group's centroid, against its finetuned models",
            int(16 * fig.get_figwidth()),
        )
    )
    return finish(fig, png)


def plot_general_moves(record: dict[str, Any], png: str | Path) -> Path:
    """Accuracy moving from the centroid of every model, against the source and non-source
    models, averaged over the datasets (+- std over them) (Gueta et al. App. F, Fig. 11b)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    radii = np.array(record["radii"])
    summary = record["summary"]
    drawn = 0
    for kind, entry in summary.items():
        mean, std = np.array(entry["accuracy"]["mean"]), np.array(entry["accuracy"]["std"])
        if kind in ("source", "non_source"):
            ink = "black" if kind == "source" else NEUTRAL
            ax.axhline(float(mean), ls="--", color=ink, label=kind)
        elif not kind[-1].isdigit():  # each random direction is in 'random', their mean
            ax.plot(radii, mean, marker=".", color=colour(drawn), label=kind)
            ax.fill_between(radii, mean - std, mean + std, color=colour(drawn), alpha=0.2)
            drawn += 1
    label_axes(
        ax,
        RADIUS,
        f"{PROBE_ACCURACY},\nmean over datasets",
        "Accuracy moving from the centroid of every model\n(mean ± std over datasets)",
    )
    ax.legend()
    return finish(fig, png)


def plot_interpolation(results: dict[str, Any], png: str | Path) -> Path:
    """Mean +- std loss over pairs per category, for models and for group centroids."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2), sharey=True)
    for ax, key in zip(axes, ("interpolation", "centroid_interpolation"), strict=True):
        part = results[key]
        t = np.array(part["t"])
        for i, (category, entry) in enumerate(part["summary"].items()):
            mean, std = np.array(entry["loss"]["mean"]), np.array(entry["loss"]["std"])
            label = f"{category} ({entry['n_pairs']} pairs)"
            ax.plot(t, mean, marker=".", color=colour(i), label=label)
            ax.fill_between(t, mean - std, mean + std, color=colour(i), alpha=0.2)
        ax.set_title("between model pairs" if key == "interpolation" else "between group centroids")
        ax.set_xlabel("t (0: the target's own model)")
    axes[0].set_ylabel(f"{GENERALISED_LOSS}\non the target")
    axes[0].legend()
    fig.suptitle("Generalised loss along lines between models, by category (mean ± std)")
    return finish(fig, png)


def region_markdown(results: dict[str, Any]) -> str:
    """The study's tables: PB per group, extrapolation, moves and interpolation summaries."""
    lines = ["# Region study", ""]
    if "comparisons" in results:
        lines += [
            "## PB: In vs Ex, In' vs Ex, In' vs In (generalised loss)",
            "",
            "| level | group | In | In' | Ex | PB(In,Ex) | PB(In',Ex) | PB(In',In) "
            "| loss In | loss In' | loss Ex | acc In | acc In' | acc Ex |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in results["comparisons"]:
            loss, acc = r["loss"], r["accuracy"]
            lines.append(
                f"| {md_cell(r['level'])} | {md_cell(r['group'])} "
                f"| {r['n_in']} | {r['n_hull']} | {r['n_ex']} "
                f"| {r['pb_in_ex']:.3f} | {r['pb_hull_ex']:.3f} | {r['pb_hull_in']:.3f} "
                + " ".join(f"| {loss[g]['mean']:.3f}" for g in GROUPS)
                + " "
                + " ".join(f"| {acc[g]['mean']:.3f}" for g in GROUPS)
                + " |"
            )
        lines.append("")
    if "extrapolation" in results:
        part = results["extrapolation"]
        lines += [
            f"## Extrapolation ({part['pairs']} pairs, {part['targets']} targets): mean (std) "
            "accuracy at t",
            "",
        ]
        lines += _curve_table(part["t"], part["summary"], "accuracy")
        lines += [f"Loss at t: {_mean_row(part, 'loss')}", ""]
    if "moves" in results:
        lines += ["## Moves from the centroid (accuracy at radius)", ""]
        for record in results["moves"]:
            own = np.mean(record["models"]["accuracy"])
            lines.append(f"**{record['group']}** (finetuned models: {own:.3f})")
            lines.append("")
            lines.append("| direction | " + " | ".join(f"{r:g}" for r in record["radii"]) + " |")
            lines.append("|---|" + "---|" * len(record["radii"]))
            for name, values in record["moves"].items():
                lines.append(
                    f"| {md_cell(name)} | "
                    + " | ".join(f"{v:.3f}" for v in values["accuracy"])
                    + " |"
                )
            lines.append("")
    if "general_moves" in results:
        record = results["general_moves"]
        lines += [
            "## Moves from the centroid of every model, on each dataset (App. F): mean (std) "
            f"accuracy over {len(record['targets'])} datasets",
            "",
            "| kind | " + " | ".join(f"r = {r:g}" for r in record["radii"]) + " |",
            "|---|" + "---|" * len(record["radii"]),
        ]
        for kind, entry in record["summary"].items():
            mean, std = (
                np.atleast_1d(entry["accuracy"]["mean"]),
                np.atleast_1d(entry["accuracy"]["std"]),
            )
            cells = [f"{m:.3f} ({d:.3f})" for m, d in zip(mean, std, strict=True)]
            if len(cells) == 1:
                cells = cells * len(record["radii"])
            lines.append(f"| {md_cell(kind)} | " + " | ".join(cells) + " |")
        lines.append("")
    for key, title in (
        ("interpolation", "Interpolation across data (model pairs)"),
        ("centroid_interpolation", "Interpolation between group centroids"),
    ):
        if key in results:
            part = results[key]
            for metric in ("loss", "accuracy"):
                lines += [f"## {title}: mean (std) {metric} at t", ""]
                lines += _curve_table(part["t"], part["summary"], metric)
    return "\n".join(lines)


def _curve_table(t: list[float], summary: dict[str, Any], metric: str) -> list[str]:
    """Rows of mean (std) ``metric`` at each t, one per category."""
    lines = ["| category | pairs | curves | " + " | ".join(f"{x:g}" for x in t) + " |"]
    lines += ["|---|---|---|" + "---|" * len(t)]
    for category, e in summary.items():
        cells = [
            f"{m:.3f} ({s:.3f})" for m, s in zip(e[metric]["mean"], e[metric]["std"], strict=True)
        ]
        counts = f"{e['n_pairs']} | {e['n_curves']}"
        lines.append(f"| {md_cell(category)} | {counts} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def _mean_row(part: dict[str, Any], metric: str) -> str:
    """Each category's mean ``metric`` along t, compactly."""
    return "; ".join(
        f"{category} " + ", ".join(f"{v:.3g}" for v in e[metric]["mean"])
        for category, e in part["summary"].items()
    )
