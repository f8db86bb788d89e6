"""Plots and tables of a region study, drawn from its saved results only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from weightscape.report.figures import finish, pyplot

GROUPS = ("In", "In'", "Ex")
COLOURS = {"In": "tab:blue", "In'": "tab:green", "Ex": "tab:red"}


def plot_loss_distributions(comparisons: list[dict[str, Any]], png: str | Path) -> Path:
    """Box plots of the In, In' and Ex generalised losses of every group (Gueta et al. Fig. 4)."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(comparisons), figsize=(2.6 * len(comparisons), 3.4))
    for ax, row in zip(np.atleast_1d(axes), comparisons, strict=True):
        box = ax.boxplot([row["losses"][g] for g in GROUPS], patch_artist=True)
        ax.set_xticks([1, 2, 3], ["In", "In'", "Ex" if row["level"] != "general" else "Rand"])
        for patch, group in zip(box["boxes"], GROUPS, strict=True):
            patch.set_facecolor(COLOURS[group])
            patch.set_alpha(0.5)
        ax.set_title(f"{row['level']}: {row['group']}", fontsize=9)
        ax.set_ylabel("generalised loss")
    return finish(fig, png)


def plot_extrapolation(curves: list[dict[str, Any]], png: str | Path) -> Path:
    """Loss along the line through two models, past both ends (Gueta et al. §6)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for curve in curves:
        ax.plot(curve["t"], curve["loss"], marker=".", label=curve["group"])
    ax.set_xscale("symlog", linthresh=1.0)
    ax.axvspan(0, 1, color="grey", alpha=0.15, label="between the models")
    ax.set_xlabel("t (0 and 1: the two models)")
    ax.set_ylabel("generalised loss")
    ax.set_yscale("log")
    ax.legend(fontsize=7)
    return finish(fig, png)


def plot_moves(records: list[dict[str, Any]], png: str | Path) -> Path:
    """Accuracy moving from each group's centroid, toward the pretrained model and along random
    directions, against the finetuned models' own accuracy (Gueta et al. Fig. 11)."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(records), figsize=(3.2 * len(records), 3.2), squeeze=False)
    for ax, record in zip(axes[0], records, strict=True):
        for name, values in record["moves"].items():
            style = "-" if name == "pretrained" else ":"
            ax.plot(record["radii"], values["accuracy"], style, marker=".", label=name)
        ax.axhline(np.mean(record["models"]["accuracy"]), color="k", ls="--", label="finetuned")
        ax.set_title(record["group"], fontsize=9)
        ax.set_xlabel("radius (mean model-centroid distances)")
        ax.set_ylabel("accuracy (linear probe)")
    axes[0][0].legend(fontsize=7)
    return finish(fig, png)


def plot_interpolation(results: dict[str, Any], png: str | Path) -> Path:
    """Mean +- std loss over pairs per category, for models and for group centroids."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), sharey=True)
    for ax, key in zip(axes, ("interpolation", "centroid_interpolation"), strict=True):
        part = results[key]
        t = np.array(part["t"])
        for category, entry in part["summary"].items():
            mean, std = np.array(entry["loss"]["mean"]), np.array(entry["loss"]["std"])
            ax.plot(t, mean, marker=".", label=f"{category} ({entry['n_curves']})")
            ax.fill_between(t, mean - std, mean + std, alpha=0.2)
        ax.set_title("model pairs" if key == "interpolation" else "group centroids", fontsize=9)
        ax.set_xlabel("t (0: the target's own model)")
    axes[0].set_ylabel("generalised loss on the target")
    axes[0].legend(fontsize=7)
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
                f"| {r['level']} | {r['group']} | {r['n_in']} | {r['n_hull']} | {r['n_ex']} "
                f"| {r['pb_in_ex']:.3f} | {r['pb_hull_ex']:.3f} | {r['pb_hull_in']:.3f} "
                + " ".join(f"| {loss[g]['mean']:.3f}" for g in GROUPS)
                + " "
                + " ".join(f"| {acc[g]['mean']:.3f}" for g in GROUPS)
                + " |"
            )
        lines.append("")
    if "extrapolation" in results:
        lines += ["## Extrapolation (loss at t)", ""]
        t = results["extrapolation"][0]["t"] if results["extrapolation"] else []
        lines += ["| group | " + " | ".join(f"{x:g}" for x in t) + " |"]
        lines += ["|---|" + "---|" * len(t)]
        for c in results["extrapolation"]:
            lines.append(f"| {c['group']} | " + " | ".join(f"{v:.3g}" for v in c["loss"]) + " |")
        lines += ["", "## Moves from the centroid (accuracy at radius)", ""]
        for record in results["moves"]:
            own = np.mean(record["models"]["accuracy"])
            lines.append(f"**{record['group']}** (finetuned models: {own:.3f})")
            lines.append("")
            lines.append("| direction | " + " | ".join(f"{r:g}" for r in record["radii"]) + " |")
            lines.append("|---|" + "---|" * len(record["radii"]))
            for name, values in record["moves"].items():
                lines.append(
                    f"| {name} | " + " | ".join(f"{v:.3f}" for v in values["accuracy"]) + " |"
                )
            lines.append("")
    for key, title in (
        ("interpolation", "Interpolation across data (model pairs)"),
        ("centroid_interpolation", "Interpolation between group centroids"),
    ):
        if key in results:
            part = results[key]
            for metric in ("loss", "accuracy"):
                lines += [f"## {title}: mean (std) {metric} at t", ""]
                lines += ["| category | curves | " + " | ".join(f"{x:g}" for x in part["t"]) + " |"]
                lines += ["|---|---|" + "---|" * len(part["t"])]
                for category, e in part["summary"].items():
                    cells = [
                        f"{m:.3f} ({s:.3f})"
                        for m, s in zip(e[metric]["mean"], e[metric]["std"], strict=True)
                    ]
                    lines.append(f"| {category} | {e['n_curves']} | " + " | ".join(cells) + " |")
                lines.append("")
    return "\n".join(lines)
