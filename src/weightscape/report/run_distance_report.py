"""Rendering of ``weightscape run-distance``: a table, JSON, CSV and Qin et al.'s Fig. 12."""

from __future__ import annotations

import csv
from pathlib import Path

from weightscape.analyses.run_distance import RunDistance
from weightscape.outputs import atomic_path, write_json
from weightscape.report.figures import DISTANCE, STEP, colour, finish, label_axes, pyplot


def render_run_distance(result: RunDistance, config) -> list[str]:
    """Write run-distance.json, run-distance.csv and run-distance.png into ``config.out``; the
    lines the terminal shows."""
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "run-distance.json", result.to_dict())
    columns = (result.steps, result.distance, result.per_parameter, result.cosine)
    with atomic_path(out / "run-distance.csv") as partial, partial.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["step", "distance", "per_parameter", "cosine"])
        writer.writerows(zip(*columns, strict=True))
    plot_run_distance(result, out / "run-distance.png")
    a, b = result.runs
    lines = [
        f"{a} vs {b} over {result.parameters} weights",
        f"{'step':>8} {'distance':>11} {'per weight':>11} {'cosine':>9}",
    ]
    lines += [f"{s:>8} {d:11.5g} {p:11.5g} {c:9.6f}" for s, d, p, c in zip(*columns, strict=True)]
    return [*lines, f"wrote {out}: run-distance.json, run-distance.csv, run-distance.png"]


def plot_run_distance(result: RunDistance, png: Path) -> Path:
    """Left: the distance over steps (and per weight, right axis). Right: per layer, the median
    per-neuron distance over steps, with its interquartile band."""
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.4))
    left.plot(result.steps, result.distance, marker="o", color=colour(0))
    a, b = result.runs
    label_axes(left, STEP, f"||a - b||: {DISTANCE}", f"Distance between {a} and {b}")
    left.yaxis.label.set_color(colour(0))
    twin = left.twinx()
    twin.grid(False)
    twin.plot(result.steps, result.per_parameter, marker="x", linestyle=":", color=colour(1))
    twin.set_ylabel("||a - b|| / sqrt(N) (RMS per weight)", color=colour(1))
    layers = sorted({name for step in result.neurons.values() for name in step})
    for i, layer in enumerate(layers):
        steps = [s for s in result.steps if layer in result.neurons[s]]
        stats = [result.neurons[s][layer] for s in steps]
        median = [x["median"] for x in stats]
        right.plot(steps, median, marker="o", markersize=3, color=colour(i), label=layer)
        right.fill_between(
            steps, [x["q25"] for x in stats], [x["q75"] for x in stats], alpha=0.2, color=colour(i)
        )
    label_axes(
        right,
        STEP,
        "per-neuron L2 distance\n(median, q25-q75 band)",
        f"Per-neuron distance between {a} and {b}, by layer",
    )
    if layers:
        right.legend()
    return finish(fig, png)
