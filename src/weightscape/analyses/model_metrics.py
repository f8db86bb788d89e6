"""Per-model measurements: each model's metrics on a task, and its epsilon-sharpness.

Each model's own evaluation is a one-hot point, so it goes through the executor and store like
any other point: a model evaluated on a diagnostic set once is never evaluated there again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np

from weightscape.analyses.sharpness import epsilon_sharpness
from weightscape.evaluation.engine import EngineSpec
from weightscape.metrics import point_metric_names, task_metric_names
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
    names = task_metric_names(spec.task)  # binary_f1 only on 2-class tasks; LM metrics on text
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
    are affordable, so report the setting with the numbers. The batches and the loss are
    :func:`sharpness_objective`'s; ``mode`` and ``accumulate`` are as
    :func:`~weightscape.analyses.sharpness.epsilon_sharpness`.
    """
    from tqdm.auto import tqdm

    engine = spec.build()
    batches, loss_fn = sharpness_objective(engine, spec)
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


def sharpness_objective(engine, spec: EngineSpec) -> tuple[list, Callable]:
    """The batches and the differentiable batch loss the sharpness ascent uses on ``spec.task``.

    - A classification task: batches of exactly ``spec.settings.batch_size`` examples (the
      ascent averages per-batch losses; evaluation's token-budget batches vary in size, which
      would weight examples unequally), and the cross-entropy of the task's classes (columns
      matched by label name).
    - A text task: the language-model evaluator's own batches and targets (the same masked or
      shifted positions as the loss along paths), and the mean negative log likelihood of the
      batch's target tokens, as transformers' ``labels=`` loss computes it; a batch's documents
      are weighted by their target tokens.
    """
    import torch

    from weightscape.evaluation.evaluator import TaskLogits
    from weightscape.evaluation.lm_evaluator import IGNORE, LMEvaluator

    evaluator = engine.evaluator
    if isinstance(evaluator, LMEvaluator):
        lm_batches = [
            (inputs, target)
            for (_, inputs), target in zip(evaluator.batches, evaluator.targets, strict=True)
        ]

        def lm_loss(model, batch):
            inputs, target = batch
            logits = model(**inputs).logits.float()
            return torch.nn.functional.cross_entropy(
                logits.flatten(0, 1), target.flatten(), ignore_index=IGNORE
            )

        return lm_batches, lm_loss
    labels = torch.as_tensor(evaluator.labels)
    equal = evaluator.equal_batches()
    batches = [(inputs, labels[torch.as_tensor(idx)]) for idx, inputs in equal]
    read = TaskLogits(engine.working.model.config, spec.task, spec.settings)  # by label name

    def loss_fn(model, batch):
        inputs, y = batch
        return torch.nn.functional.cross_entropy(read(model(**inputs).logits), y)

    return batches, loss_fn


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
