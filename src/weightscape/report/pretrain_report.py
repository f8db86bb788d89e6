"""Plots and tables of the pretraining study (Qin et al. 2022, Figs. 6 and 7 in shape).

Reads only the study's result (:func:`weightscape.studies.pretraining.run`):

- ``pretraining-barriers.png``: the same-task loss barrier (and accuracy drop) per pretraining
  step (Fig. 6);
- ``pretraining-cross-task.png``: the generalised loss along the line from the task-A minimum to
  the task-B minimum, on task A and on task B, one curve per pretraining step (Fig. 7).
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

__all__ = ["pretraining_table", "render_pretraining", "write_pretraining_report"]


def render_pretraining(result: dict[str, Any], config) -> list[str]:
    """Write the report into ``config.out``; the table and where the files are."""
    files = write_pretraining_report(result, config.out)
    return [
        *pretraining_table(result).splitlines(),
        f"wrote {config.out}: " + ", ".join(p.name for p in files.values()),
    ]


def write_pretraining_report(result: dict[str, Any], out: str | Path) -> dict[str, Path]:
    """Write ``pretraining.json``, ``pretraining.md`` and the two plots into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = {
        "json": out / "pretraining.json",
        "markdown": out / "pretraining.md",
        "barriers": out / "pretraining-barriers.png",
        "cross task": out / "pretraining-cross-task.png",
    }
    write_json(files["json"], _finite_or_none(result))
    write_text(files["markdown"], pretraining_table(result))
    plot_barriers(result, files["barriers"])
    plot_cross_task(result, files["cross task"])
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
