"""The fuse table and plot: BitFit from the centroid of other datasets against from the base.

One row per target and regime (full data, N-shot) with the test accuracy from each start (mean
over seeds) and the gain, centroid minus base, plus a mean row per regime: the shape of Gueta et
al.'s (2023) fuse comparison. Files come from a :class:`~weightscape.analyses.fuse.FuseResult`.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from weightscape.outputs import atomic_path, md_cell, write_json, write_text

if TYPE_CHECKING:
    from weightscape.analyses.fuse import FuseResult

GAIN_COLUMNS = (
    "target",
    "regime",
    "n_train",
    "seeds",
    "base_accuracy",
    "centroid_accuracy",
    "gain",
    "base_loss",
    "centroid_loss",
)
ROW_COLUMNS = ("target", "regime", "n_train", "start", "seed", "accuracy", "loss", "model")


def with_means(gains: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The gains plus one ``mean`` row per regime (over targets).

    >>> rows = [{"target": t, "regime": "full", "n_train": 10, "seeds": 1, "base_accuracy": b,
    ...          "centroid_accuracy": c, "gain": c - b, "base_loss": 1.0, "centroid_loss": 1.0}
    ...         for t, b, c in [("a", 0.5, 0.7), ("b", 0.6, 0.6)]]
    >>> mean = with_means(rows)[-1]
    >>> mean["target"], mean["regime"], round(mean["gain"], 6)
    ('mean', 'full', 0.1)
    """
    out = list(gains)
    regimes = list(dict.fromkeys(g["regime"] for g in gains))
    for regime in regimes:
        cell = [g for g in gains if g["regime"] == regime]
        mean: dict[str, Any] = {"target": "mean", "regime": regime, "n_train": None, "seeds": None}
        for column in GAIN_COLUMNS[4:]:
            mean[column] = sum(g[column] for g in cell) / len(cell)
        out.append(mean)
    return out


def gains_markdown(gains: Sequence[dict[str, Any]]) -> str:
    """Target by regime: accuracy from the base, from the centroid, and the gain."""
    lines = [
        "| target | regime | n train | base accuracy | centroid accuracy | gain | base loss | "
        "centroid loss |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for g in with_means(gains):
        n_train = "" if g["n_train"] is None else str(g["n_train"])
        target = f"**{g['target']}**" if g["target"] == "mean" else g["target"]
        lines.append(
            f"| {md_cell(target)} | {g['regime']} | {n_train} | {g['base_accuracy']:.4f} | "
            f"{g['centroid_accuracy']:.4f} | {g['gain']:+.4f} | {g['base_loss']:.4f} | "
            f"{g['centroid_loss']:.4f} |"
        )
    return "\n".join(lines)


def plot_gains(gains: Sequence[dict[str, Any]], png: str | Path) -> Path:
    """Bars of the accuracy gain (centroid minus base) per target, one colour per regime."""
    import numpy as np

    from weightscape.report.figures import NEUTRAL, colour, finish, label_axes, pyplot

    rows = with_means(gains)
    targets = list(dict.fromkeys(r["target"] for r in rows))
    regimes = list(dict.fromkeys(r["regime"] for r in rows))
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(max(6.4, 1.2 * len(targets) + 2), 4.4))
    width = 0.8 / len(regimes)
    x = np.arange(len(targets))
    for k, regime in enumerate(regimes):
        by_target = {r["target"]: r["gain"] for r in rows if r["regime"] == regime}
        heights = [by_target.get(t, math.nan) for t in targets]
        offset = (k - (len(regimes) - 1) / 2) * width
        ax.bar(x + offset, heights, width=width, color=colour(k), label=regime)
    ax.axhline(0.0, color=NEUTRAL, linewidth=0.8)
    ax.set_xticks(x, targets, rotation=20, ha="right")
    label_axes(
        ax,
        "target dataset",
        "accuracy gain, centroid - base\n(fraction correct)",
        "BitFit from the centroid of other datasets vs. from the base",
    )
    ax.legend(title="training data", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return finish(fig, png)


def render_fuse(result: FuseResult, config) -> list[str]:
    """Write the fuse files into ``config.out``; the lines the terminal shows."""
    files = write_fuse_report(result, config.out)
    return [
        gains_markdown(result.gains),
        f"trained {len(result.trained)} run(s), {len(result.skipped)} already finished",
        f"wrote {config.out}: " + ", ".join(p.name for p in files.values()),
    ]


def write_fuse_report(result: FuseResult, out: str | Path) -> dict[str, Path]:
    """Write the table (``fuse.md``, ``fuse-gains.csv``), every run's result (``fuse-runs.csv``),
    both with the centroids' paths (``fuse.json``), and the gains plot (``fuse-gains.png``)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = {
        "markdown": out / "fuse.md",
        "gains": out / "fuse-gains.csv",
        "runs": out / "fuse-runs.csv",
        "json": out / "fuse.json",
        "plot": out / "fuse-gains.png",
    }
    write_text(files["markdown"], gains_markdown(result.gains) + "\n")
    _write_csv(files["gains"], with_means(result.gains), GAIN_COLUMNS)
    _write_csv(files["runs"], result.rows, ROW_COLUMNS)
    centroids = {t: str(c.path) for t, c in result.centroids.items()}
    summary = {"gains": result.gains, "runs": result.rows, "centroids": centroids}
    write_json(files["json"], summary)
    plot_gains(result.gains, files["plot"])
    return files


def _write_csv(path: Path, rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
    with atomic_path(path) as partial, partial.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
