"""Rendering of ``weightscape mean-path``: the mean curves over seeds with their band."""

from __future__ import annotations

import csv
from pathlib import Path

from weightscape.analyses.mean_path import MeanCurve
from weightscape.outputs import atomic_path, write_json
from weightscape.report.figures import NEUTRAL, colour, finish, label_axes, metric_label, pyplot


def render_mean_path(result: MeanCurve, config) -> list[str]:
    """Write mean-path.json, mean-path.csv and mean-path.png into ``config.out``; the lines the
    terminal shows."""
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "mean-path.json", result.to_dict())
    stats = {metric: result.stats(metric) for metric in result.curves}
    with atomic_path(out / "mean-path.csv") as partial, partial.open("w", newline="") as handle:
        writer = csv.writer(handle)
        columns = [(m, k) for m in stats for k in ("mean", "std", "min", "max")]
        writer.writerow(["t", *(f"{m}_{k}" for m, k in columns)])
        for i, t in enumerate(result.ts):
            writer.writerow([t, *(stats[m][k][i] for m, k in columns)])
    plot_mean_path(result, out / "mean-path.png")
    lines = [f"{len(result.pairs)} pairs: {'; '.join(result.pairs)}"]
    lines.append(f"{'t':>6} {'loss mean':>10} {'+- std':>8} {'acc mean':>9} {'+- std':>8}")
    loss, acc = stats["loss"], stats["accuracy"]
    lines += [
        f"{t:6.3g} {loss['mean'][i]:10.4f} {loss['std'][i]:8.4f} {acc['mean'][i]:9.4f} "
        f"{acc['std'][i]:8.4f}"
        for i, t in enumerate(result.ts)
    ]
    barrier = result.summaries.get("loss", {}).get("barrier_height")
    if barrier is not None:
        lines.append(
            f"loss barrier {barrier['mean']:.4f} +- {barrier['std']:.4f} (sample std over the "
            f"pairs; range {barrier['min']:.4f}..{barrier['max']:.4f})"
        )
    return [*lines, f"wrote {out}: mean-path.json, mean-path.csv, mean-path.png"]


def plot_mean_path(result: MeanCurve, png: Path) -> Path:
    """Loss and accuracy along t: each pair thin, the mean bold, the band shaded."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    band = "mean +- std" if result.band == "std" else "min..max"
    for ax, metric in zip(axes, ("loss", "accuracy"), strict=True):
        for values in result.curves[metric]:
            ax.plot(result.ts, values, color=NEUTRAL, linewidth=0.7, alpha=0.6)
        lower, upper = result.bounds(metric)
        ax.fill_between(result.ts, lower, upper, alpha=0.25, color=colour(0), label=band)
        mean = result.stats(metric)["mean"]
        ax.plot(result.ts, mean, color=colour(0), linewidth=2, label="mean")
        label_axes(ax, "t (0 = first checkpoint of each pair, 1 = second)", metric_label(metric))
    axes[0].legend()
    task = f" on {result.walks[0].task}" if result.walks else ""
    fig.suptitle(f"Mean linear path over {len(result.pairs)} seed pairs{task} (grey: each pair)")
    return finish(fig, png)
