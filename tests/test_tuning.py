"""LoRA and adapters: what trains, how they start, how their checkpoints load and interpolate."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from pydantic import ValidationError
from safetensors.torch import load_file

from conftest import saved_tensors
from weightscape.errors import WeightscapeError
from weightscape.models.architecture import build_model, check_compatible
from weightscape.models.checkpoint import Checkpoint, TensorReader
from weightscape.models.space import ParameterSpace, is_head, is_tuning_module
from weightscape.models.tuning import METHODS, SPECS
from weightscape.models.tuning_spec import (
    SIDECAR,
    AdapterSpec,
    LoraSpec,
    TuningSpec,
    apply_tuning,
    read_tuning_spec,
    spec_from_json,
    write_tuning_spec,
)
from weightscape.training.finetune import FinetuneConfig, _load_base, finetune, initial_model

TUNED = ("lora", "adapter")


def _config(tiny_models, method: str, **overrides) -> FinetuneConfig:
    settings = {
        "name": f"{method}-run",
        "base": str(tiny_models[0]),
        "method": method,
        "steps": 4,
        "batch_size": 8,
        "lr": 1e-2,
        "max_length": 16,
        "lora_r": 4,
        "adapter_bottleneck": 8,
    }
    return FinetuneConfig(**{**settings, **overrides})


def _base_name(name: str) -> str:
    """The plain model's name of a tuned model's base tensor (peft renames LoRA'd layers)."""
    return name.replace(".base_layer.", ".")


@pytest.fixture(scope="module")
def runs(tiny_models, tiny_task, tmp_path_factory) -> dict[str, list[Checkpoint]]:
    """Two runs (head seeds 0 and 1) per tuned method, final checkpoints only."""
    out = tmp_path_factory.mktemp("tuned")
    return {
        method: [
            finetune(
                _config(tiny_models, method, name=f"{method}-{s}", head_seed=s), tiny_task, out
            )[-1]
            for s in (0, 1)
        ]
        for method in TUNED
    }


def test_every_method_has_a_training_rule():
    assert {"full", "bitfit", "lora", "adapter"} <= set(METHODS) == set(SPECS)
    for spec in SPECS.values():
        assert spec.trains is not TuningSpec.trains, spec  # each says what trains


@pytest.mark.parametrize("method", TUNED)
def test_only_the_added_modules_and_the_head_train(method, runs, tiny_models, tiny_task):
    checkpoint = runs[method][0]
    trained = saved_tensors(checkpoint)
    base = load_file(str(tiny_models[0] / "model.safetensors"))
    if method == "lora":  # a peft adapter folder: it holds no frozen tensor that could drift
        adapter = load_file(str(checkpoint.path / "adapter_model.safetensors"))
        assert all("lora_" in n or n.startswith("base_model.model.classifier.") for n in adapter)
    frozen = [n for n in trained if not is_tuning_module(n) and not is_head(n)]
    assert {_base_name(n) for n in frozen} == {n for n in base if not is_head(n)}
    for name in frozen:
        assert torch.equal(trained[name], base[_base_name(name)]), name
    start, _ = initial_model(_config(tiny_models, method, name=checkpoint.name), tiny_task)
    start_state = start.state_dict()
    moved = [n for n in trained if not torch.equal(trained[n], start_state[n])]
    assert moved and all(is_tuning_module(n) or is_head(n) for n in moved)
    assert any(is_tuning_module(n) for n in moved) and "classifier.weight" in moved
    log = json.loads((checkpoint.path.parent / "train_log.json").read_text())["log"]
    assert len({round(entry["loss"], 6) for entry in log}) > 1  # the loss changes


@pytest.mark.parametrize("method", TUNED)
def test_checkpoint_rebuilds_with_the_same_tensor_names(method, runs):
    checkpoint = Checkpoint.from_path(runs[method][0].path)
    assert read_tuning_spec(checkpoint.path).method == method
    model = build_model(checkpoint)
    reader = TensorReader(checkpoint)
    assert set(model.state_dict()) == set(reader.keys())
    check_compatible(model, [reader])
    assert not model.training


def _independent_model(method: str, checkpoint: Checkpoint, tiny_models, tiny_task):
    """The trained model rebuilt without build_model: peft's own PeftModel.from_pretrained over
    the base for LoRA (a run saves a peft adapter folder); the training-time construction
    (from_pretrained + adapters) loaded strictly for adapters."""
    if method == "lora":
        from peft import PeftModel
        from transformers import AutoModelForSequenceClassification

        plain = AutoModelForSequenceClassification.from_pretrained(
            str(tiny_models[0]), trust_remote_code=False
        )
        model = PeftModel.from_pretrained(plain, str(checkpoint.path), trust_remote_code=False)
    else:
        state = load_file(str(checkpoint.path / "model.safetensors"))
        model, _ = initial_model(_config(tiny_models, method), tiny_task)
        model.load_state_dict(state, strict=True)
    return model.eval()


@pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing`:FutureWarning")  # peft's call
@pytest.mark.parametrize("method", TUNED)
def test_interpolation_endpoints_reproduce_each_model(method, runs, tiny_models, tiny_task):
    from weightscape.evaluation.engine import Engine
    from weightscape.evaluation.evaluator import Evaluator, load_tokenizer

    a, b = runs[method]
    engine = Engine([a, b], tiny_task, space=ParameterSpace("tuned"), device="cpu")
    evaluator = Evaluator(load_tokenizer(a.path), tiny_task)
    for coefficients, checkpoint in (((1.0, 0.0), a), ((0.0, 1.0), b)):
        walked = engine.evaluate(coefficients)
        alone = evaluator.evaluate(_independent_model(method, checkpoint, tiny_models, tiny_task))
        np.testing.assert_array_equal(walked.losses, alone.losses)
        np.testing.assert_array_equal(walked.predictions, alone.predictions)
    middle = engine.evaluate((0.5, 0.5)).losses
    assert np.isfinite(middle).all() and not np.array_equal(middle, walked.losses)


@pytest.mark.parametrize("method", TUNED)
def test_tuned_model_starts_as_the_model_it_tunes(method, tiny_models, tiny_task):
    config = _config(tiny_models, method)
    plain, tokenizer = _load_base(config, tiny_task)
    tuned, _ = initial_model(config, tiny_task)
    inputs = tokenizer(list(tiny_task.text_a[:8]), padding=True, return_tensors="pt")
    with torch.no_grad():
        assert torch.equal(plain.eval()(**inputs).logits, tuned.eval()(**inputs).logits)


@pytest.mark.parametrize("method", TUNED)
def test_module_seed_alone_draws_the_added_modules(method, tiny_models, tiny_task):
    def start(**seeds) -> dict[str, torch.Tensor]:
        model, _ = initial_model(_config(tiny_models, method, **seeds), tiny_task)
        return {n: t.clone() for n, t in model.state_dict().items()}

    first, same, other = start(module_seed=3), start(module_seed=3, head_seed=1), start()
    added = [n for n in first if is_tuning_module(n)]
    assert all(torch.equal(first[n], same[n]) for n in added)
    assert not torch.equal(first["classifier.weight"], same["classifier.weight"])
    assert any(not torch.equal(first[n], other[n]) for n in added)  # module_seed follows head


def test_init_noise_has_the_requested_std_and_its_own_seed(tiny_models, tiny_task):
    def start(**noise) -> dict[str, torch.Tensor]:
        model, _ = _config_model(tiny_models, tiny_task, **noise)
        return {n: t.clone() for n, t in model.named_parameters()}

    clean, noisy = start(), start(init_noise_std=0.01, init_noise_seed=1)
    body = [n for n in clean if not is_head(n)]
    diff = torch.cat([(noisy[n] - clean[n]).flatten() for n in body])
    assert diff.numel() > 20_000 and abs(diff.std().item() - 0.01) < 0.0005
    assert abs(diff.mean().item()) < 0.0005
    assert torch.equal(noisy["classifier.weight"], clean["classifier.weight"])
    again, other = start(init_noise_std=0.01, init_noise_seed=1), start(init_noise_std=0.01)
    assert all(torch.equal(noisy[n], again[n]) for n in body)
    assert not torch.equal(noisy[body[0]], other[body[0]])


def _config_model(tiny_models, tiny_task, **overrides):
    return initial_model(_config(tiny_models, "full", **overrides), tiny_task)


def test_tuned_space_selects_added_tensors_and_the_head(runs):
    names = TensorReader(runs["lora"][0]).keys()
    chosen = ParameterSpace("tuned").select(names)
    assert {n for n in chosen if not is_head(n)} == {n for n in names if "lora_" in n}
    assert {"classifier.weight", "classifier.bias"} <= set(chosen)
    plain = [_base_name(n) for n in names if not is_tuning_module(n)]
    with pytest.raises(WeightscapeError, match="not tuned with --method lora or adapter"):
        ParameterSpace("tuned").select(plain)


def test_sidecar_round_trip_and_problems(runs):
    spec = read_tuning_spec(runs["lora"][0].path)
    assert spec == LoraSpec(r=4, alpha=16.0, dropout=0.0, target_modules=("query", "value"))
    sidecar = json.loads((runs["adapter"][0].path / SIDECAR).read_text())
    assert sidecar == {"method": "adapter", "bottleneck": 8, "nonlinearity": "gelu"}
    with pytest.raises(WeightscapeError) as err:
        spec_from_json({"method": "lora", "r": 0, "alpha": -1, "rank": 2})
    expected = ("rank: unknown key", "r: Input should be greater", "alpha: Input should be greater")
    assert all(s in str(err.value) for s in expected), str(err.value)
    with pytest.raises(WeightscapeError, match="one of lora, adapter"):
        spec_from_json({"method": "prefix"})


def test_missing_targets_are_reported(tiny_models):
    model = build_model(Checkpoint.from_path(tiny_models[0]))
    with pytest.raises(WeightscapeError, match="target modules"):
        apply_tuning(model, LoraSpec(target_modules=("q_proj",)))
    plain = build_model(Checkpoint.from_path(tiny_models[0]))
    adapted = apply_tuning(plain, AdapterSpec(bottleneck=4))
    assert sum(".adapter.down.weight" in n for n in adapted.state_dict()) == 4  # 2 per layer


def test_invalid_tuning_options_are_refused(tiny_models):
    for bad in ({"lora_r": 0}, {"lora_dropout": 1.0}, {"adapter_bottleneck": 0}):
        with pytest.raises(ValidationError):
            _config(tiny_models, "lora", **bad)


def test_sidecar_bytes_are_those_of_earlier_checkpoints(tmp_path):
    """A sidecar is part of a checkpoint's fingerprint (store keys): its format must not move,
    and sidecars written before tuning methods were plug-ins must still load."""
    lora = LoraSpec(r=4)
    write_tuning_spec(tmp_path, lora)
    assert (tmp_path / SIDECAR).read_text() == (
        '{\n "method": "lora",\n "r": 4,\n "alpha": 16.0,\n "dropout": 0.0,\n'
        ' "target_modules": [\n  "query",\n  "value"\n ]\n}\n'
    )
    assert read_tuning_spec(tmp_path) == lora
    old = '{"method": "adapter", "bottleneck": 8, "nonlinearity": "gelu"}'
    (tmp_path / SIDECAR).write_text(old)
    assert read_tuning_spec(tmp_path) == AdapterSpec(bottleneck=8)


def test_adapter_nonlinearities_are_the_modules_own():
    import typing

    from weightscape.models.adapters import NONLINEARITIES

    choices = typing.get_args(AdapterSpec.model_fields["nonlinearity"].annotation)
    assert set(choices) == set(NONLINEARITIES)


def test_adapter_init_schemes_are_the_modules_own():
    import typing

    from weightscape.models.adapters import INIT_SCHEMES

    choices = typing.get_args(AdapterSpec.model_fields["init"].annotation)
    assert choices == INIT_SCHEMES and AdapterSpec().init == "zero-up"


def _adapter_start(tiny_models, tiny_task, **overrides) -> dict[str, torch.Tensor]:
    model, _ = initial_model(_config(tiny_models, "adapter", **overrides), tiny_task)
    state = model.state_dict()
    return {n: state[n].clone() for n in state if ".adapter." in n}


def _projection(state: dict[str, torch.Tensor], part: str) -> torch.Tensor:
    return torch.cat([t.flatten() for n, t in state.items() if n.endswith(part)])


def test_gaussian_adapter_init_draws_both_projections_from_the_module_seed(tiny_models, tiny_task):
    """Qin et al. (2022, App. C.1) draw every new module from N(0, std^2): two module seeds differ
    in both projections. Expected std: the scheme's; the sample std of 4 adapters x 8 x 32 = 1024
    draws per projection is within 10% of it (its standard error is about 2%)."""
    gaussian = {"adapter_init": "gaussian", "adapter_init_std": 0.05}
    first = _adapter_start(tiny_models, tiny_task, module_seed=1, **gaussian)
    again = _adapter_start(tiny_models, tiny_task, module_seed=1, head_seed=3, **gaussian)
    other = _adapter_start(tiny_models, tiny_task, module_seed=2, **gaussian)
    for part in ("down.weight", "up.weight"):
        drawn = _projection(first, part)
        assert drawn.numel() == 4 * 8 * 32
        assert abs(drawn.std().item() - 0.05) < 0.005 and abs(drawn.mean().item()) < 0.005
        assert torch.equal(drawn, _projection(again, part))  # the module seed alone decides
        assert not torch.equal(drawn, _projection(other, part))
    for part in ("down.bias", "up.bias"):
        assert not _projection(first, part).any()  # Qin's adapters have no bias: ours start at 0
    # The default scheme: only the down-projection is drawn (std 1e-2), the up-projection is 0,
    # so two module seeds share the up-projection.
    zero_up = _adapter_start(tiny_models, tiny_task, module_seed=1)
    zero_other = _adapter_start(tiny_models, tiny_task, module_seed=2)
    assert not _projection(zero_up, "up.weight").any()
    assert torch.equal(_projection(zero_up, "up.weight"), _projection(zero_other, "up.weight"))
    assert abs(_projection(zero_up, "down.weight").std().item() - 1e-2) < 1e-3


def test_gaussian_init_round_trips_through_the_sidecar(tmp_path):
    spec = AdapterSpec(bottleneck=8, init="gaussian", init_std=2e-4)
    write_tuning_spec(tmp_path, spec)
    assert json.loads((tmp_path / SIDECAR).read_text()) == {
        "method": "adapter",
        "bottleneck": 8,
        "nonlinearity": "gelu",
        "init": "gaussian",
        "init_std": 2e-4,
    }
    assert read_tuning_spec(tmp_path) == spec
    write_tuning_spec(tmp_path, AdapterSpec(bottleneck=8))  # the default: earlier bytes
    assert json.loads((tmp_path / SIDECAR).read_text()) == {
        "method": "adapter",
        "bottleneck": 8,
        "nonlinearity": "gelu",
    }
    with pytest.raises(ValidationError):
        AdapterSpec(init="uniform")
    with pytest.raises(ValidationError):
        AdapterSpec(init_std=0)
