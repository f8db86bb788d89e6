"""The grid command end to end on tiny models."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from weightscape.cli.main import main


def test_grid_command_writes_matrices_and_heatmaps(tiny_models, tiny_csv, tmp_path, capsys):
    manifest = tmp_path / "zoo.yaml"
    manifest.write_text(
        yaml.safe_dump(
            {
                "base": str(tiny_models[0]),
                "models": [
                    {"name": f"m{i}", "path": str(p), "tags": {"seed": i}}
                    for i, p in enumerate(tiny_models)
                ],
            }
        )
    )
    out = tmp_path / "grid"
    code = main(
        [
            "grid",
            "--zoo",
            str(manifest),
            "--task",
            str(tiny_csv),
            "--split",
            "all",
            "--points",
            "3",
            "--out",
            str(out),
            "--no-progress",
            "--device",
            "cpu",
        ]
    )
    assert code == 0, capsys.readouterr().err
    for name in (
        "loss_barrier",
        "loss_convexity_gap",
        "loss_auc",
        "loss_auc_t",
        "accuracy_drop",
        "euclidean",
        "task_vector_cosine",
    ):
        assert (out / f"{name}.png").is_file() and (out / f"{name}.csv").is_file()
    meta = json.loads((out / "grid.json").read_text())
    assert meta["names"] == ["m0", "m1", "m2"]
    assert meta["stats"]["computed_points"] == 3 + 3 * 1
    assert meta["grid_format"] == 2  # loss_auc per unit Euclidean distance, loss_auc_t per t
    with np.load(out / "grid.npz") as data:
        euclid = data["matrix_euclidean"]
        cosine = data["matrix_task_vector_cosine"]
        # AUC along the line measured in distance = the area per unit t times the line's length.
        np.testing.assert_allclose(data["matrix_loss_auc"], data["matrix_loss_auc_t"] * euclid)
    assert euclid[0, 1] > 0 and np.allclose(euclid, euclid.T)
    # m0 is the base: its task vector is zero, so its cosines are undefined (NaN), not invented.
    assert np.isnan(cosine[0, 1]) and np.isfinite(cosine[1, 2])
    assert "3 models, 3 pairs x 3 points" in capsys.readouterr().out


def test_grid_needs_two_models(tiny_models, tiny_csv, tmp_path, capsys):
    code = main(
        ["grid", "--models", str(tiny_models[0]), "--task", str(tiny_csv), "--out", str(tmp_path)]
    )
    assert code == 2
    assert "at least 2 models" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "give exactly one of --zoo or --models, not neither"),
        (
            ["--zoo", "zoo.yaml", "--models", "runs/*"],
            "give exactly one of --zoo or --models, not both",
        ),
        (["--zoo", "zoo.yaml", "--workers", "2"], "--workers needs --executor ray"),
        (
            ["--models", "runs/*", "--ray-address", "auto", "--workers", "2"],
            "--ray-address and --workers need --executor ray",
        ),
    ],
)
def test_grid_flags_are_checked_together(argv, message, capsys):
    assert main(["grid", *argv]) == 2
    assert message in capsys.readouterr().err


def test_grid_config_defaults_match_the_old_command():
    from weightscape.studies.grid import Config

    config = Config(zoo="zoo.yaml")
    assert (config.points, config.split, config.executor) == (11, "validation", "inprocess")
    assert config.estimated_points(3) == 3 + 3 * 9
