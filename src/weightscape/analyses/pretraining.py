"""Connectivity through pretraining (Qin et al. 2022, §5, Figs. 6 and 7).

For each checkpoint of a masked-LM pretraining run (:mod:`weightscape.training.pretrain`):

- **same task** (Fig. 6): two copies finetuned on task A from different head and data seeds; the
  loss barrier and convexity gap along the line between them, on held-out task-A examples with
  their own (mixed) heads. Qin et al. find the barrier vanishes early in pretraining.
- **cross task** (Fig. 7): one task-A minimum and one task-B minimum; the line between them
  evaluated on both tasks with the generalised loss (:class:`~weightscape.evaluation.probe.Probe`:
  heads ignored, a linear head fitted per point), since the heads' label sets differ. Qin et al.
  find pretraining pulls the two tasks' optimal regions together (lower, flatter curves).
- **masked-LM loss between pretraining checkpoints**: the line between each pair of consecutive
  checkpoints, scored by the masked-LM loss itself (a text task, fixed seeded mask:
  :mod:`weightscape.evaluation.lm_evaluator`) on ``mlm_eval_size`` documents: texts of the source
  the run did not train on when it has any left, else its training texts (the result says
  which). A barrier here means pretraining itself crossed a ridge between the two checkpoints.

Finetuned runs are reused when their folder holds the same finished run, and every point goes
through the results store, so a rerun resumes.
"""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from weightscape.analyses.interpolation import PathWalk, walk_path
from weightscape.data import Task, load_task, make_text_task, split, subset
from weightscape.data.raw_text import raw_texts
from weightscape.evaluation.engine import Engine
from weightscape.evaluation.evaluator import EvalSettings
from weightscape.evaluation.probe import Probe
from weightscape.geometry import even_grid
from weightscape.models.checkpoint import Checkpoint
from weightscape.runtime.store import ResultStore
from weightscape.training.finetune import FinetuneConfig
from weightscape.training.pretrain import PretrainConfig, pretrained_checkpoints
from weightscape.training.sweeps import run_sweep

__all__ = ["PretrainingStudy", "finetuned", "pretrain_and_study", "study_pretraining"]


