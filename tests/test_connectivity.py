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


def test_each_endpoint_is_evaluated_once(reference_grid, spec):
    stats = reference_grid.stats
    # 3 endpoints + 3 pairs x 3 interior points; the pairs' t=0 and t=1 rows are the endpoints.
    assert stats["computed_points"] == 3 + 3 * (POINTS - 2)
    assert stats["rows"] == 3 + 3 * POINTS
    # one pass per batch per computed point: the task's token-budget batches, cut here
    from weightscape.evaluation.evaluator import load_tokenizer, token_budget_batches

    tokenizer = load_tokenizer(spec.tokenizer_dir())
    lengths = [len(tokenizer(text, truncation=True)["input_ids"]) for text in spec.task.text_a]
    batches = len(token_budget_batches(lengths, 16))
    assert stats["forward_passes"] == stats["computed_points"] * batches
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


# --- AUC per unit Euclidean distance, and metrics added after points were stored --------------


def _direct_distance(a: Checkpoint, b: Checkpoint) -> float:
    """||a - b|| over every floating-point tensor, read straight from the safetensors files
    (Juneja et al.'s interpolate_1d.py: sqrt of the summed squared differences)."""
    from safetensors.torch import load_file

    first = load_file(str(a.path / "model.safetensors"))
    second = load_file(str(b.path / "model.safetensors"))
    total = sum(
        float(((first[k].double() - second[k].double()) ** 2).sum())
        for k in first
        if first[k].is_floating_point()
    )
    return total**0.5


def _trapezoid_above_min(curve: np.ndarray, length: float) -> float:
    shifted = curve - curve.min()
    return float(np.sum((shifted[:-1] + shifted[1:]) / 2) * length / (len(curve) - 1))


def test_grid_auc_is_per_unit_euclidean_distance(spec, reference_grid):
    grid = reference_grid
    for i, j in ((0, 1), (0, 2), (1, 2)):
        distance = _direct_distance(spec.anchors[i], spec.anchors[j])
        assert grid.matrices["euclidean"][i, j] == pytest.approx(distance, rel=1e-9)
        curve = grid.curves["loss"][i, j]
        assert grid.matrices["loss_auc"][i, j] == pytest.approx(
            _trapezoid_above_min(curve, distance), rel=1e-9
        )
        assert grid.matrices["loss_auc_t"][i, j] == pytest.approx(
            _trapezoid_above_min(curve, 1.0), rel=1e-12
        )


def test_walk_auc_uses_the_distance_between_its_ends(spec, tmp_path):
    import csv
    import json

    from weightscape.report.walk_outputs import format_table, write_walk

    engine = Engine(list(spec.anchors[:2]), spec.task, settings=spec.settings, device="cpu")
    walk = walk_path(engine, even_grid(POINTS))
    distance = _direct_distance(spec.anchors[0], spec.anchors[1])
    assert walk.endpoint_distance == pytest.approx(distance, rel=1e-9)
    loss = walk.summary["loss"]
    assert loss["auc"] == pytest.approx(_trapezoid_above_min(walk.curve("loss"), distance))
    assert loss["auc_t"] == pytest.approx(_trapezoid_above_min(walk.curve("loss"), 1.0))
    assert "Euclidean distance" in walk.summary["auc_unit"]
    assert "per unit t" in format_table(walk) and "|end - start|" in format_table(walk)
    files = write_walk(walk, tmp_path)
    assert json.loads(files["json"].read_text())["endpoint_distance"] == walk.endpoint_distance
    with files["csv"].open() as handle:
        assert "binary_f1" in next(csv.reader(handle))  # the tiny task has 2 classes


def _old_grid(folder, keep_euclidean: bool) -> None:
    """Turn a saved grid into a format-1 file: no marker, loss_auc per unit t, no loss_auc_t."""
    import json

    meta = json.loads((folder / "grid.json").read_text())
    del meta["grid_format"]
    (folder / "grid.json").write_text(json.dumps(meta))
    with np.load(folder / "grid.npz") as data:
        arrays = {k: data[k] for k in data.files}
    arrays["matrix_loss_auc"] = arrays.pop("matrix_loss_auc_t")
    if not keep_euclidean:
        del arrays["matrix_euclidean"]
    np.savez(folder / "grid.npz", **arrays)


