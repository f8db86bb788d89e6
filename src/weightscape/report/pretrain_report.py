"""Plots and tables of the pretraining study (Qin et al. 2022, Figs. 6 and 7 in shape).

Reads only the study's result (:func:`weightscape.studies.pretraining.run`):

- ``pretraining-barriers.png``: the same-task loss barrier (and accuracy drop) per pretraining
  step (Fig. 6);
- ``pretraining-cross-task.png``: the generalised loss along the line from the task-A minimum to
  the task-B minimum, on task A and on task B, one curve per pretraining step (Fig. 7);
- ``pretraining-mlm-paths.png`` (when the study measured ``mlm_paths``): the masked-LM loss
  (token-mean negative log likelihood on a fixed mask) along the line between consecutive
  pretraining checkpoints, one curve per pair, and each line's loss barrier against its later
  step; ``pretraining.md`` then has a second table of those lines.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from weightscape.outputs import write_json, write_text
from weightscape.report.figures import (
    GENERALISED_LOSS,
    colour,
    finish,
    label_axes,
    pyplot,
    sequential_colours,
)

__all__ = ["mlm_paths_table", "pretraining_table", "render_pretraining", "write_pretraining_report"]

MLM_LOSS = "masked-LM loss\n(token-mean NLL on a fixed mask, nats)"


def render_pretraining(result: dict[str, Any], config) -> list[str]:
    """Write the report into ``config.out``; the table and where the files are."""
    files = write_pretraining_report(result, config.out)
    mlm = mlm_paths_table(result)
    return [
        *pretraining_table(result).splitlines(),
        *(["", *mlm.splitlines()] if mlm else []),
        f"wrote {config.out}: " + ", ".join(p.name for p in files.values()),
    ]


def write_pretraining_report(result: dict[str, Any], out: str | Path) -> dict[str, Path]:
    """Write ``pretraining.json``, ``pretraining.md`` and the plots into ``out`` (the MLM-path
    plot only when the result has ``mlm_paths``)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = {
        "json": out / "pretraining.json",
        "markdown": out / "pretraining.md",
        "barriers": out / "pretraining-barriers.png",
        "cross task": out / "pretraining-cross-task.png",
    }
    write_json(files["json"], _finite_or_none(result))
    mlm = mlm_paths_table(result)
    write_text(files["markdown"], pretraining_table(result) + (f"\n{mlm}" if mlm else ""))
    plot_barriers(result, files["barriers"])
    plot_cross_task(result, files["cross task"])
    if result.get("mlm_paths"):
        files["mlm paths"] = plot_mlm_paths(result, out / "pretraining-mlm-paths.png")
    return files