class PretrainingStudy(BaseModel):
    """Settings of the finetuning and evaluation done at each pretraining checkpoint."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    task_a: str = "rotten_tomatoes"
    task_b: str = "mnli_like"
    finetune_steps: int = Field(300, ge=1)
    batch_size: int = Field(32, ge=1)
    lr: float = Field(1e-3, gt=0)  # at 2e-4 for 150 steps these small models stay at chance
    max_length: int = Field(64, ge=8)
    train_size: int | None = Field(2000, ge=1)  # finetuning rows per task (None: the whole split)
    eval_size: int = Field(256, ge=2)  # held-out rows each path point is evaluated on
    probe_train: int = Field(256, ge=2)  # rows the generalised loss's linear head is fitted on
    points: int = Field(11, ge=2)  # t = k / (points - 1)
    seeds: tuple[int, int] = (0, 1)  # head and data seeds of the two task-A copies
    # documents the masked-LM loss between consecutive checkpoints is evaluated on (0: off)
    mlm_eval_size: int = Field(256, ge=0)


def finetuned(config: FinetuneConfig, train: Task, out_dir: Path, **options: Any) -> Checkpoint:
    """The last checkpoint of ``config``'s run, trained now unless ``out_dir`` holds it finished
    (a finished run with other settings is an error, as in a sweep, never silently retrained)."""
    run_sweep([config], train, out_dir, **options)
    return Checkpoint.from_path(out_dir / config.name / f"step-{config.steps}", name=config.name)


def study_pretraining(
    checkpoints: list[Checkpoint],
    study: PretrainingStudy,
    out_dir: str | Path,
    *,
    store: ResultStore | None = None,
    device: str = "cpu",
    progress: bool = False,
    tasks: tuple[Task, Task] | None = None,
    mlm_texts: list[str] | None = None,
) -> dict[str, Any]:
    """Finetune and walk paths at each pretraining checkpoint; returns a JSON-able result.

    Args:
        checkpoints: Pretraining checkpoints (tagged with their ``step``), in step order.
        study: What to finetune and evaluate.
        out_dir: Finetuned runs go under ``out_dir/finetuned``.
        store: Results store (points already there are not evaluated again).
        device: Where finetuning and evaluation run.
        tasks: Task A and task B themselves (default: ``load_task`` of the study's names).
        mlm_texts: Documents for the masked-LM loss between consecutive checkpoints
            (:func:`mlm_paths`); None or ``study.mlm_eval_size == 0``: not measured.

    Returns:
        ``{"study": settings, "checkpoints": [{"step", "same_task", "cross_task"}, ...]}``, and
        ``"mlm_paths"`` (:func:`mlm_paths`) when measured.
    """
    loaded = tasks or (load_task(study.task_a), load_task(study.task_b))
    parts = {
        key: _parts(task, study) for key, task in zip(("task_a", "task_b"), loaded, strict=True)
    }
    ts = even_grid(study.points)  # exact ends: t = 0 and 1 are the models themselves
    settings = EvalSettings(batch_size=64, max_length=study.max_length)
    rows = []
    for checkpoint in checkpoints:
        step = int(checkpoint.tags.get("step", len(rows)))
        runs = _finetune_all(checkpoint, step, study, parts, Path(out_dir) / "finetuned", device)
        a_test = parts["task_a"]["test"]
        same = _walk([runs["a0"], runs["a1"]], a_test, None, settings, ts, store, device, progress)
        cross = {
            key: _walk(
                [runs["a0"], runs["b0"]],
                parts[key]["test"],
                Probe(parts[key]["probe"]),
                settings,
                ts,
                store,
                device,
                progress,
            )
            for key in ("task_a", "task_b")
        }
        rows.append(
            {
                "step": step,
                "checkpoint": str(checkpoint.path),
                "same_task": _summary(same),
                "cross_task": {key: _summary(walk) for key, walk in cross.items()},
            }
        )
    result: dict[str, Any] = {"study": study.model_dump(), "checkpoints": rows}
    if mlm_texts and study.mlm_eval_size:
        result["mlm_paths"] = mlm_paths(
            checkpoints, mlm_texts, study, store=store, device=device, progress=progress
        )
    return result


def mlm_paths(
    checkpoints: list[Checkpoint],
    texts: list[str],
    study: PretrainingStudy,
    *,
    store: ResultStore | None = None,
    device: str = "cpu",
    progress: bool = False,
) -> list[dict[str, Any]]:
    """The masked-LM loss along the line between each pair of consecutive checkpoints.

    Every line is scored on the same ``study.mlm_eval_size`` documents of ``texts`` (a seeded
    subset) with the same fixed mask (seed 0), so the curves of different pairs compare.

    Returns:
        One row per pair: ``from_step``, ``to_step``, ``t``, ``loss``, ``perplexity``,
        ``accuracy`` curves, ``loss_barrier``, ``loss_convexity_gap`` and ``computed``.
    """
    documents = make_text_task("pretraining_text", texts)
    task = subset(documents, min(study.mlm_eval_size, len(documents)), seed=0)
    settings = EvalSettings(batch_size=64, max_length=study.max_length)
    ts = even_grid(study.points)
    rows = []
    for a, b in pairwise(checkpoints):
        walk = _walk([a, b], task, None, settings, ts, store, device, progress)
        rows.append(
            {
                "from_step": int(a.tags.get("step", len(rows))),
                "to_step": int(b.tags.get("step", len(rows) + 1)),
                "documents": len(task),
                "t": [p.t for p in walk.points],
                **{m: walk.curve(m).tolist() for m in ("loss", "perplexity", "accuracy")},
                "loss_barrier": walk.summary["loss"]["barrier_height"],
                "loss_convexity_gap": walk.summary["loss"]["convexity_gap"],
                "computed": walk.computed,
            }
        )
    return rows


def _parts(task: Task, study: PretrainingStudy) -> dict[str, Task]:
    """Finetuning rows, the probe's fitting rows (training data, as Gueta et al. fit it) and
    held-out test rows, all seeded."""
    parts = split(task, seed=0)
    train, test = parts["train"], parts["test"]
    return {
        "train": subset(train, min(study.train_size or len(train), len(train)), seed=0),
        "probe": subset(train, min(study.probe_train, len(train)), seed=1),
        "test": subset(test, min(study.eval_size, len(test)), seed=0),
    }


def _finetune_all(checkpoint, step, study, tasks, out_dir, device) -> dict[str, Checkpoint]:
    common = {
        "base": str(checkpoint.path),
        "steps": study.finetune_steps,
        "batch_size": study.batch_size,
        "lr": study.lr,
        "max_length": study.max_length,
    }
    plan = {
        "a0": ("task_a", study.seeds[0]),
        "a1": ("task_a", study.seeds[1]),
        "b0": ("task_b", study.seeds[0]),
    }
    runs = {}
    for label, (key, seed) in plan.items():
        name = f"step{step}-{key[-1]}-seed{seed}"  # e.g. step100-a-seed0
        config = FinetuneConfig(name=name, head_seed=seed, data_seed=seed, **common)
        runs[label] = finetuned(config, tasks[key]["train"], out_dir, device=device)
    return runs


def _walk(anchors, task, probe, settings, ts, store, device, progress) -> PathWalk:
    engine = Engine(anchors, task, settings=settings, device=device, probe=probe)
    return walk_path(engine, ts, store=store, progress=progress)


def _summary(walk: PathWalk) -> dict[str, Any]:
    """Curves and summaries of a walk, in a compact JSON-able form."""
    return {
        "task": walk.task,
        "t": [p.t for p in walk.points],
        "loss": walk.curve("loss").tolist(),
        "accuracy": walk.curve("accuracy").tolist(),
        "loss_barrier": walk.summary["loss"]["barrier_height"],
        "loss_convexity_gap": walk.summary["loss"]["convexity_gap"],
        "accuracy_barrier": walk.summary["accuracy"]["barrier_height"],
        "endpoint_accuracy": [
            walk.points[0].metrics["accuracy"],
            walk.points[-1].metrics["accuracy"],
        ],
        "computed": walk.computed,
    }


def pretrain_and_study(
    config: PretrainConfig,
    study: PretrainingStudy,
    out_dir: str | Path,
    *,
    texts: list[str] | None = None,
    text_source: str = "bbc_news",
    num_texts: int | None = None,
    device: str = "cpu",
    progress: bool = False,
    tasks: tuple[Task, Task] | None = None,
) -> dict[str, Any]:
    """The whole study: pretrain (or read back a finished run), then :func:`study_pretraining`
    over every saved checkpoint, with results in ``out_dir/results.sqlite``.

    Args:
        config: The pretraining run; it saves under ``out_dir/pretrain``.
        texts: Pretraining texts; default ``raw_texts(text_source, num_texts, seed=config.seed)``.
    """
    out_dir = Path(out_dir)
    mlm_source = "training"
    if texts is None:
        texts = raw_texts(text_source, num_texts, seed=config.seed)
        held_out = _held_out(texts, text_source) if study.mlm_eval_size else []
        mlm_texts, mlm_source = (held_out, "held-out") if held_out else (texts, "training")
    else:
        mlm_texts = texts
    checkpoints = pretrained_checkpoints(
        config, texts, out_dir / "pretrain", device=device, progress=progress
    )
    store = ResultStore(out_dir / "results.sqlite")
    try:
        result = study_pretraining(
            checkpoints,
            study,
            out_dir,
            store=store,
            device=device,
            progress=progress,
            tasks=tasks,
            mlm_texts=mlm_texts,
        )
    finally:
        store.close()
    result["pretraining"] = {**config.model_dump(), "texts": len(texts), "source": text_source}
    if "mlm_paths" in result:
        result["mlm_texts"] = mlm_source  # held-out texts of the source, or the training texts
    return result


def _held_out(texts: list[str], source: str) -> list[str]:
    """The source's texts that pretraining did not draw (none when it used them all)."""
    used = set(texts)
    return [t for t in raw_texts(source) if t not in used]
