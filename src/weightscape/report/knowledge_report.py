"""The knowledge report: Qin et al.'s Fig. 8, cartography maps, a markdown summary and JSON.

From a :class:`~weightscape.analyses.knowledge.KnowledgePath`:

* ``knowledge-steps.png``: per step j, the counts of F_j (newly forgotten source examples) and
  M_j (newly learned target examples) as bars, their mean confidence and mean variability as
  lines (the shape of Qin et al. 2022, Fig. 8), and both tasks' accuracy along the path;
* ``cartography-source.png``, ``cartography-target.png``: each run's cartography map
  (variability against confidence, coloured by correctness, Swayamdipta et al. 2020);
* ``knowledge.md``: the per-step table and whether the paper's ordering holds here;
* ``knowledge.json``: every number, per-example arrays included (NaN written as null).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from weightscape.analyses.knowledge import KnowledgePath
from weightscape.metrics.cartography import Cartography
from weightscape.metrics.knowledge import trend
from weightscape.outputs import write_json, write_text
from weightscape.report.figures import (
    SEQUENTIAL,
    colour,
    colourbar,
    finish,
    label_axes,
    metric_label,
    pyplot,
)

# The paper's ordering (Qin et al. §Q3): sign of each statistic's trend along the path.
EXPECTED_TRENDS = {
    "forgotten_confidence": +1,  # hard source examples are forgotten first, easy ones last
    "forgotten_variability": -1,
    "learned_confidence": -1,  # easy target examples are learned first
    "learned_variability": +1,
}


def ordering(steps: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each statistic's trend along the path (Spearman with the step) against the paper's sign.

    ``holds`` is None when there is no trend to judge (fewer than 3 non-empty steps).
    """
    out = {}
    for key, sign in EXPECTED_TRENDS.items():
        rho = trend([row[key] for row in steps])
        holds = None if math.isnan(rho) else bool(rho * sign > 0)
        out[key] = {"spearman_with_step": rho, "expected_sign": sign, "holds": holds}
    return out