def test_an_old_grid_file_is_recomputed_never_relabelled(reference_grid, tmp_path):
    reference_grid.save(tmp_path / "old")
    _old_grid(tmp_path / "old", keep_euclidean=True)
    loaded = ConnectivityGrid.load(tmp_path / "old")
    for name in ("loss_auc", "loss_auc_t"):
        np.testing.assert_allclose(
            loaded.matrices[name], reference_grid.matrices[name], rtol=1e-12, err_msg=name
        )
    reference_grid.save(tmp_path / "older")
    _old_grid(tmp_path / "older", keep_euclidean=False)
    with pytest.warns(UserWarning, match="loss_auc_t"):
        older = ConnectivityGrid.load(tmp_path / "older")
    assert "loss_auc" not in older.matrices
    np.testing.assert_allclose(older.matrices["loss_auc_t"], reference_grid.matrices["loss_auc_t"])


def test_a_stored_point_without_a_new_metric_reads_with_it(spec, tmp_path):
    import json
    import sqlite3

    from sklearn.metrics import f1_score

    engine = Engine(list(spec.anchors[:2]), spec.task, settings=spec.settings, device="cpu")
    store = ResultStore(tmp_path / "store.sqlite")
    first = walk_path(engine, even_grid(3), store=store)
    store.close()
    # Rewrite every stored row as a store from before binary_f1 was registered would hold it.
    with sqlite3.connect(tmp_path / "store.sqlite") as db:
        for key, metrics in db.execute("SELECT key, metrics FROM points").fetchall():
            old = {k: v for k, v in json.loads(metrics).items() if k != "binary_f1"}
            db.execute("UPDATE points SET metrics = ? WHERE key = ?", (json.dumps(old), key))
    old_store = ResultStore(tmp_path / "store.sqlite")
    assert "binary_f1" not in old_store.get(first.points[0].key).metrics  # no task: as stored
    again = walk_path(engine, even_grid(3), store=old_store)
    assert again.computed == 0
    for point, before in zip(again.points, first.points, strict=True):
        predictions = old_store.get(point.key).predictions
        expected = f1_score(spec.task.labels, predictions, pos_label=1, zero_division=0)
        assert point.metrics["binary_f1"] == pytest.approx(expected, abs=1e-12)
        assert point.metrics == pytest.approx(before.metrics)


def test_a_fully_stored_grid_builds_no_engine(spec, reference_grid, tmp_path, monkeypatch):
    """Keys are made without a model: a rerun whose points are all stored never builds one, and
    returns exactly the stored results."""
    store = ResultStore(tmp_path / "store.sqlite")
    first = connectivity_grid(spec, points=POINTS, store=store)
    assert first.stats["computed_points"] > 0

    def no_build(self):
        raise AssertionError("an engine was built although every point is stored")

    monkeypatch.setattr(EngineSpec, "build", no_build)
    again = connectivity_grid(spec, points=POINTS, store=store)
    assert again.stats["computed_points"] == 0
    for metric in ("loss", "accuracy"):
        np.testing.assert_array_equal(again.curves[metric], first.curves[metric])
    # one point missing: the engine is needed again (and built)
    store._db.execute("DELETE FROM points WHERE rowid = (SELECT MAX(rowid) FROM points)")
    store._db.commit()
    with pytest.raises(AssertionError, match="an engine was built"):
        connectivity_grid(spec, points=POINTS, store=store)


def test_a_fully_stored_walk_builds_no_engine(spec, tmp_path, monkeypatch):
    """``walk_path`` given an engine spec builds the engine only for a missing point."""
    pair = EngineSpec(spec.anchors[:2], spec.task, settings=spec.settings, device="cpu")
    store = ResultStore(tmp_path / "store.sqlite")
    first = walk_path(pair, even_grid(POINTS), store=store)
    assert first.computed == POINTS  # t = 0 and 1 are the endpoints, computed once
    built = walk_path(Engine(list(pair.anchors), pair.task, settings=pair.settings, device="cpu"),
                      even_grid(POINTS))  # fmt: skip
    np.testing.assert_array_equal(first.curve("loss"), built.curve("loss"))
    assert first.endpoint_distance == built.endpoint_distance > 0

    def no_build(self):
        raise AssertionError("an engine was built although every point is stored")

    monkeypatch.setattr(EngineSpec, "build", no_build)
    again = walk_path(pair, even_grid(POINTS), store=store)
    assert again.computed == 0
    assert again.to_dict()["points"] == [{**p, "cached": True} for p in first.to_dict()["points"]]
    assert again.summary == first.summary
