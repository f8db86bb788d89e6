"""Regions of finetuned models: one set of anchors, generalised losses on target tasks.

Gueta et al. (2023) compare models finetuned on different datasets by a generalised loss (a new
linear head on the frozen encoder, :mod:`weightscape.evaluation.probe`), at three granularities:
models of one dataset, of one task family, and of every task against random models. A
:class:`RegionStudy` holds what every such comparison shares: the zoo's models, the pretrained
model and random directions about it as extra anchors (:mod:`.region_anchors`), the Gram
matrix of all anchors' task vectors, and one engine spec per target task. Every point of every
comparison (a model, a hull sample, an extrapolated or moved point) is a coefficient row over
that one anchor list, evaluated through the executor and the store, so a model's loss on a
target is computed once and reused by every group, level and curve that needs it.

:meth:`RegionStudy.plan` runs the same comparisons without evaluating anything and counts the
distinct points they ask for (by their store keys), so the cost of a protocol is known before
the first forward pass.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from weightscape.analyses.region_anchors import pretrained_anchor, random_direction_anchor
from weightscape.analyses.weight_stats import gram_matrix
from weightscape.analyses.zoo_groups import dataset_of
from weightscape.data import Task, load_task, split, subset
from weightscape.errors import WeightscapeError, unknown_name_error
from weightscape.evaluation.engine import EngineSpec
from weightscape.evaluation.evaluator import EvalSettings
from weightscape.evaluation.keys import spec_key
from weightscape.evaluation.probe import Probe, ProbeSettings
from weightscape.evaluation.result import PointResult
from weightscape.models.checkpoint import Checkpoint
from weightscape.models.space import ParameterSpace
from weightscape.runtime.executor import Evaluated, Executor, InProcessExecutor
from weightscape.runtime.store import ResultStore

__all__ = ["METRICS", "PointPlan", "RegionStudy", "RegionTarget", "load_targets"]

METRICS = ("loss", "accuracy")


@dataclass(frozen=True)
class RegionTarget:
    """A target task of the generalised loss: probe training data and test data."""

    name: str
    train: Task
    test: Task


def load_targets(
    names: Sequence[str], *, train_size: int = 512, test_size: int = 256, seed: int = 0
) -> dict[str, RegionTarget]:
    """Targets from task names: seeded subsets of their train and test splits (seed-0 splits,
    the ones the zoo was trained on, so test examples were never trained on)."""
    targets = {}
    for name in names:
        parts = split(load_task(name))
        targets[name] = RegionTarget(
            name,
            subset(parts["train"], train_size, seed=seed),
            subset(parts["test"], test_size, seed=seed),
        )
    return targets


@dataclass
class RegionStudy:
    """A zoo seen as regions, with everything its comparisons share.

    Args:
        models: The finetuned models (a zoo), each tagged with its dataset.
        base: The pretrained model they were finetuned from.
        targets: Target tasks by name; a group's target is its dataset's name.
        out_dir: Where the derived anchors (pretrained, random directions) are written.
        group_tag: The tag whose value names a model's dataset (``dataset``).
        family_tag: The tag naming its task family (``family``), or None.
        random_directions: How many random-direction anchors to add about the pretrained model.
        seed: Seed of the random directions and of hull samples.
        space: Tensors that take part in task vectors and combinations (heads never do).
        settings: Forward-pass settings; ``probe``: the linear head's settings.
    """

    models: Sequence[Checkpoint]
    base: Checkpoint
    targets: Mapping[str, RegionTarget]
    out_dir: str | Path
    group_tag: str = "dataset"
    family_tag: str | None = "family"
    random_directions: int = 3
    seed: int = 0
    space: ParameterSpace = field(default_factory=lambda: ParameterSpace("no-head"))
    settings: EvalSettings = field(default_factory=EvalSettings)
    probe: ProbeSettings = field(default_factory=ProbeSettings)
    executor: Executor | None = None
    store: ResultStore | None = None
    device: str = "auto"
    progress: bool = False

    def __post_init__(self) -> None:
        self.models = list(self.models)
        if len(self.models) < 2:
            raise WeightscapeError(
                f"A region study needs at least 2 models. Got {len(self.models)}."
            )
        self.groups = self._groups(self.group_tag)
        self.families = self._groups(self.family_tag) if self.family_tag else {}
        missing = sorted(set(self.groups) - set(self.targets))
        if missing:
            raise WeightscapeError(
                f"No target task for the datasets {missing} of the zoo. Give targets for every "
                f"'{self.group_tag}' of the zoo (have: {sorted(self.targets)})."
            )
        # One working model per target: comparisons alternate between targets.
        self.executor = self.executor or InProcessExecutor(max_engines=len(self.targets))
        self._anchors: list[Checkpoint] | None = None
        self._model_gram: np.ndarray | None = None
        self._gram: np.ndarray | None = None
        self._raw_gram: np.ndarray | None = None

    def _groups(self, tag: str) -> dict[str, list[int]]:
        groups: dict[str, list[int]] = {}
        for i, model in enumerate(self.models):
            if tag not in model.tags:
                available = sorted({k for m in self.models for k in m.tags})
                error = unknown_name_error("tag", tag, available)
                raise WeightscapeError(f"{error} (model '{model.name}' has no such tag)")
            value = model.tags[tag]
            key = dataset_of(value) if tag == self.group_tag else str(value)
            groups.setdefault(key, []).append(i)
        return groups

    def family_targets(self, family: str) -> list[str]:
        """The datasets (targets) of the models of one family."""
        return sorted(
            {g for g, members in self.groups.items() if members[0] in self.families[family]}
        )

    # Anchors: the models, the pretrained model, then the random directions.
    @property
    def pretrained_index(self) -> int:
        return len(self.models)

    @property
    def random_indices(self) -> list[int]:
        return [len(self.models) + 1 + k for k in range(self.random_directions)]

    @property
    def anchors(self) -> list[Checkpoint]:
        """Every anchor, writing the derived ones on first use."""
        if self._anchors is None:
            anchors_dir = Path(self.out_dir) / "anchors"
            pretrained = pretrained_anchor(self.base, self.models[0], anchors_dir)
            norm = float(np.mean(self.task_vector_norms()))
            randoms = [
                random_direction_anchor(pretrained, norm, self.seed + k, anchors_dir, self.space)
                for k in range(self.random_directions)
            ]
            self._anchors = [*self.models, pretrained, *randoms]
        return self._anchors

    def task_vector_norms(self) -> np.ndarray:
        """||w_i - w_pretrained|| of every model over the space (streamed)."""
        if self._model_gram is None:
            self._model_gram = gram_matrix(
                self.models, self.space, base=self.base, skip_missing_in_base=True
            )
        return np.sqrt(np.clip(np.diag(self._model_gram), 0.0, None))

    def gram(self) -> np.ndarray:
        """Gram matrix of every anchor's task vector (about the pretrained anchor)."""
        if self._gram is None:
            pretrained = self.anchors[self.pretrained_index]
            self._gram = gram_matrix(self.anchors, self.space, base=pretrained)
        return self._gram

    def raw_gram(self) -> np.ndarray:
        """Gram matrix of the models' raw weights (about the zero vector of weight space), over
        the same tensors as :meth:`gram`: the lengths of a move toward theta = 0."""
        if self._raw_gram is None:
            self._raw_gram = gram_matrix(self.models, self.space)
        return self._raw_gram

    def one_hot(self, indices: Sequence[int]) -> np.ndarray:
        """Rows that are the anchors ``indices`` themselves."""
        return np.eye(len(self.anchors))[list(indices)]

    def embed(self, members: Sequence[int], rows: np.ndarray) -> np.ndarray:
        """Rows over ``members`` written as rows over every anchor."""
        full = np.zeros((len(rows), len(self.anchors)))
        full[:, list(members)] = rows
        return full

    def spec(self, target: str) -> EngineSpec:
        """The engine spec of the generalised loss on ``target``."""
        if target not in self.targets:
            raise unknown_name_error("target", target, sorted(self.targets))
        task = self.targets[target]
        return EngineSpec(
            anchors=tuple(self.anchors),
            task=task.test,
            space=self.space,
            settings=self.settings,
            device=self.device,
            probe=Probe(task.train, self.probe),
        )

    def evaluate(self, target: str, rows: np.ndarray) -> dict[str, np.ndarray]:
        """Metric -> value of every row on ``target`` (stored, reused when already computed)."""
        results = self.executor.run(
            self.spec(target),
            np.asarray(rows, dtype=np.float64),
            self.store,
            progress=self.progress,
            description=target,
        )
        return {m: np.array([r.result.metrics[m] for r in results]) for m in METRICS}

    def evaluate_on(self, targets: Sequence[str], rows: np.ndarray) -> dict[str, np.ndarray]:
        """Metric -> (len(targets), n_rows) values of every row on each target."""
        per_target = [self.evaluate(t, rows) for t in targets]
        return {m: np.stack([values[m] for values in per_target]) for m in METRICS}

    def plan(self, work: Callable[[], object]) -> PointPlan:
        """Run ``work`` (comparisons of this study) with nothing evaluated, and count its points.

        Every row ``work`` asks for is keyed as the executor keys it, and answered with zeros,
        so the count is exactly what running ``work`` would compute: distinct keys not yet in
        the store (without a store, distinct keys per call). The derived anchors are written
        and the Gram matrices read (no forward pass).
        """
        recorder = _Recorder()
        executor, self.executor = self.executor, recorder
        try:
            work()
        finally:
            self.executor = executor
        return recorder.plan(self.store)