def pretraining_table(result: dict[str, Any]) -> str:
    """A Markdown table: per pretraining step, the same-task barrier and the cross-task curves'
    peaks above their endpoints.

    >>> row = {"loss_barrier": 0.5, "loss_convexity_gap": 0.25, "accuracy_barrier": 0.1,
    ...        "endpoint_accuracy": [0.8, 0.9]}
    >>> cross = {"task_a": {"loss_barrier": 1.0}, "task_b": {"loss_barrier": 2.0}}
    >>> print(pretraining_table({"checkpoints": [
    ...     {"step": 10, "same_task": row, "cross_task": cross}]}).splitlines()[-1])
    | 10 | 0.5 | 0.25 | 0.1 | 0.8 / 0.9 | 1 | 2 |
    """
    lines = [
        "| pretraining step | loss barrier A-A | convexity gap | accuracy drop | end accuracy "
        "| probe-loss barrier A-B on A | on B |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in result["checkpoints"]:
        same, cross = row["same_task"], row["cross_task"]
        ends = " / ".join(f"{a:.3g}" for a in same["endpoint_accuracy"])
        lines.append(
            f"| {row['step']} | {same['loss_barrier']:.3g} | {same['loss_convexity_gap']:.3g} "
            f"| {same['accuracy_barrier']:.3g} | {ends} "
            f"| {cross['task_a']['loss_barrier']:.3g} | {cross['task_b']['loss_barrier']:.3g} |"
        )
    return "\n".join(lines) + "\n"


def mlm_paths_table(result: dict[str, Any]) -> str:
    """A Markdown table of the masked-LM loss along the line between consecutive pretraining
    checkpoints ("" when the study did not measure it): the ends' and the midpoint's loss
    (token-mean NLL on a fixed mask) and perplexity, and the line's barrier and convexity gap.

    >>> row = {"from_step": 0, "to_step": 10, "documents": 8, "t": [0.0, 0.5, 1.0],
    ...        "loss": [4.0, 3.5, 3.0], "perplexity": [54.6, 33.1, 20.1],
    ...        "accuracy": [0.1, 0.2, 0.3], "loss_barrier": 0.0, "loss_convexity_gap": 0.0}
    >>> print(mlm_paths_table({"mlm_paths": [row]}).splitlines()[-1])
    | 0 -> 10 | 8 | 4 | 3.5 | 3 | 54.6 / 20.1 | 0 | 0 |
    """
    rows = result.get("mlm_paths") or []
    if not rows:
        return ""
    lines = [
        "Masked-LM loss (token-mean NLL, nats) along the line between consecutive pretraining "
        "checkpoints:",
        "",
        "| steps | documents | loss at start | at middle | at end | perplexity start / end "
        "| loss barrier | convexity gap |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        middle = row["loss"][len(row["loss"]) // 2]  # t = 0.5 on an odd even grid
        lines.append(
            f"| {row['from_step']} -> {row['to_step']} | {row['documents']} "
            f"| {row['loss'][0]:.4g} | {middle:.4g} | {row['loss'][-1]:.4g} "
            f"| {row['perplexity'][0]:.4g} / {row['perplexity'][-1]:.4g} "
            f"| {row['loss_barrier']:.3g} | {row['loss_convexity_gap']:.3g} |"
        )
    return "\n".join(lines) + "\n"


def plot_mlm_paths(result: dict[str, Any], png: Path) -> Path:
    """Masked-LM loss along each consecutive pair's line (one curve per pair, dark early), and
    each line's loss barrier against its later pretraining step."""
    plt = pyplot()
    rows = result["mlm_paths"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for row, ink in zip(rows, sequential_colours(len(rows)), strict=True):
        label = f"{row['from_step']} -> {row['to_step']}"
        axes[0].plot(row["t"], row["loss"], marker="o", markersize=3, color=ink, label=label)
    label_axes(
        axes[0],
        "t (0: earlier checkpoint, 1: later)",
        MLM_LOSS,
        f"scored on {rows[0]['documents']} documents" if rows else None,
    )
    axes[0].legend(title="pretraining steps")
    axes[1].plot(
        [r["to_step"] for r in rows], [r["loss_barrier"] for r in rows], marker="o", color=colour(0)
    )
    label_axes(axes[1], "pretraining step (later end)", "masked-LM loss barrier (nats)")
    fig.suptitle("Linear path between consecutive pretraining checkpoints: masked-LM loss")
    return finish(fig, png)


def plot_barriers(result: dict[str, Any], png: Path) -> Path:
    """Same-task loss barrier and accuracy drop against the pretraining step."""
    plt = pyplot()
    rows = result["checkpoints"]
    steps = [r["step"] for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for i, (ax, key, label) in enumerate(
        (
            (axes[0], "loss_barrier", "loss barrier (nats)"),
            (axes[1], "accuracy_barrier", "accuracy drop (fraction correct)"),
        )
    ):
        ax.plot(steps, [r["same_task"][key] for r in rows], marker="o", color=colour(i))
        label_axes(ax, "pretraining step", label)
    fig.suptitle("Linear path between two finetuned copies of each pretraining checkpoint: barrier")
    return finish(fig, png)


def plot_cross_task(result: dict[str, Any], png: Path) -> Path:
    """Generalised loss along the task-A -> task-B line, per task, one curve per step."""
    plt = pyplot()
    rows = result["checkpoints"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharex=True)
    colours = sequential_colours(len(rows))  # pretraining steps are ordered: dark early
    for ax, key in zip(axes, ("task_a", "task_b"), strict=True):
        for row, ink in zip(rows, colours, strict=True):
            curve = row["cross_task"][key]
            ax.plot(curve["t"], curve["loss"], color=ink, label=f"step {row['step']}")
        label_axes(
            ax,
            "t (0: task-A minimum, 1: task-B minimum)",
            GENERALISED_LOSS,
            f"evaluated on {rows[0]['cross_task'][key]['task']}" if rows else key,
        )
    axes[1].legend(title="pretraining")
    fig.suptitle("Linear path from the task-A to the task-B minimum, per pretraining checkpoint")
    return finish(fig, png)


def _finite_or_none(value: Any) -> Any:
    """JSON has no NaN or infinity: write null instead."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite_or_none(v) for v in value]
    return value
