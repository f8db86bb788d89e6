"""Rendering of the studies of better models between two minima: fitted curves, learned mixes.

The studies (:mod:`weightscape.studies.curve`, :mod:`weightscape.studies.combine`) train and
evaluate; this module only writes their results into files and terminal lines.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from weightscape.outputs import md_cell, write_json, write_text
from weightscape.report.walk_outputs import plot_walks, write_walk
from weightscape.studies import combine, curve


def render_curve(result: curve.CurveResult, config: curve.Config) -> list[str]:
    """Write path-line.*, path-curve.* (dev), path-line-test.*, path-curve-test.*,
    curve-vs-line.png, curve-summary.json and curve-table.{json,md} (Qin et al.'s Table 1) into
    ``config.out``; the lines the terminal shows."""
    out = Path(config.out)
    for name, walk in result.walks.items():
        write_walk(walk, out, stem=f"path-{name}")
    for name, walk in result.test_walks.items():
        write_walk(walk, out, stem=f"path-{name}-test")
    write_json(out / "curve-table.json", result.rows)
    table = table_markdown(result.rows)
    write_text((out / "curve-table.md"), table + "\n")
    plot_walks(
        list(result.walks.values()),
        out / "curve-vs-line.png",
        title=f"Line and fitted {config.path} curve on {result.walks['line'].task}",
    )
    summary = result.summary()
    write_json(out / "curve-summary.json", summary)
    lines = []
    for name in ("line", "curve"):
        s = summary[name]
        lines.append(
            f"{name:>5}: highest loss {s['max_loss']:.4f}, lowest accuracy "
            f"{s['min_accuracy']:.4f}, loss barrier {s['loss_barrier']:.4f}"
        )
    return [
        *lines,
        table,
        f"wrote {out}: curve-vs-line.png, curve-table.md, path-line*.*, path-curve*.*, "
        "curve/control-*",
    ]


def render_combine(result: combine.CombineResult, config: combine.Config) -> list[str]:
    """Write combine.json, combine.md and combine.png into ``config.out``; the terminal lines."""
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "combine.json", result.rows)
    table = table_markdown(result.rows)
    write_text((out / "combine.md"), table + "\n")
    plot_combination(result.rows, result.alphas, out / "combine.png", result.names)
    return [table, f"wrote {out}: combine.json, combine.md, combination-*.json"]


def plot_combination(
    rows: list[dict[str, Any]],
    alphas: dict[str, dict[str, float]],
    png: Path,
    names: tuple[str, str],
) -> Path:
    """Dev and test accuracy per method, and each grouping's learned weight on the first model."""
    import numpy as np

    from weightscape.report.figures import (
        FONT_MIN,
        NEUTRAL,
        colour,
        finish,
        label_axes,
        metric_label,
        pyplot,
    )

    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.4))
    x = np.arange(len(rows))
    for i, (offset, split) in enumerate(((-0.2, "dev"), (0.2, "test"))):
        heights = [r[split]["accuracy"] for r in rows]
        left.bar(x + offset, heights, width=0.4, color=colour(i), label=split)
    methods = [r["method"].split(" (")[0] for r in rows]
    left.set_xticks(x, methods, rotation=20, ha="right", fontsize=FONT_MIN)
    values = [r[s]["accuracy"] for r in rows for s in ("dev", "test")]
    left.set_ylim(max(0.0, min(values) - 0.02), min(1.0, max(values) + 0.01))
    label_axes(
        left, "method", metric_label("accuracy"), f"Merging {names[0]} and {names[1]}: accuracy"
    )
    left.legend()
    for i, (grouping, weights) in enumerate(alphas.items()):
        right.plot(
            range(len(weights)),
            list(weights.values()),
            marker="o",
            markersize=3,
            color=colour(i),
            label=f"{grouping}-wise",
        )
    right.axhline(0.5, color=NEUTRAL, linewidth=0.6, linestyle=":")
    label_axes(
        right,
        "parameter group (sorted by name)",
        f"weight on {names[0]} (1 - weight on {names[1]})",
        "Learned weight of each parameter group",
    )
    right.legend()
    return finish(fig, png)


def table_markdown(rows: list[dict[str, Any]]) -> str:
    """Method by dev/test accuracy and loss, in the shape of Qin et al.'s Tables 1-2."""
    lines = [
        "| method | dev accuracy | dev loss | test accuracy | test loss |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {md_cell(r['method'])} | {r['dev']['accuracy']:.4f} | {r['dev']['loss']:.4f} | "
        f"{r['test']['accuracy']:.4f} | {r['test']['loss']:.4f} |"
        for r in rows
    ]
    return "\n".join(lines)
