"""How far apart two training runs are, step by step.

Runs that start from one pretrained model (same head seed, different data orders; or different
init noise) drift apart as they train; the Euclidean distance between their checkpoints at each
saved step shows how fast, and whether they settle. Distances are streamed tensor by tensor
(:func:`~weightscape.analyses.weight_stats.gram_matrix` with the first run's checkpoint as the
base, so the result is ``||b - a||`` summed directly rather than a difference of large norms).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from weightscape.analyses.trajectories import runs_by_step
from weightscape.analyses.weight_stats import gram_matrix
from weightscape.errors import WeightscapeError, unknown_name_error
from weightscape.models.checkpoint import Checkpoint
from weightscape.models.space import ParameterSpace


def distance_over_steps(
    run_a: Mapping[int, Checkpoint],
    run_b: Mapping[int, Checkpoint],
    space: ParameterSpace | None = None,
) -> dict[int, float]:
    """Euclidean distance between the runs' checkpoints at every step both saved.

    Args:
        run_a: Checkpoints of one run by training step.
        run_b: Checkpoints of the other run by training step.
        space: Which tensors count (all floating-point tensors by default; ``tuned`` for LoRA
            or adapter runs).

    Returns:
        ``{step: distance}`` in ascending step order.

    Raises:
        WeightscapeError: If the runs saved no step in common.

    >>> import shutil, tempfile, torch
    >>> from safetensors.torch import save_file
    >>> folder = tempfile.mkdtemp()
    >>> def ckpt(name, value):
    ...     save_file({"w": torch.full((2, 2), value)}, f"{folder}/{name}.safetensors")
    ...     return Checkpoint.from_path(f"{folder}/{name}.safetensors")
    >>> a = {1: ckpt("a1", 0.0), 2: ckpt("a2", 1.0)}
    >>> b = {1: ckpt("b1", 0.5), 2: ckpt("b2", 4.0), 3: ckpt("b3", 9.0)}
    >>> distance_over_steps(a, b)
    {1: 1.0, 2: 6.0}
    >>> shutil.rmtree(folder)
    """
    steps = sorted(set(run_a) & set(run_b))
    if not steps:
        raise WeightscapeError(
            f"The runs saved no step in common (one at {sorted(run_a)}, the other at "
            f"{sorted(run_b)}). Finetune both with the same --save-steps."
        )
    distances = {}
    for step in steps:
        gram = gram_matrix([run_b[step]], space=space, base=run_a[step])
        distances[step] = math.sqrt(max(float(gram[0, 0]), 0.0))
    return distances


def run_distance(
    checkpoints: Iterable[Checkpoint],
    run_a: str,
    run_b: str,
    space: ParameterSpace | None = None,
) -> dict[int, float]:
    """:func:`distance_over_steps` for two runs of a zoo, found by their ``run`` and ``step``
    tags (as ``weightscape finetune`` writes them)."""
    runs = runs_by_step(list(checkpoints))
    for run in (run_a, run_b):
        if run not in runs:
            raise unknown_name_error("run", run, runs)
    return distance_over_steps(runs[run_a], runs[run_b], space=space)
