"""Task knowledge along the path from a source minimum to a target minimum (Qin et al. 2022, §Q3).

A source model A (finetuned on task S) and a target model B (finetuned on task T) are joined by
the line phi_j = A + (j/J)(B - A), j = 0..J (Qin et al. use J = 5). Each point is evaluated on
the training examples whose dynamics A and B recorded (``finetune --dynamics-examples``), read
by id from each run's ``dynamics.npz`` so that every example keeps its cartography statistics.
At each step j the newly forgotten source examples F_j and the newly learned target examples M_j
are counted and characterised by their mean confidence and variability (their Fig. 8), together
with the examples that flip back (:mod:`weightscape.metrics.knowledge`).

Which head classifies the points:

* ``own`` (S and T share a label set, as Qin's MNLI -> ANLI or two sentiment datasets): the path
  mixes every tensor, heads included, and each point classifies with its own (mixed) head;
* ``probe`` (label sets differ, e.g. sentiment -> NLI, where A's head says nothing about T): the
  generalised loss (:mod:`weightscape.evaluation.probe`): heads are ignored and, for each task, a
  linear head is fitted over the point's frozen encoder on ``probe_train`` of the task's rows
  that are *not* tracked (so the tracked examples are classified by a head that never saw them).

``auto`` picks ``own`` when the label names agree and ``probe`` otherwise. Points go through the
executor and the results store, so a rerun computes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from weightscape.data import Task, subset
from weightscape.errors import WeightscapeError, unknown_name_error
from weightscape.evaluation.engine import EngineSpec
from weightscape.evaluation.evaluator import EvalSettings
from weightscape.evaluation.probe import Probe, ProbeSettings
from weightscape.geometry import even_grid, get_path
from weightscape.metrics.cartography import REGIONS, Cartography, cartography_regions
from weightscape.metrics.knowledge import Flips, flips, set_means
from weightscape.models.checkpoint import Checkpoint
from weightscape.models.space import ParameterSpace
from weightscape.runtime.executor import Executor, InProcessExecutor
from weightscape.runtime.store import ResultStore
from weightscape.training.dynamics import TrainingDynamics, find_dynamics, load_dynamics
from weightscape.validation import check_int

__all__ = ["HEADS", "KnowledgePath", "TrackedKnowledge", "knowledge_along_path", "tracked_task"]

HEADS = ("auto", "own", "probe")


@dataclass
class TrackedKnowledge:
    """One task's tracked examples along the path.

    Attributes:
        task: The task's name.
        run: The checkpoint whose training dynamics characterise the examples.
        ids: Row ids of the examples, shape (n,).
        correct: Correctness at each point, shape (J+1, n).
        cartography: Confidence, variability and correctness from the run's training dynamics.
        regions: Cartography region code per example (:data:`REGIONS`).
        flips: The examples forgotten, learned, re-learned and re-forgotten at each step.
    """

    task: str
    run: str
    ids: np.ndarray
    correct: np.ndarray
    cartography: Cartography
    regions: np.ndarray
    flips: Flips

    def accuracy(self) -> list[float]:
        """Fraction of the examples right at each point."""
        return self.correct.mean(axis=1).tolist()

    def region_counts(self, masks: np.ndarray) -> list[dict[str, int]]:
        """How many of each step's selected examples lie in each cartography region."""
        return [
            {name: int(np.sum(row & (self.regions == code))) for code, name in enumerate(REGIONS)}
            for row in masks
        ]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form (per-example arrays included)."""
        return {
            "task": self.task,
            "run": self.run,
            "ids": self.ids.tolist(),
            "correct": self.correct.astype(int).tolist(),
            "accuracy": self.accuracy(),
            "cartography": self.cartography.to_dict(),
            "regions": [REGIONS[c] for c in self.regions],
            "flip_counts": self.flips.counts(),
        }


@dataclass
class KnowledgePath:
    """The source's and target's tracked examples along the path, and what flips at each step."""

    source: str
    target: str
    ts: np.ndarray
    head: str
    source_examples: TrackedKnowledge
    target_examples: TrackedKnowledge
    computed: int = 0

    def steps(self) -> list[dict[str, Any]]:
        """One row per step j = 1..J: Qin's F_j and M_j with their mean statistics, the
        examples that flip back, and both accuracies at phi_j (NaN means: an empty set)."""
        src, tgt = self.source_examples, self.target_examples
        forgotten, learned = src.flips.forgotten, tgt.flips.learned
        stats = {
            "forgotten_confidence": set_means(forgotten, src.cartography.confidence),
            "forgotten_variability": set_means(forgotten, src.cartography.variability),
            "learned_confidence": set_means(learned, tgt.cartography.confidence),
            "learned_variability": set_means(learned, tgt.cartography.variability),
        }
        f_regions, m_regions = src.region_counts(forgotten), tgt.region_counts(learned)
        rows = []
        for j in range(1, len(self.ts)):
            row: dict[str, Any] = {"step": j, "t": float(self.ts[j])}
            row["forgotten"] = int(forgotten[j - 1].sum())
            row["learned"] = int(learned[j - 1].sum())
            row.update({k: float(v[j - 1]) for k, v in stats.items()})
            row["source_relearned"] = int(src.flips.relearned[j - 1].sum())
            row["target_reforgotten"] = int(tgt.flips.reforgotten[j - 1].sum())
            row["source_accuracy"] = float(src.correct[j].mean())
            row["target_accuracy"] = float(tgt.correct[j].mean())
            row["forgotten_regions"], row["learned_regions"] = f_regions[j - 1], m_regions[j - 1]
            rows.append(row)
        return rows

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form of everything (NaN for empty sets' means)."""
        return {
            "source": self.source,
            "target": self.target,
            "ts": self.ts.tolist(),
            "head": self.head,
            "computed": self.computed,
            "steps": self.steps(),
            "source_examples": self.source_examples.to_dict(),
            "target_examples": self.target_examples.to_dict(),
        }


