"""How far apart two training runs are, step by step (Qin et al. 2022, App. B.2, Fig. 12).

Runs that start from one pretrained model (same head seed, different data orders; or different
init noise) drift apart as they train; the Euclidean distance between their checkpoints at each
saved step shows how fast, and whether they settle. Distances are streamed tensor by tensor
(:func:`~weightscape.analyses.weight_stats.gram_matrix` with the first run's checkpoint as the
base, so the result is ``||b - a||`` summed directly rather than a difference of large norms).

:func:`compare_runs` adds, per step, what Qin et al.'s ``utils/calculate_dist.py`` prints beside
the distance: the distance per parameter, ``||b - a|| / sqrt(N)`` over the N compared scalars
(their "average L2 distance", the "per neuron" of their Fig. 12) and the cosine similarity of the
two flattened weight vectors; and, per layer, the distribution of per-neuron distances: for each
output neuron of a weight matrix, the distance between its incoming weights (the matrix row) and
its bias in the two runs, summarised by quantiles.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from weightscape.analyses.trajectories import runs_by_step
from weightscape.analyses.weight_stats import gram_matrix
from weightscape.errors import WeightscapeError, unknown_name_error
from weightscape.models.checkpoint import Checkpoint, TensorReader
from weightscape.models.space import ParameterSpace, group_of

# Embedding tables are 2-D but their rows are tokens or positions, not neurons.
_EMBEDDING = re.compile(r"embed|(?:^|\.)(?:wte|wpe|shared)\.")
QUANTILES = {"min": 0.0, "q25": 0.25, "median": 0.5, "q75": 0.75, "max": 1.0}
"""The per-neuron distance quantiles reported per layer (``mean`` and ``count`` beside them)."""


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
    steps = _common_steps(run_a, run_b)
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


@dataclass
class RunDistance:
    """Two runs compared at every step both saved.

    Attributes:
        runs: The two runs' names.
        steps: The steps compared, ascending.
        distance: ``||b - a||`` at each step, over the space's floating-point tensors.
        parameters: N, the number of scalars compared.
        cosine: Cosine similarity of the two flattened weight vectors at each step.
        neurons: ``{step: {layer: {"count", "mean", "min", "q25", "median", "q75", "max"}}}``
            of the per-neuron distances (matrix row and bias) of each layer's weight matrices.
    """

    runs: tuple[str, str]
    steps: list[int]
    distance: list[float]
    parameters: int
    cosine: list[float]
    neurons: dict[int, dict[str, dict[str, float]]] = field(default_factory=dict)

    @property
    def per_parameter(self) -> list[float]:
        """``||b - a|| / sqrt(N)``: Qin et al.'s "average L2 distance" at each step."""
        return [d / math.sqrt(self.parameters) for d in self.distance]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form (steps of ``neurons`` as strings, as JSON keys are)."""
        return {
            "runs": list(self.runs),
            "steps": self.steps,
            "parameters": self.parameters,
            "distance": self.distance,
            "per_parameter": self.per_parameter,
            "cosine": self.cosine,
            "neurons": {str(step): layers for step, layers in self.neurons.items()},
        }


def compare_runs(
    run_a: Mapping[int, Checkpoint],
    run_b: Mapping[int, Checkpoint],
    space: ParameterSpace | None = None,
    names: tuple[str, str] = ("a", "b"),
) -> RunDistance:
    """Distance, distance per parameter, cosine and per-neuron distances at every common step.

    A neuron is a row of a 2-D weight matrix (the weights into one output unit) together with
    that unit's bias (the tensor of the same module named ``bias``, when it has one entry per
    row); embedding tables are left out of the neuron statistics (their rows are tokens), as are
    1-D tensors without a matrix (layer norms). Every tensor counts in the distance itself.
    (GPT-2's ``Conv1D`` stores its matrices transposed: there a row is an input unit.)

    Raises:
        WeightscapeError: If the runs saved no step in common, or a checkpoint lacks a tensor of
            the first run's or holds it in another shape.

    >>> import shutil, tempfile, torch
    >>> from safetensors.torch import save_file
    >>> folder = tempfile.mkdtemp()
    >>> def ckpt(name, w, b):
    ...     save_file({"l.weight": torch.tensor(w), "l.bias": torch.tensor(b)},
    ...               f"{folder}/{name}.safetensors")
    ...     return Checkpoint.from_path(f"{folder}/{name}.safetensors")
    >>> a = {1: ckpt("a", [[0.0, 0.0], [0.0, 0.0]], [0.0, 0.0])}
    >>> b = {1: ckpt("b", [[3.0, 0.0], [0.0, 0.0]], [4.0, 0.0])}
    >>> result = compare_runs(a, b)
    >>> result.distance, result.parameters, round(result.per_parameter[0], 4)  # 5 / sqrt(6)
    ([5.0], 6, 2.0412)
    >>> result.neurons[1]["l"]["max"], result.neurons[1]["l"]["min"]
    (5.0, 0.0)
    >>> shutil.rmtree(folder)
    """
    steps = _common_steps(run_a, run_b)
    distances, cosines, neurons, counts = [], [], {}, set()
    for step in steps:
        totals, rows = _step_difference(run_a[step], run_b[step], space or ParameterSpace())
        squared, dot, norm_a, norm_b, count = totals
        distances.append(math.sqrt(squared))
        cosines.append(dot / math.sqrt(norm_a * norm_b) if norm_a > 0 and norm_b > 0 else 0.0)
        neurons[step] = {layer: _quantiles(np.sqrt(np.concatenate(r))) for layer, r in rows.items()}
        counts.add(count)
    if len(counts) != 1:
        raise WeightscapeError(
            f"The runs' checkpoints hold different numbers of weights: {counts}."
        )
    return RunDistance(names, steps, distances, counts.pop(), cosines, neurons)


def _common_steps(run_a: Mapping[int, Checkpoint], run_b: Mapping[int, Checkpoint]) -> list[int]:
    steps = sorted(set(run_a) & set(run_b))
    if not steps:
        raise WeightscapeError(
            f"The runs saved no step in common (one at {sorted(run_a)}, the other at "
            f"{sorted(run_b)}). Finetune both with the same --save-steps."
        )
    return steps


def _step_difference(
    a: Checkpoint, b: Checkpoint, space: ParameterSpace
) -> tuple[tuple[float, float, float, float, int], dict[str, list[np.ndarray]]]:
    """``(||b-a||^2, <a,b>, ||a||^2, ||b||^2, N)`` and each layer's squared neuron distances."""
    ra, rb = TensorReader(a), TensorReader(b)
    names = [n for n in space.select(ra.keys()) if ra.is_floating_point(n)]
    for name in names:
        if name not in rb or rb.shape(name) != ra.shape(name):
            problem = "lacks" if name not in rb else "holds another shape of"
            raise WeightscapeError(
                f"Checkpoint '{b.name}' {problem} the tensor '{name}' of '{a.name}'. Compare runs "
                "of one architecture, or narrow the parameter space (--include/--exclude)."
            )
    squared = dot = norm_a = norm_b = 0.0
    count = 0
    diffs: dict[str, Any] = {}
    for name in names:
        x, y = ra.get(name).double(), rb.get(name).double()
        diff = y - x
        squared += float((diff * diff).sum())
        dot, norm_a = dot + float((x * y).sum()), norm_a + float((x * x).sum())
        norm_b, count = norm_b + float((y * y).sum()), count + diff.numel()
        if diff.ndim == 2 and not _EMBEDDING.search(name):
            diffs[name] = diff
    rows: dict[str, list[np.ndarray]] = {}
    for name, diff in diffs.items():
        per_row = (diff * diff).sum(dim=1)
        bias = name.removesuffix("weight") + "bias" if name.endswith("weight") else None
        if bias in names and ra.shape(bias) == (diff.shape[0],):
            per_row = per_row + (rb.get(bias).double() - ra.get(bias).double()) ** 2
        rows.setdefault(group_of(name, "layer"), []).append(per_row.numpy())
    return (squared, dot, norm_a, norm_b, count), rows


def _quantiles(values: np.ndarray) -> dict[str, float]:
    stats = {"count": int(values.size), "mean": float(values.mean())}
    return stats | {name: float(np.quantile(values, q)) for name, q in QUANTILES.items()}


def compare_zoo_runs(
    checkpoints: Iterable[Checkpoint],
    run_a: str,
    run_b: str,
    space: ParameterSpace | None = None,
    steps: Iterable[int] | None = None,
) -> RunDistance:
    """:func:`compare_runs` for two runs of a zoo, found by their ``run`` and ``step`` tags (as
    ``weightscape finetune --save-steps`` writes them), at ``steps`` (default: all common ones).

    Raises:
        WeightscapeError: For an unknown run, or a step that one of the runs did not save.
    """
    runs = runs_by_step(list(checkpoints))
    for run in (run_a, run_b):
        if run not in runs:
            raise unknown_name_error("run", run, runs)
    first, second = runs[run_a], runs[run_b]
    if steps is not None:
        wanted = sorted(set(steps))
        missing = [s for s in wanted if s not in first or s not in second]
        if missing:
            raise WeightscapeError(
                f"Step(s) {missing} were not saved by both runs ('{run_a}' saved "
                f"{sorted(first)}, '{run_b}' saved {sorted(second)})."
            )
        first = {s: first[s] for s in wanted}
        second = {s: second[s] for s in wanted}
    return compare_runs(first, second, space=space, names=(run_a, run_b))
