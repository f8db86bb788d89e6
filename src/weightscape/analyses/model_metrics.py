"""Per-model measurements: each model's metrics on a task, and its epsilon-sharpness.

Each model's own evaluation is a one-hot point, so it goes through the executor and store like
any other point: a model evaluated on a diagnostic set once is never evaluated there again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from weightscape.analyses.sharpness import epsilon_sharpness
from weightscape.evaluation.engine import EngineSpec
from weightscape.metrics import point_metric_names
from weightscape.runtime.executor import Executor, InProcessExecutor
from weightscape.runtime.store import ResultStore

METRICS = point_metric_names()  # every registered point metric, in result order


def evaluate_models(
    spec: EngineSpec,
    *,
    store: ResultStore | None = None,
    executor: Executor | None = None,
    progress: bool = False,
) -> dict[str, np.ndarray]:
    """Every anchor of ``spec`` evaluated on its own: metric -> array of one value per model."""
    n = len(spec.anchors)
    results = (executor or InProcessExecutor()).run(
        spec, np.eye(n), store, progress=progress, description=spec.task.name
    )
    names = point_metric_names(spec.task.num_labels)  # binary_f1 only on 2-class tasks
    return {m: np.array([r.result.metrics[m] for r in results]) for m in names}


def models_sharpness(
    spec: EngineSpec,
    *,
    steps: int,
    eps: float = 1e-5,
    lr: float = 8e-5,
    accumulation: int = 4,
    mode: str = "eval",
    accumulate: str = "mean",
    progress: bool = False,
) -> np.ndarray:
    """Keskar et al.'s epsilon-sharpness of every anchor on ``spec.task`` (one value each).

    Juneja et al. use 8192 ascent steps on 32768 examples in train mode (the ``juneja`` entry of
    :data:`~weightscape.analyses.sharpness.SHARPNESS_PRESETS`); on a CPU far fewer ``steps``
    are affordable, so report the setting with the numbers. The batches are the evaluator's
    (``spec.settings.batch_size`` examples each); ``mode`` and ``accumulate`` are as
    :func:`~weightscape.analyses.sharpness.epsilon_sharpness`.
    """
    import torch
    from tqdm.auto import tqdm

    from weightscape.evaluation.evaluator import TaskLogits

    engine = spec.build()
    labels = torch.as_tensor(engine.evaluator.labels)
    # Equal-size batches: the ascent averages per-batch losses (evaluation's token-budget
    # batches vary in size, which would weight examples unequally).
    equal = engine.evaluator.equal_batches()
    batches = [(inputs, labels[torch.as_tensor(idx)]) for idx, inputs in equal]
    read = TaskLogits(engine.working.model.config, spec.task, spec.settings)  # by label name

    def loss_fn(model, batch):
        inputs, y = batch
        return torch.nn.functional.cross_entropy(read(model(**inputs).logits), y)

    out = []
    for i in tqdm(range(len(spec.anchors)), desc="sharpness", disable=not progress):
        engine.working.write(engine.anchors, np.eye(len(spec.anchors))[i], engine.space)
        result = epsilon_sharpness(
            engine.working.model,
            loss_fn,
            batches,
            eps=eps,
            steps=steps,
            lr=lr,
            accumulation=accumulation,
            params=engine.space,
            mode=mode,
            accumulate=accumulate,
        )
        out.append(result["sharpness"])
    return np.array(out)


def spec_for(
    spec: EngineSpec, task, label_map: str | None = None, anchors: Sequence | None = None
) -> EngineSpec:
    """The same engine on another task (and label map, and anchors)."""
    settings = type(spec.settings)(**{**spec.settings.model_dump(), "label_map": label_map})
    return replace(
        spec,
        task=task,
        settings=settings,
        anchors=tuple(anchors) if anchors is not None else spec.anchors,
    )