def run_dynamics(checkpoint: Checkpoint) -> TrainingDynamics:
    """The training dynamics of the run ``checkpoint`` came from, or a clear error."""
    path = find_dynamics(checkpoint.path)
    if path is None:
        raise WeightscapeError(
            f"Checkpoint '{checkpoint.name}' ({checkpoint.path}) has no training dynamics "
            "(dynamics.npz beside it or in its run folder). Finetune it with "
            "--dynamics-examples N (e.g. 512) to record them."
        )
    return load_dynamics(path)


def tracked_task(task: Task, dynamics: TrainingDynamics, run: str) -> Task:
    """The rows of ``task`` whose ids the run tracked, in the dynamics' order.

    Raises:
        WeightscapeError: If ``task`` lacks some ids or their labels differ from the recorded
            ones (the run was finetuned on other data).
    """
    position = {int(i): p for p, i in enumerate(task.ids)}
    missing = [int(i) for i in dynamics.ids if int(i) not in position]
    hint = (
        f"Give the task run '{run}' was finetuned on (its dynamics were recorded on "
        f"'{dynamics.task}')."
    )
    if missing:
        raise WeightscapeError(
            f"Task '{task.name}' lacks {len(missing)} of the {len(dynamics.ids)} examples run "
            f"'{run}' tracked (ids {missing[:5]}...). {hint}"
        )
    rows = task.select([position[int(i)] for i in dynamics.ids], name=f"{task.name}:tracked")
    if not np.array_equal(rows.labels, dynamics.labels):
        differ = int(np.sum(rows.labels != dynamics.labels))
        raise WeightscapeError(
            f"Task '{task.name}' labels {differ} of the examples run '{run}' tracked otherwise "
            f"than its training data did. {hint}"
        )
    return rows


def resolve_head(head: str, source_task: Task, target_task: Task) -> str:
    """``own`` or ``probe``: ``auto`` is ``own`` exactly when the label names agree."""
    if head not in HEADS:
        raise unknown_name_error("head", head, HEADS)
    same = tuple(source_task.label_names) == tuple(target_task.label_names)
    if head == "auto":
        return "own" if same else "probe"
    if head == "own" and source_task.num_labels != target_task.num_labels:
        raise WeightscapeError(
            f"The own heads cannot classify both tasks: '{source_task.name}' has "
            f"{source_task.num_labels} labels and '{target_task.name}' {target_task.num_labels}. "
            "Use --head probe (a linear head fitted per task over the frozen encoder)."
        )
    return head


