"""Fuse: finetune from the centroid of models trained on other datasets (Gueta et al. 2023, §7).

Gueta et al. find that the weight average of models finetuned on many datasets is a better
starting point for finetuning on a new dataset than the pretrained model, with the largest gains
when the new dataset is small. For each target dataset this study

1. averages every zoo model whose dataset is *not* the target (the target's own models are left
   out, as in the paper), heads aside: models of datasets with other label counts share the
   encoder only (:func:`~weightscape.evaluation.export.save_combination`, ``ignore_heads``);
2. finetunes BitFit from that centroid and from the pretrained base, on the full training split
   and on few-shot subsamples, with the same seeds, head initialisation, data order and
   subsample for both starts (a paired comparison);
3. evaluates every finetuned model on the target's test split through the engine and the store.

A model's dataset is its ``tag`` (default ``dataset``) with a trailing ``:train``/``:validation``/
``:test`` removed, as :func:`~weightscape.training.finetune.finetune` tags a model trained on
``split(load_task("rotten_tomatoes"))["train"]`` with ``rotten_tomatoes:train``. The dataset name
must be a built-in task (``load_task(name)``); its splits are the seeded 8:1:1 splits used
everywhere. Intermediate checkpoints (a ``step`` tag below the run's ``steps``) take no part.

Everything resumes: the centroid export, each finished run (:func:`run_sweep`) and each stored
evaluation are reused by a rerun.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from weightscape.analyses.zoo_groups import dataset_of, datasets_in
from weightscape.data import Task, load_task, split, subset
from weightscape.errors import WeightscapeError, unknown_name_error
from weightscape.evaluation.engine import EngineSpec
from weightscape.evaluation.evaluator import EvalSettings
from weightscape.evaluation.export import save_combination
from weightscape.models.checkpoint import Checkpoint
from weightscape.models.zoo import Zoo
from weightscape.models.zoo_base import model_spec, resolve_base
from weightscape.runtime.executor import Executor, get_executor
from weightscape.runtime.store import ResultStore
from weightscape.training.finetune import FinetuneConfig
from weightscape.training.fuse import FuseSettings, folder_name, fuse_configs
from weightscape.training.sweeps import run_sweep

STARTS = ("base", "centroid")


@dataclass
class FuseResult:
    """What :func:`run_fuse` found.

    Attributes:
        rows: One per finetuned model: target, regime, n_train, start, seed, accuracy, loss, model.
        gains: One per target and regime (:func:`fuse_gains`).
        centroids: The exported centroid per target.
        trained: Runs trained by this call; ``skipped``: runs found finished.
    """

    rows: list[dict[str, Any]] = field(default_factory=list)
    gains: list[dict[str, Any]] = field(default_factory=list)
    centroids: dict[str, Checkpoint] = field(default_factory=dict)
    trained: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def run_fuse(
    zoo: Zoo,
    targets: Sequence[str] | None,
    settings: FuseSettings,
    out_dir: str | Path,
    store: ResultStore | None = None,
    *,
    base: str | None = None,
    eval_settings: EvalSettings | None = None,
    device: str = "auto",
    executor: Executor | None = None,
    load: Callable[[str], Task] = load_task,
    progress: bool = False,
) -> FuseResult:
    """BitFit from the centroid of the other datasets' models and from the base, per target.

    Args:
        zoo: Finetuned models of one architecture, tagged with their dataset.
        targets: Dataset names to finetune on; None or empty: every dataset of the zoo.
        settings: What to train and on which data.
        out_dir: Gets ``centroids/<target>/`` and ``runs/`` (a zoo with ``zoo.yaml``).
        store: Where evaluations are looked up and committed.
        base: The pretrained model (a built-in name or a path); default: the zoo's base, else the
            ``base`` tag its models share. Either way it must agree with the models' tags
            (:func:`~weightscape.models.zoo_base.resolve_base`).
        eval_settings: Evaluation batch size and truncation.
        device: Where BitFit trains and the models are evaluated (``auto``: a GPU if present).
        executor: Evaluates the points (default: in process).
        load: Loads a target's task by name.
        progress: Show progress bars.
    """
    out_dir = Path(out_dir)
    groups = datasets_in(zoo, settings.tag)
    targets = check_targets(targets, groups, settings.tag)
    base = model_spec(resolve_base(zoo, base))
    executor = executor or get_executor()
    result = FuseResult()
    for target in targets:
        centroid = export_centroid(groups, target, out_dir / "centroids", zoo.tokenizer)
        result.centroids[target] = centroid
        parts = split(load(target), seed=settings.split_seed)
        starts = {"base": base, "centroid": str(centroid.path)}
        hashes = {"centroid": centroid.content_hash()}
        configs = fuse_configs(target, starts, settings, len(parts["train"]), hashes)
        report = run_sweep(
            configs, parts["train"], out_dir / "runs", progress=progress, device=device
        )
        result.trained += report.trained
        result.skipped += report.skipped
        test = parts["test"]
        if settings.eval_subset is not None:
            test = subset(test, settings.eval_subset, seed=0)
        models = tuple(_final_checkpoint(c, out_dir / "runs") for c in configs)
        spec = EngineSpec(models, test, settings=eval_settings or EvalSettings(), device=device)
        done = executor.run(spec, np.eye(len(models)), store, progress=progress, description=target)
        result.rows += [
            _row(target, c, item.result.metrics) for c, item in zip(configs, done, strict=True)
        ]
    result.gains = fuse_gains(result.rows)
    return result


def check_targets(
    targets: Sequence[str] | None, groups: dict[str, list[Checkpoint]], tag: str = "dataset"
) -> list[str]:
    """The targets to study (default: every dataset), checked against the zoo's datasets."""
    if len(groups) < 2:
        raise WeightscapeError(
            f"The zoo holds models of {len(groups)} dataset(s) ({', '.join(groups) or 'none'}, "
            f"by the '{tag}' tag), so the centroid of the other datasets' models is empty. Fuse "
            "needs models finetuned on at least two datasets."
        )
    chosen = [dataset_of(t) for t in targets] if targets else sorted(groups)
    for target in chosen:
        if target not in groups:
            error = unknown_name_error("target dataset", target, groups)
            raise WeightscapeError(f"{error} (the zoo's datasets, by its '{tag}' tag)")
    return list(dict.fromkeys(chosen))


