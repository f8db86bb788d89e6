"""Basin trajectories on tiny finetuned runs with saved steps."""

from __future__ import annotations

import json

import numpy as np
import pytest

from weightscape.analyses.trajectories import basin_trajectories, runs_by_step
from weightscape.cli.main import main
from weightscape.errors import WeightscapeError
from weightscape.evaluation.engine import EngineSpec
from weightscape.metrics import spectral_clusters
from weightscape.models.zoo import Zoo
from weightscape.runtime.store import ResultStore
from weightscape.training.finetune import FinetuneConfig, finetune


@pytest.fixture(scope="module")
def run_zoo(tiny_models, tiny_task, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    for seed in range(4):
        config = FinetuneConfig(
            name=f"run{seed}",
            base=str(tiny_models[0]),
            steps=6,
            batch_size=8,
            lr=1e-3,
            head_seed=seed,
            data_seed=seed,
            save_steps=(3,),
        )
        finetune(config, tiny_task, out)
    return out / "zoo.yaml"


def test_runs_are_grouped_by_their_run_tag(run_zoo):
    runs = runs_by_step(list(Zoo.from_manifest(run_zoo)))
    assert sorted(runs) == ["run0", "run1", "run2", "run3"]
    assert all(sorted(steps) == [3, 6] for steps in runs.values())


def test_trajectory_is_aligned_to_the_last_step(run_zoo, tiny_task, tmp_path):
    zoo = list(Zoo.from_manifest(run_zoo))
    spec = EngineSpec(tuple(zoo[:1]), tiny_task, device="cpu")
    store = ResultStore(tmp_path / "store.sqlite")
    trajectory = basin_trajectories(zoo, spec, points=3, k=2, store=store)
    assert trajectory.steps == [3, 6] and trajectory.labels.shape == (4, 2)
    final = trajectory.grids[6]
    np.testing.assert_array_equal(
        trajectory.labels[:, -1], spectral_clusters(final.matrices["loss_convexity_gap"], k=2)
    )
    # Alignment only renames clusters: the step-3 partition is the step-3 clustering's.
    step3 = spectral_clusters(trajectory.grids[3].matrices["loss_convexity_gap"], k=2)
    same = step3[:, None] == step3[None, :]
    np.testing.assert_array_equal(same, trajectory.labels[:, :1] == trajectory.labels[:, :1].T)
    again = basin_trajectories(zoo, spec, points=3, k=2, store=store)
    assert all(g.stats["computed_points"] == 0 for g in again.grids.values())


def test_a_step_where_every_path_is_flat_is_one_basin():
    from weightscape.analyses.trajectories import _clusters

    np.testing.assert_array_equal(_clusters(np.zeros((4, 4)), k=2), [0, 0, 0, 0])


def test_trajectories_need_step_tags(tiny_models, tiny_task):
    from weightscape.models.checkpoint import Checkpoint

    plain = [Checkpoint.from_path(p) for p in tiny_models]
    with pytest.raises(WeightscapeError, match="no 'step' tag"):
        basin_trajectories(plain, EngineSpec(tuple(plain[:1]), tiny_task, device="cpu"))


def test_trajectories_command(run_zoo, tiny_csv, tmp_path, capsys):
    code = main(
        [
            "trajectories",
            "--zoo",
            str(run_zoo),
            "--task",
            str(tiny_csv),
            "--split",
            "all",
            "--points",
            "3",
            "--out",
            str(tmp_path),
            "--no-progress",
            "--device",
            "cpu",
        ]
    )
    assert code == 0, capsys.readouterr().err
    result = json.loads((tmp_path / "trajectory.json").read_text())
    assert result["steps"] == [3, 6] and len(result["labels"]) == 4
    assert (tmp_path / "trajectory.png").is_file()


def test_trajectories_refuse_an_unknown_matrix(tmp_path, capsys):
    code = main(["trajectories", "--zoo", str(tmp_path / "zoo.yaml"), "--matrix", "loss_barier"])
    assert code == 2
    assert "--matrix: Unknown grid matrix 'loss_barier'. Did you mean 'loss_barrier'?" in (
        capsys.readouterr().err
    )
