"""N x N grids: consistency with single walks, endpoint reuse, resume, and Ray equivalence."""

from __future__ import annotations

import numpy as np
import pytest

from weightscape.analyses.connectivity import ConnectivityGrid, connectivity_grid
from weightscape.analyses.interpolation import walk_path
from weightscape.evaluation.engine import Engine, EngineSpec
from weightscape.evaluation.evaluator import EvalSettings
from weightscape.geometry import even_grid
from weightscape.models.checkpoint import Checkpoint
from weightscape.runtime.executor import InProcessExecutor
from weightscape.runtime.store import ResultStore

POINTS = 5


@pytest.fixture(scope="module")
def spec(tiny_models, tiny_task):
    anchors = tuple(Checkpoint.from_path(p) for p in tiny_models)
    return EngineSpec(anchors, tiny_task, settings=EvalSettings(batch_size=16), device="cpu")


@pytest.fixture(scope="module")
def reference_grid(spec, tmp_path_factory):
    store = ResultStore(tmp_path_factory.mktemp("grid") / "store.sqlite")
    return connectivity_grid(spec, points=POINTS, store=store)


def test_grid_matches_independent_walks(spec, reference_grid):
    for i, j in ((0, 1), (0, 2), (1, 2)):
        engine = Engine(
            [spec.anchors[i], spec.anchors[j]], spec.task, settings=spec.settings, device="cpu"
        )
        walk = walk_path(engine, even_grid(POINTS))
        np.testing.assert_array_equal(reference_grid.curves["loss"][i, j], walk.curve("loss"))
        np.testing.assert_array_equal(reference_grid.curves["loss"][j, i], walk.curve("loss")[::-1])
        assert (
            reference_grid.matrices["loss_convexity_gap"][i, j]
            == walk.summary["loss"]["convexity_gap"]
        )


def test_matrices_are_symmetric_with_zero_diagonal(reference_grid):
    for name, matrix in reference_grid.matrices.items():
        np.testing.assert_array_equal(matrix, matrix.T, err_msg=name)
        assert np.all(np.diag(matrix) == 0), name
        assert np.all(matrix >= 0), name
    assert np.all(
        reference_grid.matrices["loss_convexity_gap"] >= reference_grid.matrices["loss_barrier"]
    )


def test_each_endpoint_is_evaluated_once(reference_grid):
    stats = reference_grid.stats
    # 3 endpoints + 3 pairs x 3 interior points; the pairs' t=0 and t=1 rows are the endpoints.
    assert stats["computed_points"] == 3 + 3 * (POINTS - 2)
    assert stats["rows"] == 3 + 3 * POINTS
    assert stats["forward_passes"] == stats["computed_points"] * 3  # 48 examples / 16
    for i in range(3):
        assert (
            reference_grid.curves["loss"][i, (i + 1) % 3][0]
            == reference_grid.endpoint_metrics["loss"][i]
        )


class _Interrupting(InProcessExecutor):
    """Raises KeyboardInterrupt (as a kill would stop the process) after `limit` evaluations."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def engine(self, spec):
        engine = super().engine(spec)
        evaluate, count = engine.evaluate, [0]

        def limited(row):
            if count[0] == self.limit:
                raise KeyboardInterrupt
            count[0] += 1
            return evaluate(row)

        engine.evaluate = limited
        return engine


def test_interrupted_grid_resumes_to_the_same_matrices(spec, reference_grid, tmp_path):
    store = ResultStore(tmp_path / "store.sqlite")
    with pytest.raises(KeyboardInterrupt):
        connectivity_grid(spec, points=POINTS, store=store, executor=_Interrupting(5))
    assert len(store) == 5
    resumed = connectivity_grid(spec, points=POINTS, store=store)
    assert resumed.stats["computed_points"] == reference_grid.stats["computed_points"] - 5
    for name, matrix in reference_grid.matrices.items():
        np.testing.assert_array_equal(resumed.matrices[name], matrix, err_msg=name)
    again = connectivity_grid(spec, points=POINTS, store=store)
    assert again.stats["computed_points"] == 0


def test_save_and_load_round_trip(reference_grid, tmp_path):
    loaded = ConnectivityGrid.load(reference_grid.save(tmp_path))
    assert loaded.names == reference_grid.names
    for name, matrix in reference_grid.matrices.items():
        np.testing.assert_array_equal(loaded.matrices[name], matrix)
    np.testing.assert_array_equal(loaded.curves["accuracy"], reference_grid.curves["accuracy"])


def test_ray_and_in_process_give_identical_matrices(spec, reference_grid, tmp_path):
    import ray

    from weightscape.runtime.ray_executor import RayExecutor

    store = ResultStore(tmp_path / "ray.sqlite")
    try:
        grid = connectivity_grid(
            spec, points=POINTS, store=store, executor=RayExecutor(workers=2, chunk_rows=4)
        )
    finally:
        ray.shutdown()
    assert grid.stats["computed_points"] == reference_grid.stats["computed_points"]
    for name, matrix in reference_grid.matrices.items():
        np.testing.assert_array_equal(grid.matrices[name], matrix, err_msg=name)
    np.testing.assert_array_equal(grid.curves["loss"], reference_grid.curves["loss"])
    assert len(store) == reference_grid.stats["computed_points"]