def knowledge_markdown(result: KnowledgePath) -> str:
    """The per-step table (F_j, M_j, their mean statistics, flips back, accuracies) and the
    paper's ordering checked."""
    steps = result.steps()
    lines = [
        f"# Knowledge along the path {result.source} -> {result.target}",
        "",
        f"{len(result.ts) - 1} steps (t = {', '.join(f'{t:.3g}' for t in result.ts)}); heads: "
        f"{_HEAD_TEXT[result.head]}. Source examples: {len(result.source_examples.ids)} tracked "
        f"of {result.source_examples.task}; target examples: {len(result.target_examples.ids)} "
        f"tracked of {result.target_examples.task}.",
        "",
        "| j | t | F_j | conf F | var F | M_j | conf M | var M | src re-learned | "
        "tgt re-forgotten | src acc | tgt acc | F_j easy/amb/hard | M_j easy/amb/hard |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in steps:
        lines.append(
            f"| {r['step']} | {r['t']:.3g} | {r['forgotten']} | {_num(r['forgotten_confidence'])}"
            f" | {_num(r['forgotten_variability'])} | {r['learned']} | "
            f"{_num(r['learned_confidence'])} | {_num(r['learned_variability'])} | "
            f"{r['source_relearned']} | {r['target_reforgotten']} | {r['source_accuracy']:.3f} | "
            f"{r['target_accuracy']:.3f} | {_regions(r['forgotten_regions'])} | "
            f"{_regions(r['learned_regions'])} |"
        )
    lines += ["", "Qin et al.'s ordering (Spearman of the step's mean with j; expected sign):", ""]
    for key, check in ordering(steps).items():
        verdict = {True: "holds", False: "does not hold", None: "undetermined"}[check["holds"]]
        lines.append(
            f"- {key.replace('_', ' ')}: rho {_num(check['spearman_with_step'])}, expected "
            f"{'rising' if check['expected_sign'] > 0 else 'falling'}: {verdict}"
        )
    return "\n".join(lines) + "\n"


_HEAD_TEXT = {
    "own": "each point's own (mixed) head",
    "probe": "a linear probe fitted per task and point over the frozen encoder",
}


def _num(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.3f}"


def _regions(counts: dict[str, int]) -> str:
    return "/".join(str(n) for n in counts.values())


def plot_knowledge_steps(result: KnowledgePath, png: str | Path) -> Path:
    """Qin et al.'s Fig. 8: F_j and M_j counts, mean confidence, mean variability; and the
    accuracy of both tasks along the path."""
    import numpy as np

    steps = result.steps()
    j = np.array([r["step"] for r in steps])
    plt = pyplot()
    # Two by two, not four in a row: legible when the report shows the figure ~800 px wide.
    fig, grid = plt.subplots(2, 2, figsize=(10, 7.2))
    axes = grid.ravel()
    source, target = {"color": colour(0)}, {"color": colour(1)}
    axes[0].bar(j - 0.2, [r["forgotten"] for r in steps], width=0.4, label="F_j (source)", **source)
    axes[0].bar(j + 0.2, [r["learned"] for r in steps], width=0.4, label="M_j (target)", **target)
    axes[0].set_ylabel("examples (count)")
    axes[0].set_title("Newly forgotten (F_j) and newly learned (M_j)")
    for ax, stat in zip(axes[1:3], ("confidence", "variability"), strict=True):
        what = "mean" if stat == "confidence" else "std"
        ax.plot(j, [r[f"forgotten_{stat}"] for r in steps], marker="o", label="F_j", **source)
        ax.plot(j, [r[f"learned_{stat}"] for r in steps], marker="s", label="M_j", **target)
        ax.set_ylabel(f"mean {stat}\n({what} of p(true label) in training)")
        ax.set_title(f"Training {stat} of the examples in F_j and M_j")
    for ax in axes[:3]:
        ax.set_xticks(j)
        ax.set_xlabel("step j (from t_(j-1) to t_j)")
    ts = result.ts
    axes[3].plot(ts, result.source_examples.accuracy(), marker="o", label="source", **source)
    axes[3].plot(ts, result.target_examples.accuracy(), marker="s", label="target", **target)
    label_axes(
        axes[3],
        f"t (0 = {result.source}, 1 = {result.target})",
        metric_label("accuracy"),
        "Accuracy on the tracked examples",
    )
    for ax in axes:
        ax.legend()
    fig.suptitle(
        f"Knowledge along {result.source} -> {result.target} ({result.head} heads): "
        "source examples forgotten, target examples learned"
    )
    return finish(fig, png)


def plot_cartography(stats: Cartography, png: str | Path, title: str) -> Path:
    """The cartography map: variability (x) against confidence (y), coloured by correctness."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 5.2))
    points = ax.scatter(
        stats.variability,
        stats.confidence,
        c=stats.correctness,
        cmap=SEQUENTIAL,
        vmin=0,
        vmax=1,
        s=14,
        alpha=0.8,
    )
    colourbar(fig, points, ax, "correctness (fraction of checkpoints correct)")
    label_axes(
        ax,
        "variability (std of p(true label) over training)",
        "confidence (mean p(true label) over training)",
        f"Cartography map: {title}",
    )
    ax.set_xlim(-0.01, 0.51)  # a probability's standard deviation is at most 0.5
    ax.set_ylim(-0.02, 1.02)
    return finish(fig, png)


def write_knowledge_report(result: KnowledgePath, out: str | Path) -> dict[str, Path]:
    """Write the plots, ``knowledge.md`` and ``knowledge.json`` into ``out``; return the paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = {
        "json": out / "knowledge.json",
        "markdown": out / "knowledge.md",
        "steps": out / "knowledge-steps.png",
        "source map": out / "cartography-source.png",
        "target map": out / "cartography-target.png",
    }
    summary = {**result.to_dict(), "ordering": ordering(result.steps())}
    write_json(files["json"], _nan_to_none(summary))
    write_text(files["markdown"], knowledge_markdown(result))
    plot_knowledge_steps(result, files["steps"])
    maps = {"source map": result.source_examples, "target map": result.target_examples}
    for key, examples in maps.items():
        title = f"{examples.run} on {examples.task} ({len(examples.ids)} tracked examples)"
        plot_cartography(examples.cartography, files[key], title)
    return files


def render_knowledge(result: KnowledgePath, config) -> list[str]:
    """Write the report into ``config.out``; the per-step table and where the files are."""
    files = write_knowledge_report(result, config.out)
    lines = [
        f"{'j':>3} {'t':>6} {'F_j':>5} {'conf F':>7} {'var F':>7} {'M_j':>5} {'conf M':>7} "
        f"{'var M':>7}"
    ]
    for r in result.steps():
        lines.append(
            f"{r['step']:>3} {r['t']:>6.3g} {r['forgotten']:>5} {r['forgotten_confidence']:>7.3f} "
            f"{r['forgotten_variability']:>7.3f} {r['learned']:>5} "
            f"{r['learned_confidence']:>7.3f} {r['learned_variability']:>7.3f}"
        )
    lines.append(f"heads: {result.head}")
    lines.append(f"wrote {config.out}: " + ", ".join(p.name for p in files.values()))
    return lines


def _nan_to_none(value: Any) -> Any:
    """JSON has no NaN: empty sets' means become null."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _nan_to_none(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nan_to_none(v) for v in value]
    return value
