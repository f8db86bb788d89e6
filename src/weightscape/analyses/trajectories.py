"""Basin trajectories: which basin each training run is in, checkpoint by checkpoint.

Juneja et al. (2023) ask when in training a run commits to its basin. Given a zoo in which each
run saved checkpoints at the same steps (``weightscape finetune --save-steps``), this builds the
connectivity grid of the runs at every step (through the store), clusters each, and renames each
step's clusters after the final step's (Hungarian matching), so a row reads as one run's path
through the basins.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from weightscape.analyses.connectivity import ConnectivityGrid, connectivity_grid
from weightscape.errors import WeightscapeError
from weightscape.evaluation.engine import EngineSpec
from weightscape.metrics.clustering import align_labels, spectral_clusters
from weightscape.models.checkpoint import Checkpoint
from weightscape.runtime.executor import Executor
from weightscape.runtime.store import ResultStore


@dataclass
class BasinTrajectory:
    """Cluster membership of runs over training steps.

    Attributes:
        runs: Run names (rows).
        steps: Training steps (columns), ascending.
        labels: (runs, steps) cluster of each run at each step, named after the final step's
            clusters.
        grids: The connectivity grid at each step.
    """

    runs: list[str]
    steps: list[int]
    labels: np.ndarray
    grids: dict[int, ConnectivityGrid] = field(default_factory=dict)

    def switches(self) -> dict[str, int]:
        """How many times each run changes basin between consecutive steps."""
        return {
            run: int(np.sum(np.diff(row) != 0))
            for run, row in zip(self.runs, self.labels, strict=True)
        }

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form."""
        return {
            "runs": self.runs,
            "steps": self.steps,
            "labels": self.labels.tolist(),
            "switches": self.switches(),
        }


def runs_by_step(checkpoints: list[Checkpoint]) -> dict[str, dict[int, Checkpoint]]:
    """Group checkpoints into runs (tag ``run``, else the name before ``@``) by tag ``step``."""
    runs: dict[str, dict[int, Checkpoint]] = defaultdict(dict)
    for c in checkpoints:
        if "step" not in c.tags:
            raise WeightscapeError(
                f"Checkpoint '{c.name}' has no 'step' tag; trajectories need "
                "checkpoints saved by `weightscape finetune --save-steps`."
            )
        runs[str(c.tags.get("run", c.name.split("@")[0]))][int(c.tags["step"])] = c
    return dict(runs)


def _clusters(distances: np.ndarray, k: int | None) -> np.ndarray:
    # Early in training every path may be flat: all distances 0 means one basin, not an error.
    if not np.any(distances > 0):
        return np.zeros(len(distances), dtype=np.int64)
    return spectral_clusters(distances, k=k)


def basin_trajectories(
    checkpoints: list[Checkpoint],
    spec: EngineSpec,
    *,
    points: int = 11,
    matrix: str = "loss_convexity_gap",
    k: int | None = 2,
    store: ResultStore | None = None,
    executor: Executor | None = None,
    progress: bool = False,
) -> BasinTrajectory:
    """Cluster the runs at every step that all of them saved; align to the last step.

    ``spec`` gives the task and settings; its anchors are replaced by each step's checkpoints.
    """
    runs = runs_by_step(checkpoints)
    names = sorted(runs)
    steps = sorted(set.intersection(*(set(r) for r in runs.values())))
    if len(names) < 3 or not steps:
        raise WeightscapeError(
            f"Trajectories need at least 3 runs sharing a saved step; got "
            f"{len(names)} runs with common steps {steps}."
        )
    grids, columns = {}, []
    for step in steps:
        anchors = tuple(runs[name][step] for name in names)
        grid = connectivity_grid(
            replace(spec, anchors=anchors),
            points=points,
            store=store,
            executor=executor,
            progress=progress,
        )
        grids[step] = grid
        columns.append(_clusters(grid.matrices[matrix], k))
    final = columns[-1]
    labels = np.stack([align_labels(final, column) for column in columns], axis=1)
    return BasinTrajectory(runs=names, steps=steps, labels=labels, grids=grids)
