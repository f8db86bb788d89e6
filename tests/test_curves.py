"""Curve fitting, learned combinations and grouped points, on tiny models with a real barrier."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from weightscape.analyses.interpolation import walk_path
from weightscape.evaluation.engine import Engine
from weightscape.evaluation.grouped import GroupedPoint
from weightscape.geometry import even_grid
from weightscape.models.checkpoint import Checkpoint, TensorReader
from weightscape.models.space import group_of
from weightscape.training.curve_fit import CurveConfig, fit_curve
from weightscape.training.learned_mix import CombineConfig, learn_combination


def test_uniform_grouped_point_equals_the_plain_point(tiny_models, tiny_task):
    a, b = (Checkpoint.from_path(p) for p in tiny_models[:2])
    engine = Engine([a, b], tiny_task, device="cpu")
    plain = engine.evaluate([0.3, 0.7])
    names = list(engine.working.state)
    groups = {group_of(n, "layer") for n in names}
    grouped = engine.evaluate(GroupedPoint.from_mapping("layer", {g: (0.3, 0.7) for g in groups}))
    assert grouped.metrics == plain.metrics
    assert engine.spec(
        GroupedPoint.from_mapping("layer", {g: (0.3, 0.7) for g in groups})
    ) != engine.spec([0.3, 0.7])


def test_grouped_point_mixes_each_group_with_its_own_coefficients(tiny_models, tiny_task):
    a, b = (Checkpoint.from_path(p) for p in tiny_models[:2])
    engine = Engine([a, b], tiny_task, device="cpu")
    names = list(engine.working.state)
    mapping = {g: (1.0, 0.0) for g in {group_of(n, "layer") for n in names}}
    mapping["layer.1"] = (0.25, 0.75)
    engine.working.write(engine.anchors, GroupedPoint.from_mapping("layer", mapping), engine.space)
    ra, rb = TensorReader(a), TensorReader(b)
    state = engine.working.model.state_dict()
    inside = "bert.encoder.layer.1.attention.self.query.weight"
    outside = "bert.encoder.layer.0.attention.self.query.weight"
    torch.testing.assert_close(state[inside], 0.25 * ra.get(inside) + 0.75 * rb.get(inside))
    torch.testing.assert_close(state[outside], ra.get(outside), rtol=0, atol=0)


def test_grouped_point_missing_a_group_is_explained(tiny_models, tiny_task):
    from weightscape.errors import WeightscapeError

    a, b = (Checkpoint.from_path(p) for p in tiny_models[:2])
    engine = Engine([a, b], tiny_task, device="cpu")
    with pytest.raises(WeightscapeError, match="no coefficients for group"):
        engine.evaluate(GroupedPoint.from_mapping("layer", {"head": (1.0, 0.0)}))


@pytest.fixture(scope="module")
def fitted(barrier_pair, tiny_task, tmp_path_factory):
    a, b = barrier_pair
    config = CurveConfig(steps=150, batch_size=16, lr=3e-3, eval_every=50, eval_ts=(0.5,))
    anchors, history = fit_curve(
        a, b, tiny_task, tmp_path_factory.mktemp("curve"), config=config, dev=tiny_task
    )
    return anchors, history


def test_fitted_curve_avoids_the_barrier(barrier_pair, fitted, tiny_task):
    anchors, _ = fitted
    ts = even_grid(11)
    line = walk_path(Engine(list(barrier_pair), tiny_task, device="cpu"), ts)
    curve = walk_path(Engine(anchors, tiny_task, device="cpu"), ts, path="bezier")
    assert line.summary["loss"]["barrier_height"] > 0.01  # there is a barrier to avoid
    assert (
        curve.curve("loss").max()
        < line.curve("loss").max() - 0.5 * line.summary["loss"]["barrier_height"]
    )
    # Same endpoints, evaluated exactly: the curve starts and ends at the two models.
    assert curve.points[0].metrics == line.points[0].metrics
    assert curve.points[-1].metrics == line.points[-1].metrics


def test_curve_history_and_saved_controls(fitted):
    anchors, history = fitted
    assert len(anchors) == 3 and (anchors[1].path / "model.safetensors").is_file()
    evaluations = [h["eval"] for h in history if "eval" in h]
    assert len(evaluations) == 3 and "0.5" in evaluations[-1]
    assert np.mean([h["loss"] for h in history[-20:]]) < np.mean([h["loss"] for h in history[:20]])


def test_learned_combination_beats_its_starting_midpoint(barrier_pair, tiny_task, tmp_path):
    a, b = barrier_pair
    point, _history = learn_combination(
        a,
        b,
        tiny_task,
        out_dir=tmp_path,
        config=CombineConfig(group_by="matrix", steps=60, batch_size=16, lr=0.1),
    )
    engine = Engine([a, b], tiny_task, device="cpu")
    midpoint = engine.evaluate([0.5, 0.5]).metrics["loss"]
    learned = engine.evaluate(point).metrics["loss"]
    assert learned < midpoint
    assert all(
        0.0 < c[0] < 1.0 and c[0] + c[1] == pytest.approx(1.0) for _, c in point.coefficients
    )
    assert (tmp_path / "combination-matrix.json").is_file()


def test_curve_command(barrier_pair, tiny_csv, tmp_path, capsys):
    import json

    from weightscape.cli.main import main

    a, b = barrier_pair
    code = main(
        [
            "curve",
            str(a.path),
            str(b.path),
            "--task",
            str(tiny_csv),
            "--steps",
            "4",
            "--points",
            "3",
            "--subset",
            "20",
            "--batch-size-train",
            "8",
            "--out",
            str(tmp_path),
            "--no-progress",
            "--device",
            "cpu",
            "--eval-every",
            "2",
        ]
    )
    assert code == 0, capsys.readouterr().err
    for name in (
        "curve-vs-line.png",
        "path-curve.json",
        "path-line.json",
        "curve-summary.json",
        "curve/control-1/model.safetensors",
        "curve/curve.json",
        "path-line-test.json",
        "path-curve-test.json",
        "curve-table.md",
    ):
        assert (tmp_path / name).is_file(), name
    assert "highest loss" in capsys.readouterr().out
    # Qin et al.'s Table 1: the best linear and curved points (t on dev) and the better endpoint
    # on test, each row's test numbers those of the test walk at the chosen t.
    rows = json.loads((tmp_path / "curve-table.json").read_text())
    assert [r["method"].split(" (")[0] for r in rows] == [
        "linear",
        "curved",
        "better endpoint on test",
    ]
    for row, stem in ((rows[0], "line"), (rows[1], "curve")):
        walk = json.loads((tmp_path / f"path-{stem}-test.json").read_text())
        at_t = next(p for p in walk["points"] if p["t"] == row["t"])
        assert row["test"] == at_t["metrics"]
    test_line = json.loads((tmp_path / "path-line-test.json").read_text())["endpoints"]
    chosen = max(test_line, key=lambda name: test_line[name]["accuracy"])
    assert rows[2]["test"] == test_line[chosen] and rows[2]["chosen_on"] == "test"


def test_combine_command(barrier_pair, tiny_csv, tmp_path, capsys):
    import json

    from weightscape.cli.main import main

    a, b = barrier_pair
    code = main(
        [
            "combine",
            str(a.path),
            str(b.path),
            "--task",
            str(tiny_csv),
            "--steps",
            "3",
            "--points",
            "3",
            "--subset",
            "20",
            "--batch-size-train",
            "8",
            "--group-by",
            "layer,matrix",
            "--out",
            str(tmp_path),
            "--no-progress",
            "--device",
            "cpu",
        ]
    )
    assert code == 0, capsys.readouterr().err
    assert (tmp_path / "combine.png").is_file() and (tmp_path / "combine.md").is_file()
    assert (tmp_path / "combine.png").is_file() and (tmp_path / "combine.md").is_file()
    rows = json.loads((tmp_path / "combine.json").read_text())
    methods = [r["method"] for r in rows]
    assert methods[0].startswith("linear (best t") and methods[1].startswith("better endpoint")
    assert methods[2].startswith("learned layer-wise") and methods[3].startswith("learned matrix")
    assert methods[1].startswith("better endpoint on test") and rows[1]["chosen_on"] == "test"
    assert (
        main(
            [
                "combine",
                str(a.path),
                str(b.path),
                "--task",
                str(tiny_csv),
                "--group-by",
                "layers",
                "--out",
                str(tmp_path),
            ]
        )
        == 2
    )


# ---- the study configs ----------------------------------------------------------------------


def _curve_study():
    from weightscape.studies import curve

    config = curve.Config(anchors=("a", "b"))
    return curve.Config, curve.CURVE_FIELDS, config.curve_config(), CurveConfig()


def _combine_study():
    from weightscape.studies import combine

    config = combine.Config(anchors=("a", "b"))
    return combine.Config, combine.COMBINE_FIELDS, config.combine_config("layer"), CombineConfig()


@pytest.mark.parametrize("study", [_curve_study, _combine_study])
def test_study_training_fields_match_the_training_config(study):
    config, fields, built, default = study()
    assert built == default  # study defaults build the training config's defaults
    training = type(default)
    assert set(training.model_fields) - set(fields.values()) <= {"group_by"}
    for source, target in fields.items():
        mine, theirs = config.model_fields[source], training.model_fields[target]
        assert mine.default == theirs.default, source
        assert mine.metadata == theirs.metadata, source  # the constraints (ge, gt, ...)
        assert mine.annotation == theirs.annotation, source


def test_combine_groupings_are_the_training_configs():
    import typing

    from weightscape.models.space import GROUPINGS
    from weightscape.studies.combine import Config

    field = Config.model_fields["group_by"]
    assert typing.get_args(field.annotation) == (
        CombineConfig.model_fields["group_by"].annotation,
        ...,
    )
    assert typing.get_args(typing.get_args(field.annotation)[0]) == GROUPINGS == field.default


def test_training_and_evaluation_truncate_separately():
    from weightscape.studies.curve import Config

    config = Config(anchors=("a", "b"))
    assert config.eval_settings().max_length == 128
    assert config.curve_config().max_length == 64
    config = Config(anchors=("a", "b"), max_length=32, train_max_length=16)
    assert (config.eval_settings().max_length, config.curve_config().max_length) == (32, 16)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["curve", "a"], "ANCHORS: give exactly 2 checkpoints (the two minima), not 1. Got a."),
        (
            ["combine", "a", "b", "c"],
            "ANCHORS: give exactly 2 checkpoints (the two minima), not 3. Got a,b,c.",
        ),
        (
            ["combine", "a", "b", "--group-by", "layer,matrix,layer"],
            "--group-by: name each grouping once; repeated: layer. Got layer,matrix,layer.",
        ),
        (["curve", "a", "b", "--path", "linear"], "--path: Input should be 'bezier' or"),
        (["curve", "a", "b", "--train-max-length", "4"], "--train-max-length: Input should be"),
    ],
)
def test_curve_and_combine_options_are_checked_by_flag(argv, message, capsys):
    from weightscape.cli.main import main

    assert main(argv) == 2
    assert message in capsys.readouterr().err