def probe_for(task: Task, tracked: Task, n: int, settings: ProbeSettings) -> Probe:
    """A probe fitted on up to ``n`` seeded rows of ``task`` that are not tracked."""
    keep = np.flatnonzero(~np.isin(task.ids, tracked.ids))
    if keep.size == 0:
        raise WeightscapeError(
            f"Every row of task '{task.name}' is tracked, so none is left to fit the probe on. "
            "Give the full dataset, or track fewer examples (--dynamics-examples)."
        )
    rest = task.select(keep, name=f"{task.name}:probe")
    return Probe(subset(rest, n, seed=0), settings)


def knowledge_along_path(
    source: Checkpoint,
    target: Checkpoint,
    source_task: Task,
    target_task: Task,
    *,
    steps: int = 5,
    head: str = "auto",
    probe_train: int = 256,
    probe_settings: ProbeSettings | None = None,
    space: ParameterSpace | None = None,
    settings: EvalSettings | None = None,
    device: str = "auto",
    tokenizer: str | Path | None = None,
    store: ResultStore | None = None,
    executor: Executor | None = None,
    progress: bool = False,
) -> KnowledgePath:
    """Evaluate the line from ``source`` to ``target`` on both runs' tracked training examples.

    Args:
        source: The source minimum (phi_0), finetuned on ``source_task`` with dynamics recorded.
        target: The target minimum (phi_J), finetuned on ``target_task`` likewise.
        source_task: Data holding the source run's tracked rows (e.g. the whole dataset).
        target_task: Likewise for the target run.
        steps: J, the number of steps; the points are t = j / J.
        head: ``auto``, ``own`` or ``probe`` (module docstring).
        probe_train: Untracked rows each probe is fitted on (``probe`` only).
        probe_settings: The probe's regularisation (``probe`` only).
        space, settings, device, tokenizer: As for the :class:`~.engine.Engine`.
        store: Where points are looked up and committed.
        executor: Evaluates the points (default: in this process).
        progress: Show progress bars.
    """
    steps = check_int(steps, "steps", "knowledge", 1)
    probe_train = check_int(probe_train, "probe_train", "knowledge", 1)
    head = resolve_head(head, source_task, target_task)
    ts = even_grid(steps + 1)
    rows = get_path("linear", 2).coefficients(ts)
    runs = ((source, source_task), (target, target_task))
    # Every input is checked before the first point is evaluated.
    dynamics = [run_dynamics(run) for run, _ in runs]
    examples = [
        tracked_task(task, d, run.name) for (run, task), d in zip(runs, dynamics, strict=True)
    ]
    executor = executor or InProcessExecutor()
    tracked, computed = [], 0
    for (run, task), recorded, rows_of_task in zip(runs, dynamics, examples, strict=True):
        probe = None
        if head == "probe":
            probe = probe_for(task, rows_of_task, probe_train, probe_settings or ProbeSettings())
        spec = EngineSpec(
            (source, target),
            rows_of_task,
            space=space or ParameterSpace(),
            settings=settings or EvalSettings(),
            device=device,
            tokenizer=tokenizer,
            probe=probe,
        )
        evaluated = executor.run(spec, rows, store, progress=progress, description=task.name)
        computed += sum(not e.cached for e in evaluated)
        correct = np.stack([e.result.correct(rows_of_task.labels) for e in evaluated])
        tracked.append(_knowledge(task.name, run.name, rows_of_task, correct, recorded))
    return KnowledgePath(source.name, target.name, ts, head, *tracked, computed=computed)


def _knowledge(
    name: str, run: str, examples: Task, correct: np.ndarray, dynamics: TrainingDynamics
) -> TrackedKnowledge:
    stats = dynamics.cartography()
    return TrackedKnowledge(
        task=name,
        run=run,
        ids=np.asarray(examples.ids),
        correct=correct,
        cartography=stats,
        regions=cartography_regions(stats.confidence, stats.variability),
        flips=flips(correct),
    )
