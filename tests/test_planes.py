"""The plane through three models: Gram-Schmidt from inner products, grids, exact models, CLI."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from weightscape.errors import WeightscapeError
from weightscape.geometry.planes import model_rows, plane_basis, plane_coefficients, plane_grid

# theta_1 = (1, 2, 3), theta_2 = theta_1 + (2, 0, 0), theta_3 = theta_1 + (1, 1, 0)
POINTS = np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 3.0], [2.0, 3.0, 3.0]])


def _gram(points: np.ndarray, about_first: bool = True) -> np.ndarray:
    centred = points - points[0] if about_first else points
    return centred @ centred.T


def _gram_schmidt(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    d2, d3 = points[1] - points[0], points[2] - points[0]
    u = d2 / np.linalg.norm(d2)
    w = d3 - (d3 @ u) * u
    return u, w / np.linalg.norm(w)


# ---- geometry: pure numpy -------------------------------------------------------------------


@pytest.mark.parametrize("about_first", [True, False])
def test_basis_reproduces_explicit_gram_schmidt(about_first):
    basis = plane_basis(_gram(POINTS, about_first))
    u, v = _gram_schmidt(POINTS)
    np.testing.assert_allclose(basis.u @ POINTS, u, atol=1e-12)
    np.testing.assert_allclose(basis.v @ POINTS, v, atol=1e-12)
    np.testing.assert_allclose(basis.u, [-0.5, 0.5, 0.0])
    np.testing.assert_allclose(basis.v, [-0.5, -0.5, 1.0])
    assert basis.u.sum() == pytest.approx(0.0) and basis.v.sum() == pytest.approx(0.0)


def test_models_sit_at_their_plane_coordinates():
    basis = plane_basis(_gram(POINTS))
    np.testing.assert_allclose(basis.model_xy, [[0.0, 0.0], [2.0, 0.0], [1.0, 1.0]])
    obtuse = np.array([[0.0, 0.0], [3.0, 0.0], [-1.0, 2.0]])
    np.testing.assert_allclose(plane_basis(_gram(obtuse)).model_xy, obtuse)


def test_models_coordinates_give_exact_one_hot_rows():
    rng = np.random.default_rng(0)
    for _ in range(20):
        basis = plane_basis(_gram(rng.normal(size=(3, 7))))
        rows = plane_coefficients(basis, basis.model_xy[:, 0], basis.model_xy[:, 1])
        np.testing.assert_array_equal(rows, np.eye(3))
    np.testing.assert_array_equal(model_rows(), np.eye(3))


def test_grid_covers_the_widened_box_in_row_major_order():
    basis = plane_basis(_gram(POINTS))
    xs, ys, rows = plane_grid(basis, resolution=(8, 5), margin=0.2)
    np.testing.assert_allclose([xs[0], xs[-1], ys[0], ys[-1]], [-0.4, 2.4, -0.2, 1.2])
    assert rows.shape == (40, 3)
    np.testing.assert_allclose(rows.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_array_equal(rows[3 * 8 + 5], plane_coefficients(basis, xs[5], ys[3]))


def test_grid_nodes_land_exactly_on_models_when_the_resolution_lines_up():
    basis = plane_basis(_gram(POINTS))
    xs, ys, rows = plane_grid(basis, resolution=(8, 8), margin=0.2)  # 7 steps of 0.2 box
    assert xs[1] == 0.0 and ys[1] == 0.0 and xs[6] == 2.0 and ys[6] == 1.0
    grid = rows.reshape(8, 8, 3)
    np.testing.assert_array_equal(grid[1, 1], [1.0, 0.0, 0.0])
    np.testing.assert_array_equal(grid[1, 6], [0.0, 1.0, 0.0])


@pytest.mark.parametrize(
    ("points", "message"),
    [
        ([[1, 1], [1, 1], [0, 2]], r"theta_2 \('b'\) and theta_1 \('a'\) are the same point"),
        ([[1, 1], [0, 2], [1, 1]], r"theta_3 \('c'\) and theta_1 \('a'\) are the same point"),
        ([[1, 1], [0, 2], [0, 2]], r"theta_3 \('c'\) and theta_2 \('b'\) are the same"),
        ([[0, 0], [1, 1], [3, 3]], "lie on one line"),
        ([[0, 0], [1, 1], [-2, -2]], "angle at theta_1 .* is 180 degrees"),
        ([[0, 0], [1, 0], [1e6, 1e-3]], "lie on one line"),
    ],
)
def test_degenerate_planes_are_refused_by_name(points, message):
    with pytest.raises(WeightscapeError, match=message):
        plane_basis(_gram(np.array(points, dtype=float)), names=("a", "b", "c"))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda b: plane_basis(np.eye(2)), "3 x 3 matrix"),
        (lambda b: plane_basis([[0, 1, 0], [0, 1, 0], [0, 0, 1]]), "symmetric"),
        (lambda b: plane_basis(np.full((3, 3), np.nan)), "finite 3 x 3"),
        (lambda b: plane_grid(b, resolution=(1, 5)), "'resolution' parameter of plane_grid"),
        (lambda b: plane_grid(b, resolution=21), "pair"),
        (lambda b: plane_grid(b, margin=-0.1), "'margin' parameter of plane_grid"),
    ],
)
def test_bad_arguments_are_explained(call, message):
    with pytest.raises(WeightscapeError, match=message):
        call(plane_basis(_gram(POINTS)))


coordinate = st.floats(min_value=-10.0, max_value=10.0)


@given(
    st.integers(min_value=2, max_value=6),
    st.integers(min_value=0, max_value=2**32 - 1),
    coordinate,
    coordinate,
)
def test_rows_reconstruct_their_coordinates(dim, seed, x, y):
    points = np.random.default_rng(seed).normal(size=(3, dim)) * 3.0
    d2, d3 = points[1] - points[0], points[2] - points[0]
    sine = np.linalg.norm(d3 - (d3 @ d2) / (d2 @ d2) * d2) / np.linalg.norm(d3)
    assume(sine > 1e-3 and np.linalg.norm(d2) > 1e-3)
    basis = plane_basis(_gram(points))
    u, v = basis.u @ points, basis.v @ points
    np.testing.assert_allclose([u @ u, v @ v, u @ v], [1.0, 1.0, 0.0], atol=1e-9)
    row = plane_coefficients(basis, x, y)
    assert row.sum() == pytest.approx(1.0, abs=1e-9)
    offset = row @ points - points[0]
    np.testing.assert_allclose([offset @ u, offset @ v], [x, y], atol=1e-7)
    np.testing.assert_allclose(offset, x * u + y * v, atol=1e-7)


# ---- the engine on tiny models --------------------------------------------------------------

RESOLUTION = (8, 8)  # margin 0.2: 7 steps of 0.2 box, so 0 is node 1 on both axes


@pytest.fixture(scope="module")
def plane_run(tiny_models, tiny_task, tmp_path_factory):
    from weightscape.analyses.plane import evaluate_plane
    from weightscape.runtime.store import ResultStore

    spec = _spec(tiny_models, tiny_task)
    store = ResultStore(tmp_path_factory.mktemp("plane") / "results.sqlite")
    return spec, store, evaluate_plane(spec, resolution=RESOLUTION, store=store)


def _spec(folders, task):
    from weightscape.evaluation.engine import EngineSpec
    from weightscape.evaluation.evaluator import EvalSettings
    from weightscape.models.checkpoint import Checkpoint

    anchors = tuple(Checkpoint.from_path(p) for p in folders)
    return EngineSpec(anchors, task, settings=EvalSettings(batch_size=16), device="cpu")


def test_models_points_reproduce_their_own_evaluations_exactly(
    plane_run, tiny_models, tiny_task, tokenizer_dir
):
    from transformers import AutoModelForSequenceClassification

    from weightscape.evaluation.engine import Engine
    from weightscape.evaluation.evaluator import EvalSettings, Evaluator, load_tokenizer
    from weightscape.models.checkpoint import Checkpoint

    _, _, plane = plane_run
    for k, folder in enumerate(tiny_models):
        engine = Engine(
            [Checkpoint.from_path(folder)],
            tiny_task,
            settings=EvalSettings(batch_size=16),
            device="cpu",
        )
        alone = engine.evaluate([1.0])
        model = AutoModelForSequenceClassification.from_pretrained(
            str(folder), trust_remote_code=False
        ).eval()
        evaluator = Evaluator(load_tokenizer(tokenizer_dir), tiny_task, EvalSettings(batch_size=16))
        independent = evaluator.evaluate(model)
        own = {m: float(values[k]) for m, values in plane.model_metrics.items()}
        assert own == alone.metrics == independent.metrics


def test_grid_node_at_theta_1_matches_its_loss(plane_run):
    _, _, plane = plane_run
    (_, _), (norm2, _), (along, _) = plane.model_xy
    assert 0.0 <= along <= norm2  # the box's x range starts at theta_1, so 0 is node 1
    assert plane.xs[1] == 0.0 and plane.ys[1] == 0.0
    assert plane.loss[1, 1] == pytest.approx(plane.model_metrics["loss"][0], rel=1e-6)
    assert plane.accuracy[1, 1] == plane.model_metrics["accuracy"][0]


def test_plane_shapes_stats_and_round_trip(plane_run, tmp_path):
    from weightscape.analyses.plane import PlaneResult

    _, _, plane = plane_run
    assert plane.loss.shape == plane.accuracy.shape == (len(plane.ys), len(plane.xs)) == (8, 8)
    assert np.all(np.isfinite(plane.loss)) and plane.names == ["m0", "m1", "m2"]
    assert plane.stats["rows"] == 64 + 3
    assert plane.stats["computed_points"] == plane.stats["unique_points"] <= 64 + 3
    loaded = PlaneResult.load(plane.save(tmp_path))
    np.testing.assert_array_equal(loaded.loss, plane.loss)
    np.testing.assert_array_equal(loaded.model_xy, plane.model_xy)
    assert loaded.model_metrics.keys() == plane.model_metrics.keys()
    assert loaded.names == plane.names and loaded.stats == plane.stats


def test_rerun_with_the_store_computes_nothing(plane_run):
    from weightscape.analyses.plane import evaluate_plane

    spec, store, plane = plane_run
    again = evaluate_plane(spec, resolution=RESOLUTION, store=store)
    assert again.stats["computed_points"] == 0
    np.testing.assert_array_equal(again.loss, plane.loss)


def test_a_plane_needs_three_distinct_models(tiny_models, tiny_task):
    from weightscape.analyses.plane import evaluate_plane

    with pytest.raises(WeightscapeError, match="exactly 3 models"):
        evaluate_plane(_spec(tiny_models[:2], tiny_task))
    twice = [tiny_models[0], tiny_models[1], tiny_models[0]]
    with pytest.raises(WeightscapeError, match=r"theta_3 \('m0'\) and theta_1 \('m0'\) are the"):
        evaluate_plane(_spec(twice, tiny_task))


# ---- the command ----------------------------------------------------------------------------


def _plane_cli(models, csv, out, *extra):
    from weightscape.cli.main import main

    args = ["plane", *map(str, models), "--task", str(csv), "--split", "all", "--out", str(out)]
    return main([*args, "--no-progress", "--device", "cpu", *extra])


def test_plane_command_writes_its_files(tiny_models, tiny_csv, tmp_path, capsys):
    code = _plane_cli(tiny_models, tiny_csv, tmp_path, "--resolution", "5,4", "--margin", "0.5")
    assert code == 0, capsys.readouterr().err
    for name in ("plane.npz", "plane.json", "plane_loss.png", "plane_accuracy.png"):
        assert (tmp_path / name).stat().st_size > 0
    with np.load(tmp_path / "plane.npz") as data:
        assert data["surface_loss"].shape == (4, 5)
    out = capsys.readouterr().out
    assert "5x4 grid + 3 models" in out and "plane_loss.png" in out


@pytest.mark.parametrize(
    ("which", "message"), [((0, 1), "exactly 3 models"), ((0, 1, 1), "same point")]
)
def test_plane_command_errors_exit_2(tiny_models, tiny_csv, tmp_path, capsys, which, message):
    code = _plane_cli([tiny_models[i] for i in which], tiny_csv, tmp_path)
    assert code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--resolution", "1"), "--resolution[0]: Input should be greater than or equal to 2"),
        (("--resolution", "5,4,3"), "--resolution: Tuple should have at most 2 items"),
        (("--margin", "-0.1"), "--margin: Input should be greater than or equal to 0"),
    ],
)
def test_plane_options_are_checked_by_flag(tiny_models, tiny_csv, tmp_path, capsys, extra, message):
    assert _plane_cli(tiny_models, tiny_csv, tmp_path, *extra) == 2
    assert message in capsys.readouterr().err


def test_plane_config_reads_one_resolution_as_a_square_and_names_the_anchor_count():
    from pydantic import ValidationError

    from weightscape.cli.flags import flag_names, problems
    from weightscape.studies.plane import Config

    config = Config(anchors=("a", "b", "c"), resolution=(9,))
    assert config.grid_shape() == (9, 9) and config.estimated_points() == 84
    assert Config(anchors=("a", "b", "c")).split == "validation"
    with pytest.raises(ValidationError) as err:
        Config(anchors=("a", "b"))
    assert problems(err.value, flag_names(Config)) == [
        "ANCHORS: plane needs exactly 3 models (theta_1, theta_2, theta_3), not 2. Got a,b."
    ]
