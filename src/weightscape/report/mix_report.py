"""Studies of better models between two minima: fitted curves, learned mixes, best points."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from weightscape.analyses.best_point import best_point
from weightscape.analyses.interpolation import walk_path
from weightscape.data import Task
from weightscape.evaluation.engine import Engine
from weightscape.evaluation.evaluator import EvalSettings
from weightscape.geometry import even_grid
from weightscape.models.checkpoint import Checkpoint
from weightscape.models.space import ParameterSpace
from weightscape.report.walk_outputs import plot_walks, write_walk
from weightscape.runtime.store import ResultStore
from weightscape.training.curve_fit import CurveConfig, fit_curve
from weightscape.training.learned_mix import CombineConfig, learn_combination


def run_curve_study(
    a: Checkpoint,
    b: Checkpoint,
    train: Task,
    evaluation: Task,
    out: Path,
    *,
    config: CurveConfig,
    points: int = 11,
    space: ParameterSpace | None = None,
    settings: EvalSettings | None = None,
    device: str = "auto",
    store: ResultStore | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Fit the curve on ``train``; walk the line and the fitted curve on ``evaluation``."""
    labels = settings.model_labels if settings is not None else None
    anchors, _history = fit_curve(
        a, b, train, out / "curve", config=config, dev=evaluation, space=space, model_labels=labels
    )
    ts = even_grid(points)
    walks = {}
    for name, (models, path) in {
        "line": ([a, b], "linear"),
        "curve": (anchors, config.path),
    }.items():
        engine = Engine(models, evaluation, space=space, settings=settings, device=device)
        walks[name] = walk_path(engine, ts, path=path, store=store, progress=progress)
        write_walk(walks[name], out, stem=f"path-{name}")
    plot_walks(
        list(walks.values()),
        out / "curve-vs-line.png",
        title=f"Line and fitted {config.path} curve on {evaluation.name}",
    )
    summary = {
        name: {
            "max_loss": float(w.curve("loss").max()),
            "min_accuracy": float(w.curve("accuracy").min()),
            "loss_barrier": w.summary["loss"]["barrier_height"],
        }
        for name, w in walks.items()
    }
    summary["controls"] = [str(c.path) for c in anchors[1:-1]]
    (out / "curve-summary.json").write_text(json.dumps(summary, indent=1))
    return summary


def run_combine_study(
    a: Checkpoint,
    b: Checkpoint,
    train: Task,
    dev: Task,
    test: Task,
    out: Path,
    *,
    groupings: Sequence[str],
    config: CombineConfig,
    points: int = 11,
    space: ParameterSpace | None = None,
    settings: EvalSettings | None = None,
    device: str = "auto",
    store: ResultStore | None = None,
    progress: bool = False,
) -> list[dict[str, Any]]:
    """Qin et al.'s Table 2: the best linear point (t chosen on dev) against learned per-layer,
    per-module and per-matrix mixes, each reported on dev and test."""
    out.mkdir(parents=True, exist_ok=True)
    engines = {
        split: Engine([a, b], task, space=space, settings=settings, device=device)
        for split, task in (("dev", dev), ("test", test))
    }
    line = best_point(
        engines["dev"], engines["test"], even_grid(points), store=store, progress=progress
    )
    rows = [
        {
            "method": f"linear (best t = {line['t']:.2f} on dev)",
            "dev": line["dev"],
            "test": line["test"],
        },
        {
            "method": f"better endpoint ({line['better_endpoint']})",
            "dev": line["endpoint_dev"],
            "test": line["endpoint_test"],
        },
    ]
    alphas = {}
    for grouping in groupings:
        point, _ = learn_combination(
            a,
            b,
            train,
            space=space,
            out_dir=out,
            config=config.model_copy(update={"group_by": grouping}),
            model_labels=settings.model_labels if settings is not None else None,
        )
        alphas[grouping] = {g: c[0] for g, c in point.coefficients}
        rows.append(
            {
                "method": f"learned {grouping}-wise ({len(point.coefficients)} groups)",
                **{split: _evaluate(engine, point, store) for split, engine in engines.items()},
            }
        )
    (out / "combine.json").write_text(json.dumps(rows, indent=1))
    (out / "combine.md").write_text(table_markdown(rows) + "\n")
    plot_combination(rows, alphas, out / "combine.png", (a.name, b.name))
    return rows


def plot_combination(
    rows: list[dict[str, Any]],
    alphas: dict[str, dict[str, float]],
    png: Path,
    names: tuple[str, str],
) -> Path:
    """Dev and test accuracy per method, and each grouping's learned weight on the first model."""
    import numpy as np

    from weightscape.report.figures import finish, pyplot

    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    x = np.arange(len(rows))
    for offset, split in ((-0.2, "dev"), (0.2, "test")):
        left.bar(x + offset, [r[split]["accuracy"] for r in rows], width=0.4, label=split)
    left.set_xticks(x, [r["method"].split(" (")[0] for r in rows], rotation=20, fontsize=7)
    values = [r[s]["accuracy"] for r in rows for s in ("dev", "test")]
    left.set_ylim(max(0.0, min(values) - 0.02), min(1.0, max(values) + 0.01))
    left.set_ylabel("accuracy")
    left.legend(fontsize=7)
    for grouping, weights in alphas.items():
        right.plot(
            range(len(weights)),
            list(weights.values()),
            marker="o",
            markersize=3,
            label=f"{grouping}-wise",
        )
    right.axhline(0.5, color="grey", linewidth=0.6, linestyle=":")
    right.set_xlabel("group (sorted by name)")
    right.set_ylabel(f"weight on {names[0]} (1 - weight on {names[1]})")
    right.legend(fontsize=7)
    return finish(fig, png)


def _evaluate(engine: Engine, point, store: ResultStore | None) -> dict[str, float]:
    from weightscape.runtime.executor import evaluate_points

    return evaluate_points(engine, [point], store)[0].result.metrics


def table_markdown(rows: list[dict[str, Any]]) -> str:
    """Method by dev/test accuracy and loss, in the shape of Qin et al.'s Table 2."""
    lines = [
        "| method | dev accuracy | dev loss | test accuracy | test loss |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['method']} | {r['dev']['accuracy']:.4f} | {r['dev']['loss']:.4f} | "
        f"{r['test']['accuracy']:.4f} | {r['test']['loss']:.4f} |"
        for r in rows
    ]
    return "\n".join(lines)
