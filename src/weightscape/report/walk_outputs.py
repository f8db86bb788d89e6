"""Write a walked path as JSON, CSV and a PNG plot of loss and accuracy along t."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from weightscape.analyses.interpolation import METRICS, PathWalk
from weightscape.report.figures import finish, pyplot


def write_walk(walk: PathWalk, out_dir: str | Path, stem: str = "path") -> dict[str, Path]:
    """Write ``stem``.json, ``stem``.csv and ``stem``.png into ``out_dir``; return their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / f"{stem}.json", "csv": out / f"{stem}.csv", "png": out / f"{stem}.png"}
    paths["json"].write_text(json.dumps(walk.to_dict(), indent=1))
    with paths["csv"].open("w", newline="") as handle:
        writer = csv.writer(handle)
        n = len(walk.anchors)
        writer.writerow(["t", *[f"c{i}" for i in range(n)], *METRICS, "cached"])
        for p in walk.points:
            writer.writerow([p.t, *p.coefficients, *(p.metrics[m] for m in METRICS), p.cached])
    plot_walks([walk], paths["png"])
    return paths


def plot_walks(walks: list[PathWalk], png: str | Path, title: str | None = None) -> Path:
    """Loss and accuracy along t for one or more walks, anchors' own values marked."""
    plt = pyplot()

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for walk in walks:
        ts = [p.t for p in walk.points]
        label = " -> ".join(walk.anchors) + ("" if walk.path == "linear" else f" ({walk.path})")
        for ax, metric in zip(axes, ("loss", "accuracy"), strict=True):
            ax.plot(ts, walk.curve(metric), marker="o", markersize=3, label=label)
    for ax, metric in zip(axes, ("loss", "accuracy"), strict=True):
        for x in (0.0, 1.0):
            ax.axvline(x, color="grey", linewidth=0.6, linestyle=":")
        ax.set_xlabel("t (0 = first anchor, 1 = last)")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    first = walks[0]
    fig.suptitle(title or f"{first.path} path on {first.task}")
    return finish(fig, png)


def format_table(walk: PathWalk) -> str:
    """A plain-text table of the walk for the terminal."""
    lines = [f"{'t':>8} {'loss':>9} {'acc':>7} {'F1':>7} {'MCC':>7}  stored"]
    for p in walk.points:
        m = p.metrics
        lines.append(
            f"{p.t:8.4g} {m['loss']:9.4f} {m['accuracy']:7.4f} {m['macro_f1']:7.4f} "
            f"{m['mcc']:7.4f}  {'yes' if p.cached else ''}"
        )
    if "loss" in walk.summary:
        s = walk.summary
        lines.append(
            f"loss barrier {s['loss']['barrier_height']:.4f}, convexity gap "
            f"{s['loss']['convexity_gap']:.4f}, AUC {s['loss']['auc']:.4f}; accuracy drop "
            f"{s['accuracy']['barrier_height']:.4f}; best accuracy {s['accuracy']['best']:.4f} "
            f"at t={s['accuracy']['best_t']:.3g}"
        )
    return "\n".join(lines)


def render_walk(walk: PathWalk, config) -> list[str]:
    """Write the walk's files into ``config.out``; the lines the terminal shows."""
    files = write_walk(walk, config.out)
    evaluated = len(walk.points) + len(walk.endpoints)
    return [
        format_table(walk),
        f"computed {walk.computed} point(s), reused {evaluated - walk.computed} from the "
        "store or the walk itself",
        "wrote " + ", ".join(str(f) for f in files.values()),
    ]
