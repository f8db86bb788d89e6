"""The demo: the spine end to end on the embedded defaults.

all-MiniLM-L6-v2 (from its PyPI wheel) is finetuned on the Rotten Tomatoes sentences three times,
varying one factor per pair (the data order; the head initialisation), and the linear path between
each pair is walked on 512 held-out test sentences. Everything goes through the results store, so
a rerun of the demo into the same folder reuses every stored point and every saved model.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from weightscape.analyses.interpolation import walk_path
from weightscape.data import load_task, split, subset
from weightscape.evaluation.engine import Engine
from weightscape.evaluation.evaluator import EvalSettings
from weightscape.geometry import even_grid
from weightscape.models.checkpoint import Checkpoint
from weightscape.report.walk_outputs import plot_walks, write_walk
from weightscape.runtime.store import ResultStore
from weightscape.training.finetune import FinetuneConfig, finetune

# (name, head_seed, data_seed): each pair below differs in exactly one factor.
RUNS = (("rt-h0-d0", 0, 0), ("rt-h0-d1", 0, 1), ("rt-h1-d0", 1, 0))
PAIRS = {"data order": ("rt-h0-d0", "rt-h0-d1"), "head init": ("rt-h0-d0", "rt-h1-d0")}


@dataclass(frozen=True)
class DemoSettings:
    """Sizes of the demo, chosen to finish in about 10 minutes on 2 CPU cores."""

    steps: int = 150
    batch_size: int = 32
    lr: float = 1e-4
    max_length: int = 64
    eval_examples: int = 512
    points: int = 11


def run_demo(
    out_dir: str | Path, settings: DemoSettings | None = None, *, progress: bool = True
) -> dict[str, Any]:
    """Finetune the demo models (or reuse them), walk the pairs, write results and plots."""
    settings = settings or DemoSettings()
    out = Path(out_dir)
    start = time.perf_counter()
    splits = split(load_task("rotten_tomatoes"), seed=0)
    test = subset(splits["test"], settings.eval_examples, seed=0)
    models = {
        name: _trained(out / "zoo", name, head, data, settings, splits["train"], progress)
        for name, head, data in RUNS
    }
    trained_at = time.perf_counter()
    store = ResultStore(out / "results.sqlite")
    walks = {}
    for factor, (a, b) in PAIRS.items():
        engine = Engine(
            [models[a], models[b]],
            test,
            device="auto",
            settings=EvalSettings(batch_size=64, max_length=settings.max_length),
        )
        walk = walk_path(engine, even_grid(settings.points), store=store, progress=progress)
        walks[factor] = walk
        write_walk(walk, out, stem=f"path-{factor.replace(' ', '-')}")
    plot_walks(
        list(walks.values()),
        out / "paths.png",
        title="Linear paths between MiniLM models finetuned on Rotten Tomatoes",
    )
    summary = _summary(walks, settings, trained_at - start, time.perf_counter() - trained_at, out)
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary


def _trained(
    zoo_dir: Path, name: str, head_seed: int, data_seed: int, s: DemoSettings, train, progress: bool
) -> Checkpoint:
    folder = zoo_dir / name / f"step-{s.steps}"
    if (folder / "model.safetensors").is_file():  # reuse a model a previous run finished
        return Checkpoint.from_path(folder, name=name)
    config = FinetuneConfig(
        name=name,
        steps=s.steps,
        batch_size=s.batch_size,
        lr=s.lr,
        max_length=s.max_length,
        head_seed=head_seed,
        data_seed=data_seed,
    )
    return finetune(config, train, zoo_dir, progress=progress)[-1]


def _summary(
    walks, settings: DemoSettings, train_s: float, walk_s: float, out: Path
) -> dict[str, Any]:
    models: dict[str, dict[str, float]] = {}
    for walk in walks.values():
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
        for factor, w in walks.items()
    }
    files = {
        "plot (both paths)": out / "paths.png",
        "summary": out / "summary.json",
        "zoo manifest": out / "zoo" / "zoo.yaml",
        "results store": out / "results.sqlite",
    }
    files.update({f"path {f}": out / f"path-{f.replace(' ', '-')}.png" for f in walks})
    return {
        "settings": asdict(settings),
        "models": models,
        "pairs": pairs,
        "seconds": {"training": round(train_s, 1), "walking": round(walk_s, 1)},
        "files": {k: str(v) for k, v in files.items()},
    }
