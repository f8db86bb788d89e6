"""Write a walked path as JSON, CSV and a PNG plot of loss and accuracy along t."""

from __future__ import annotations

import csv
from pathlib import Path

from weightscape.analyses.interpolation import PathWalk
from weightscape.outputs import atomic_path, write_json
from weightscape.report.figures import (
    NEUTRAL,
    T_AXIS,
    colour,
    finish,
    label_axes,
    metric_label,
    pyplot,
)


def write_walk(walk: PathWalk, out_dir: str | Path, stem: str = "path") -> dict[str, Path]:
    """Write ``stem``.json, ``stem``.csv and ``stem``.png into ``out_dir``; return their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / f"{stem}.json", "csv": out / f"{stem}.csv", "png": out / f"{stem}.png"}
    write_json(paths["json"], walk.to_dict())
    with atomic_path(paths["csv"]) as partial, partial.open("w", newline="") as handle:
        writer = csv.writer(handle)
        n = len(walk.anchors)
        metrics = walk.metric_names()  # binary_f1 only on a 2-class task
        writer.writerow(["t", *[f"c{i}" for i in range(n)], *metrics, "cached"])
        for p in walk.points:
            writer.writerow([p.t, *p.coefficients, *(p.metrics[m] for m in metrics), p.cached])
    plot_walks([walk], paths["png"])
    return paths


LM_LABELS = {
    "loss": "loss (token-mean negative log likelihood, nats)",
    "accuracy": "token accuracy (fraction of targets predicted)",
}
"""Axis labels of a language model's walk (a text task): its loss and accuracy are per token."""


def plot_walks(walks: list[PathWalk], png: str | Path, title: str | None = None) -> Path:
    """Loss and accuracy along t for one or more walks (one palette colour each), the anchors
    (t = 0 and 1) marked; the default title names the path, its anchors and the task. A language
    model's walks are labelled per token (:data:`LM_LABELS`)."""
    plt = pyplot()

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for i, walk in enumerate(walks):
        ts = [p.t for p in walk.points]
        label = " -> ".join(walk.anchors) + ("" if walk.path == "linear" else f" ({walk.path})")
        for ax, metric in zip(axes, ("loss", "accuracy"), strict=True):
            ax.plot(ts, walk.curve(metric), marker="o", color=colour(i), label=label)
    # A language model's walk (its points carry perplexity): token-level loss and accuracy.
    language_model = all("perplexity" in w.metric_names() for w in walks)
    for ax, metric in zip(axes, ("loss", "accuracy"), strict=True):
        for x in (0.0, 1.0):
            ax.axvline(x, color=NEUTRAL, linewidth=0.6, linestyle=":")
        label_axes(ax, T_AXIS, LM_LABELS[metric] if language_model else metric_label(metric))
    axes[0].legend()
    first = walks[0]
    if title is None and len(walks) == 1:
        title = f"{first.path.capitalize()} path {' -> '.join(first.anchors)} on {first.task}"
    fig.suptitle(title or f"{len(walks)} paths on {first.task}")
    return finish(fig, png)


# Terminal columns: metric -> header; a metric a walk's points lack (binary F1 on a 3-class
# task, perplexity on a classification task, F1 on a text task) is not shown.
COLUMNS = {
    "loss": "loss",
    "accuracy": "acc",
    "macro_f1": "F1",
    "mcc": "MCC",
    "binary_f1": "F1+",
    "perplexity": "ppl",
}
WIDTHS = {"loss": 9, "perplexity": 11}  # perplexity reaches the vocabulary size; others: 7


def format_table(walk: PathWalk) -> str:
    """A plain-text table of the walk for the terminal.

    Columns: loss, accuracy, macro-F1 (``F1``), MCC, and on a 2-class task the F1 of the
    positive class, label 1 (``F1+``, as GLUE reports for MRPC and QQP). On a text task (a
    language model's loss): the token-mean loss, the token accuracy and the perplexity (``ppl``,
    ``exp(loss)``).
    """
    shown = [m for m in COLUMNS if m in walk.metric_names()]
    header = " ".join(f"{COLUMNS[m]:>{WIDTHS.get(m, 7)}}" for m in shown)
    lines = [f"{'t':>8} {header}  stored"]
    for p in walk.points:
        row = " ".join(f"{p.metrics[m]:{WIDTHS.get(m, 7)}.4f}" for m in shown)
        lines.append(f"{p.t:8.4g} {row}  {'yes' if p.cached else ''}")
    if "loss" in walk.summary:
        lines.append(_summary_line(walk.summary))
    adaptive = walk.summary.get("adaptive")
    if adaptive:
        lines.append(
            f"adaptive refinement: {adaptive['points_spent']} of the dense grid's "
            f"{adaptive['dense_points']} points evaluated ({adaptive['saving']:.0%} saved; "
            f"stopped: {adaptive['stopped']})"
        )
    return "\n".join(lines)


def _summary_line(s: dict) -> str:
    """Barrier, convexity gap and AUC of the loss, and the accuracy's drop and best point."""
    loss = s["loss"]
    if "auc" in loss:
        area = (
            f"AUC {loss['auc']:.4f} (path in distance, |end - start| = "
            f"{s['endpoint_distance']:.4g}; per unit t {loss['auc_t']:.4f})"
        )
    else:
        area = f"AUC per unit t {loss['auc_t']:.4f}"
    return (
        f"loss barrier {loss['barrier_height']:.4f}, convexity gap {loss['convexity_gap']:.4f}, "
        f"{area}; accuracy drop {s['accuracy']['barrier_height']:.4f}; best accuracy "
        f"{s['accuracy']['best']:.4f} at t={s['accuracy']['best_t']:.3g}"
    )


def render_walk(walk: PathWalk, config) -> list[str]:
    """Write the walk's files into ``config.out``; the lines the terminal shows."""
    files = write_walk(walk, config.out)
    # How many points were computed or reused is the command's last line (provenance).
    return [format_table(walk), "wrote " + ", ".join(str(f) for f in files.values())]
