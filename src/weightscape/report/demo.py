"""The demo's outputs: each path's files, both paths in one plot, ``summary.json``, and the lines
that tell where they are (:mod:`weightscape.studies.demo` trains and walks)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from weightscape.outputs import write_json
from weightscape.report.walk_outputs import plot_walks, write_walk

SETTINGS = (
    "steps",
    "batch_size",
    "lr",
    "train_max_length",
    "max_length",
    "eval_examples",
    "points",
)


def render_demo(result, config) -> list[str]:
    """Write the walks, ``paths.png`` and ``summary.json`` into ``config.out``.

    Args:
        result: The study's :class:`~weightscape.studies.demo.DemoRun`.
        config: The demo's :class:`~weightscape.studies.demo.Config`.

    Returns:
        The models' test accuracy and loss (JSON), then where the results and plots are.
    """
    out = Path(config.out)
    for factor, walk in result.walks.items():
        write_walk(walk, out, stem=_stem(factor))
    plot_walks(
        list(result.walks.values()),
        out / "paths.png",
        title="Linear paths between MiniLM models finetuned on Rotten Tomatoes",
    )
    summary = demo_summary(result, config)
    write_json(out / "summary.json", summary)
    return [
        json.dumps(summary["models"], indent=1),
        f"results and plots are in {out.resolve()}",
        *(f"  {name}: {path}" for name, path in summary["files"].items()),
    ]


def demo_summary(result, config) -> dict[str, Any]:
    """Settings, each model's test numbers, each pair's barrier, the timing and the files."""
    out = Path(config.out)
    models: dict[str, dict[str, float]] = {}
    for walk in result.walks.values():
        models.update(
            {
                k: {"test_accuracy": v["accuracy"], "test_loss": v["loss"]}
                for k, v in walk.endpoints.items()
            }
        )
    pairs = {
        factor: {
            "anchors": w.anchors,
            "loss_barrier": w.summary["loss"]["barrier_height"],
            "loss_convexity_gap": w.summary["loss"]["convexity_gap"],
            "accuracy_drop": w.summary["accuracy"]["barrier_height"],
            "best_accuracy": w.summary["accuracy"]["best"],
            "best_t": w.summary["accuracy"]["best_t"],
            "computed_points": w.computed,
        }
        for factor, w in result.walks.items()
    }
    files = {
        "plot (both paths)": out / "paths.png",
        "summary": out / "summary.json",
        "zoo manifest": out / "zoo" / "zoo.yaml",
        "results store": out / "results.sqlite",
    }
    files.update({f"path {f}": out / f"{_stem(f)}.png" for f in result.walks})
    return {
        "settings": config.model_dump(mode="json", include=set(SETTINGS)),
        "models": models,
        "pairs": pairs,
        "seconds": dict(result.seconds),
        "files": {k: str(v) for k, v in files.items()},
    }


def _stem(factor: str) -> str:
    return f"path-{factor.replace(' ', '-')}"
