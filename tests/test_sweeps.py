"""Zoo files (sweeps of finetuning runs), data halves, and distances between runs over steps."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import save_file

from weightscape.analyses.run_distance import distance_over_steps, run_distance
from weightscape.cli.main import main
from weightscape.errors import WeightscapeError
from weightscape.models.checkpoint import Checkpoint
from weightscape.models.space import ParameterSpace
from weightscape.models.zoo import Zoo
from weightscape.training.finetune import FinetuneConfig, half_of
from weightscape.training.sweeps import ZooFile, _name, expand, load_zoo_file

EXAMPLE = Path(__file__).parents[1] / "examples" / "zoos" / "sweep_seeds.yaml"


def _write(path: Path, content: dict) -> Path:
    path.write_text(yaml.safe_dump(content))
    return path


def test_sweep_is_a_named_cross_product():
    zoo_file = ZooFile.model_validate(
        {"name": "rt", "base": {"steps": 5}, "sweep": {"head_seed": [0, 1, 2], "data_seed": [3, 4]}}
    )
    configs = expand(zoo_file)
    assert len(configs) == 6
    assert configs[0].name == "rt-data3-head0" and configs[-1].name == "rt-data4-head2"
    assert {(c.data_seed, c.head_seed) for c in configs} == {
        (d, h) for d in (3, 4) for h in (0, 1, 2)
    }
    assert all(c.steps == 5 for c in configs)


def test_explicit_runs_are_crossed_with_the_sweep():
    zoo_file = ZooFile.model_validate(
        {
            "name": "z",
            "runs": [{"method": "full", "lr": 2e-5}, {"name": "low-rank", "method": "lora"}],
            "sweep": {"data_half": [0, 1]},
        }
    )
    names = [c.name for c in expand(zoo_file)]
    assert names == [
        "z-full-lr2e-05-half0",
        "z-full-lr2e-05-half1",
        "low-rank-half0",
        "low-rank-half1",
    ]
    assert [c.method for c in expand(zoo_file)] == ["full", "full", "lora", "lora"]


def test_no_sweep_and_no_runs_is_one_run():
    assert [c.name for c in expand(ZooFile(name="one"))] == ["one"]


def test_invalid_file_lists_every_problem(tmp_path):
    path = _write(
        tmp_path / "bad.yaml",
        {
            "name": "../bad",
            "sweeep": {"head_seed": [0]},
            "base": {"lr": 0, "optimiser": "sgd"},
            "sweep": {"method": ["full", "prefix"], "batch_size": [8, 0], "data_half": [2]},
            "runs": [{"steps": -1}],
        },
    )
    with pytest.raises(WeightscapeError) as err:
        load_zoo_file(path)
    message = str(err.value)
    for where in (
        "name:",
        "sweeep:",
        "base.lr:",
        "base.optimiser:",
        "sweep.method[1]:",
        "sweep.batch_size[1]:",
        "sweep.data_half[0]:",
        "runs[0].steps:",
    ):
        assert where in message, (where, message)
    assert "too short" not in message.lower()


def test_runs_that_would_share_a_name_are_refused(tmp_path):
    path = _write(tmp_path / "same.yaml", {"name": "s", "runs": [{"base": "a"}, {"base": "b"}]})
    with pytest.raises(WeightscapeError, match="runs share names: s"):
        load_zoo_file(path)


def test_example_file_expands():
    assert EXAMPLE.read_text().startswith("# Run: weightscape finetune --zoo-file")
    configs = expand(load_zoo_file(EXAMPLE))
    assert len(configs) == len({c.name for c in configs}) == 12


def test_data_halves_are_disjoint_seeded_and_cover_the_task(tiny_task):
    first, second = half_of(tiny_task, 0), half_of(tiny_task, 1)
    assert set(first.ids).isdisjoint(second.ids)
    assert sorted([*first.ids, *second.ids]) == sorted(tiny_task.ids)
    assert np.array_equal(half_of(tiny_task, 0).ids, first.ids)
    assert not np.array_equal(half_of(tiny_task, 0, seed=1).ids, first.ids)


def test_zoo_file_trains_every_run_into_one_zoo_and_resumes(
    tiny_models, tiny_csv, tmp_path, capsys
):
    spec = {
        "name": "tiny",
        "base": {
            "base": str(tiny_models[0]),
            "method": "lora",
            "steps": 2,
            "save_steps": [1],
            "batch_size": 8,
            "lr": 1e-2,
            "max_length": 16,
            "data_half": 1,
        },
        "sweep": {"head_seed": [0, 1]},
    }
    path = _write(tmp_path / "sweep.yaml", spec)
    out = tmp_path / "zoo"
    argv = ["finetune", "--zoo-file", str(path), "--out", str(out), "--task", str(tiny_csv)]
    assert main([*argv, "--no-progress"]) == 0, capsys.readouterr().err
    zoo = Zoo.from_manifest(out / "zoo.yaml")
    assert sorted(zoo.names()) == ["tiny-head0", "tiny-head0@1", "tiny-head1", "tiny-head1@1"]
    assert zoo["tiny-head1"].tags["data_half"] == 1 and zoo["tiny-head1"].tags["module_seed"] == 1
    distances = run_distance(zoo, "tiny-head0", "tiny-head1", space=ParameterSpace("tuned"))
    assert list(distances) == [1, 2] and all(d > 0 for d in distances.values())

    capsys.readouterr()
    assert main([*argv, "--no-progress"]) == 0
    assert capsys.readouterr().out.count("already trained") == 2
    spec["base"]["lr"] = 2e-2
    _write(path, spec)
    assert main([*argv, "--no-progress"]) == 2
    assert "trained with other settings (lr differ)" in capsys.readouterr().err


def _handmade_run(folder: Path, run: str, values: dict[int, float]) -> list[Checkpoint]:
    checkpoints = []
    for step, value in values.items():
        path = folder / f"{run}-{step}.safetensors"
        save_file({"w": torch.full((3, 4), value), "b": torch.full((4,), value)}, str(path))
        tags = {"run": run, "step": step}
        checkpoints.append(Checkpoint.from_path(path, name=f"{run}@{step}", tags=tags))
    return checkpoints


def test_run_distance_at_each_common_step(tmp_path):
    a = _handmade_run(tmp_path, "a", {10: 0.0, 20: 1.0, 30: 2.0})
    b = _handmade_run(tmp_path, "b", {20: 1.5, 30: 0.0, 40: 5.0})
    # 16 entries differing by 0.5 and by 2.0: distances 0.5 * 4 and 2.0 * 4.
    assert run_distance([*a, *b], "a", "b") == {20: 2.0, 30: 8.0}
    assert run_distance([*a, *b], "b", "a", space=ParameterSpace(include=("^w$",))) == {
        20: pytest.approx(0.5 * 12**0.5),
        30: pytest.approx(2.0 * 12**0.5),
    }
    with pytest.raises(WeightscapeError, match="Unknown run 'c'"):
        run_distance([*a, *b], "a", "c")
    with pytest.raises(WeightscapeError, match="no step in common"):
        distance_over_steps({1: a[0]}, {2: b[0]})


def test_train_size_subsamples_and_free_tags_reach_the_zoo(tiny_models, tiny_task, tmp_path):
    from weightscape.training.finetune import finetune

    config = FinetuneConfig(
        name="small",
        base=str(tiny_models[0]),
        steps=1,
        batch_size=4,
        max_length=16,
        train_size=10,
        tags={"family": "toy"},
    )
    finetune(config, tiny_task, tmp_path)
    tags = Zoo.from_manifest(tmp_path / "zoo.yaml")["small"].tags
    assert (tags["train_size"], tags["family"]) == (10, "toy")
    log = json.loads((tmp_path / "small" / "train_log.json").read_text())
    assert log["config"]["train_size"] == 10
    with pytest.raises(ValueError, match="tags weightscape sets itself"):
        FinetuneConfig(name="x", tags={"dataset": "mine"})
    assert "n10" in _name("p", {"train_size": 10})


def test_a_run_logged_before_an_option_existed_still_counts_as_finished(tmp_path):
    from weightscape.training.sweeps import _finished

    config = FinetuneConfig(name="old", steps=3)
    run = tmp_path / "old"
    (run / "step-3").mkdir(parents=True)
    (run / "step-3" / "model.safetensors").write_bytes(b"")
    logged = json.loads(json.dumps(config.model_dump()))
    del logged["train_size"], logged["tags"]  # options added after this run was trained
    (run / "train_log.json").write_text(json.dumps({"config": logged}))
    assert _finished(config, tmp_path)
    changed = FinetuneConfig(name="old", steps=3, train_size=5)
    with pytest.raises(WeightscapeError, match=r"\(train_size differ\)"):
        _finished(changed, tmp_path)


def test_run_names_of_the_example_zoo_file_stay_as_before():
    """Resuming a sweep finds its finished runs by name: names may not change with the code."""
    names = [c.name for c in expand(load_zoo_file(EXAMPLE))]
    lora = "rt-lora-lr0.001-lora_r8-lora_alpha16"
    assert names == [
        *(f"rt-full-lr5e-05-head{h}-half{d}" for h in range(3) for d in range(2)),
        *(f"{lora}-head{h}-half{d}" for h in range(3) for d in range(2)),
    ]
    assert [c.tuning.r for c in expand(load_zoo_file(EXAMPLE))[6:]] == [8] * 6


# A LoRA run's config as training logs held it before the tuning method was one nested field.
FLAT_LOG = {
    "name": "old-lora",
    "base": "minilm",
    "method": "lora",
    "steps": 3,
    "batch_size": 32,
    "lr": 5e-05,
    "warmup_ratio": 0.1,
    "weight_decay": 0.01,
    "max_length": 64,
    "head_seed": 0,
    "data_seed": 0,
    "module_seed": None,
    "init_noise_std": 0.0,
    "init_noise_seed": 0,
    "data_half": None,
    "data_half_seed": 0,
    "train_size": None,
    "train_size_seed": 0,
    "tags": {},
    "lora_r": 4,
    "lora_alpha": 16.0,
    "lora_dropout": 0.0,
    "lora_target_modules": ["query", "value"],
    "adapter_bottleneck": 64,
    "save_steps": [],
    "dynamics_examples": None,
    "dynamics_every": None,
}


@pytest.mark.parametrize("method", ["lora", "full"])
def test_a_run_logged_with_flat_tuning_keys_still_counts_as_finished(method, tmp_path):
    from weightscape.training.sweeps import _finished

    logged = {**FLAT_LOG, "method": method}
    run = tmp_path / "old-lora"
    (run / "step-3").mkdir(parents=True)
    (run / "step-3" / "model.safetensors").write_bytes(b"")
    (run / "train_log.json").write_text(json.dumps({"config": logged}))
    config = FinetuneConfig(name="old-lora", steps=3, method=method, lora_r=4)
    assert config.model_dump()["tuning"]["method"] == method  # logged from now on: nested
    assert _finished(config, tmp_path)
    if method == "lora":
        with pytest.raises(WeightscapeError, match=r"\(lora_r differ\)"):
            _finished(FinetuneConfig(name="old-lora", steps=3, method="lora"), tmp_path)