def export_centroid(
    groups: dict[str, list[Checkpoint]], target: str, folder: Path, tokenizer: Path | None = None
) -> Checkpoint:
    """The weight average of every model not trained on ``target``, heads from the first of
    them (finetuning replaces the head anyway), saved as ``folder/<target>``."""
    others = [m for name, models in groups.items() if name != target for m in models]
    return save_combination(
        others,
        [1.0 / len(others)] * len(others),
        folder / folder_name(target),
        ignore_heads=True,
        tokenizer=tokenizer,
    )


def _final_checkpoint(config: FinetuneConfig, runs_dir: Path) -> Checkpoint:
    folder = runs_dir / config.name / f"step-{config.steps}"
    return Checkpoint.from_path(folder, name=config.name, tags=config.tags)


def _row(target: str, config: FinetuneConfig, metrics: dict[str, float]) -> dict[str, Any]:
    return {
        "target": target,
        "regime": config.tags["regime"],
        "n_train": config.tags["n_train"],
        "start": config.tags["start"],
        "seed": config.head_seed,
        "accuracy": metrics["accuracy"],
        "loss": metrics["loss"],
        "model": config.name,
    }


def fuse_gains(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per target and regime: mean accuracy and loss over seeds from each start, and the gain.

    >>> rows = [
    ...     {"target": "t", "regime": "full", "n_train": 8, "start": s, "seed": seed,
    ...      "accuracy": a, "loss": 1.0}
    ...     for s, seed, a in [("base", 0, 0.5), ("base", 1, 0.7), ("centroid", 0, 0.8),
    ...                        ("centroid", 1, 0.8)]
    ... ]
    >>> g = fuse_gains(rows)[0]
    >>> g["base_accuracy"], g["centroid_accuracy"], round(g["gain"], 6), g["seeds"]
    (0.6, 0.8, 0.2, 2)
    """
    cells: dict[tuple[str, str], dict[str, list[dict[str, Any]]]] = {}
    for row in rows:
        cell = cells.setdefault((row["target"], row["regime"]), {s: [] for s in STARTS})
        cell[row["start"]].append(row)
    gains = []
    for (target, regime), by_start in cells.items():
        gain: dict[str, Any] = {"target": target, "regime": regime}
        gain["n_train"] = by_start["base"][0]["n_train"] if by_start["base"] else None
        for start in STARTS:
            for metric in ("accuracy", "loss"):
                values = [r[metric] for r in by_start[start]]
                gain[f"{start}_{metric}"] = float(np.mean(values)) if values else math.nan
        gain["gain"] = gain["centroid_accuracy"] - gain["base_accuracy"]
        gain["seeds"] = len(by_start["base"])
        gains.append(gain)
    return gains