@dataclass(frozen=True)
class PointPlan:
    """What a region protocol evaluates: rows asked for, distinct points, and how many of
    those the store already holds; ``to_evaluate`` is the cost (forward passes and probes)."""

    requested: int
    distinct: int
    stored: int
    by_target: dict[str, int]

    @property
    def to_evaluate(self) -> int:
        return self.distinct - self.stored


_NOTHING = PointResult(
    metrics=dict.fromkeys(METRICS, 0.0),
    predictions=np.zeros(0, dtype=np.int64),
    p_true=np.zeros(0),
    losses=np.zeros(0),
)


class _Recorder:
    """An executor that evaluates nothing: it keys each row and answers zeros."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[str]]] = []
        self._makers: dict[EngineSpec, object] = {}

    def run(self, spec, rows, store=None, *, progress=False, description="points"):
        maker = self._makers.get(spec)
        if maker is None:
            maker = self._makers[spec] = spec.key_maker()
        keys = [spec_key(maker.spec(row)) for row in rows]
        self.calls.append((description, keys))
        return [Evaluated(_NOTHING, True, key) for key in keys]

    def plan(self, store: ResultStore | None) -> PointPlan:
        requested = sum(len(keys) for _, keys in self.calls)
        if store is None:  # the executor only skips rows repeated within one call
            distinct = sum(len(set(keys)) for _, keys in self.calls)
            return PointPlan(requested, distinct, 0, self._by_target(per_call=True))
        unique = dict.fromkeys(key for _, keys in self.calls for key in keys)
        stored = sum(key in store for key in unique)
        return PointPlan(requested, len(unique), stored, self._by_target(per_call=False))

    def _by_target(self, per_call: bool) -> dict[str, int]:
        counts: dict[str, set | int] = {}
        for target, keys in self.calls:
            if per_call:
                counts[target] = counts.get(target, 0) + len(set(keys))
            else:
                counts.setdefault(target, set()).update(keys)
        return {t: c if isinstance(c, int) else len(c) for t, c in sorted(counts.items())}
