"""Finetuning: what BitFit and full finetuning change, seeds, determinism, saved zoos."""

from __future__ import annotations

import pytest
import torch
import yaml
from pydantic import ValidationError
from safetensors.torch import load_file

from weightscape.models.space import is_head
from weightscape.training.finetune import FinetuneConfig, _load_base, finetune

HEAD = {"classifier.weight", "classifier.bias"}


def _config(tiny_models, **overrides) -> FinetuneConfig:
    settings = {
        "name": "run",
        "base": str(tiny_models[0]),
        "steps": 3,
        "batch_size": 8,
        "lr": 1e-3,
        "max_length": 16,
    }
    return FinetuneConfig(**{**settings, **overrides})


def _tensors(checkpoint_dir) -> dict[str, torch.Tensor]:
    return load_file(str(checkpoint_dir / "model.safetensors"))


def _assert_identical(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


@pytest.fixture(scope="module")
def base(tiny_models) -> dict[str, torch.Tensor]:
    return _tensors(tiny_models[0])


@pytest.fixture(scope="module")
def full_run(tiny_models, tiny_task, tmp_path_factory):
    """One full finetuning run with intermediate saves: (config, out_dir, checkpoints)."""
    out = tmp_path_factory.mktemp("full")
    config = _config(tiny_models, name="full-run", save_steps=(1, 2))
    return config, out, finetune(config, tiny_task, out)


def test_save_steps_past_the_end_are_refused_not_dropped(tiny_models):
    """A save step past the last step would save nothing: said, not silently ignored."""
    with pytest.raises(ValidationError, match="steps 7 lie beyond the run's 3 steps"):
        _config(tiny_models, name="full-run", save_steps=(1, 2, 7))


def test_bitfit_trains_only_biases_and_the_head(tiny_models, tiny_task, base, tmp_path):
    config = _config(tiny_models, name="bitfit", method="bitfit")
    (checkpoint,) = finetune(config, tiny_task, tmp_path)
    trained = _tensors(checkpoint.path)
    assert trained.keys() == base.keys()
    frozen = [n for n in base if not n.endswith("bias") and not is_head(n)]
    assert len(frozen) == 21  # 3 embedding tables and a norm, 8 per layer, the pooler
    for name in frozen:
        assert torch.equal(trained[name], base[name]), name
    biases = [n for n in base if n.endswith("bias") and not is_head(n)]
    assert any(not torch.equal(trained[n], base[n]) for n in biases)
    initial, _ = _load_base(config, tiny_task)
    initial_head = {n: t for n, t in initial.state_dict().items() if n in HEAD}
    for name in HEAD:
        assert not torch.equal(trained[name], initial_head[name]), name


def test_full_finetuning_changes_weights(full_run, base):
    _, _, checkpoints = full_run
    trained = _tensors(checkpoints[-1].path)
    weights = [n for n in base if not n.endswith("bias") and not is_head(n)]
    changed = [n for n in weights if not torch.equal(trained[n], base[n])]
    # Every non-bias tensor trains (rows without gradient still move by weight decay).
    assert changed == weights


def test_head_seed_alone_sets_the_initial_head(tiny_models, tiny_task):
    def head(**seeds):
        model, _ = _load_base(_config(tiny_models, **seeds), tiny_task)
        return model.classifier.weight.detach().clone(), model.classifier.bias.detach().clone()

    weight, bias = head(head_seed=0, data_seed=0)
    same_head, _ = head(head_seed=0, data_seed=5)
    other_head, _ = head(head_seed=1, data_seed=0)
    assert torch.equal(weight, same_head)
    assert not torch.equal(weight, other_head)
    assert torch.equal(bias, torch.zeros(2))
    # The head is new, not the base's classifier, and drawn at the config's scale (std 0.02).
    assert not torch.equal(weight, _tensors(tiny_models[0])["classifier.weight"])
    assert 0.005 < weight.std().item() < 0.05


def test_identical_configs_give_identical_checkpoints(full_run, tiny_task, tmp_path):
    config, _, checkpoints = full_run
    again = finetune(config, tiny_task, tmp_path)
    assert [c.name for c in again] == [c.name for c in checkpoints]
    for first, second in zip(checkpoints, again, strict=True):
        _assert_identical(_tensors(first.path), _tensors(second.path))


def test_data_seed_changes_the_checkpoint(full_run, tiny_task, tmp_path):
    config, _, checkpoints = full_run
    other = finetune(config.model_copy(update={"data_seed": 1}), tiny_task, tmp_path)
    first, second = _tensors(checkpoints[-1].path), _tensors(other[-1].path)
    # Same head initialisation, different batches and dropout: the trained weights differ.
    assert not torch.equal(first["classifier.weight"], second["classifier.weight"])
    assert not torch.equal(
        first["bert.encoder.layer.0.attention.self.query.weight"],
        second["bert.encoder.layer.0.attention.self.query.weight"],
    )


def test_saves_at_each_save_step_and_the_last(full_run, tiny_task):
    config, out, checkpoints = full_run
    # The last step is always saved, beside the save steps.
    assert [c.name for c in checkpoints] == ["full-run@1", "full-run@2", "full-run"]
    for step, checkpoint in zip((1, 2, 3), checkpoints, strict=True):
        assert checkpoint.path == out / "full-run" / f"step-{step}"
        assert (checkpoint.path / "model.safetensors").is_file()
        assert (checkpoint.path / "config.json").is_file()
        assert checkpoint.tags["step"] == step
    assert not (out / "full-run" / "step-7").exists()
    assert (out / "full-run" / "train_log.json").is_file()

    manifest = yaml.safe_load((out / "zoo.yaml").read_text())
    entries = {m["name"]: m for m in manifest["models"]}
    assert set(entries) == {"full-run@1", "full-run@2", "full-run"}
    for name, step in (("full-run@1", 1), ("full-run@2", 2), ("full-run", 3)):
        assert entries[name]["path"] == f"full-run/step-{step}"
        tags = entries[name]["tags"]
        assert tags["step"] == step
        assert tags["head_seed"] == config.head_seed
        assert tags["data_seed"] == config.data_seed
        assert tags["method"] == "full"
        assert tags["dataset"] == tiny_task.name


def test_base_with_another_label_count_gets_a_new_head(tiny_models, tmp_path):
    """The head is re-initialised anyway, so a 2-label base can be finetuned on a 3-label task."""
    from weightscape.data import make_task

    texts = [f"the movie was {word}" for word in ("good", "bad", "dull")] * 8
    task = make_task("three", texts, [0, 1, 2] * 8, ("good", "bad", "dull"))
    (checkpoint,) = finetune(_config(tiny_models, steps=2), task, tmp_path)
    assert _tensors(checkpoint.path)["classifier.weight"].shape == (3, 32)


@pytest.mark.parametrize(
    "overrides",
    [
        {"steps": 0},
        {"save_steps": (2, -1)},
        {"save_steps": (0,)},
        {"method": "prefix"},
        {"lr": 0.0},
        {"batch_size": 0},
        {"unknown_option": 1},
    ],
)
def test_invalid_config_is_refused(tiny_models, overrides):
    with pytest.raises(ValidationError):
        _config(tiny_models, **overrides)


def test_save_steps_are_sorted_and_deduplicated(tiny_models):
    assert _config(tiny_models, save_steps=(3, 1, 3)).save_steps == (1, 3)
