"""Conformance of every registered tuning method (:mod:`weightscape.models.tuning`).

Each test is parametrised over the registry, so a new method is tested here by registering it:
its spec round-trips through JSON (alone, inside a FinetuneConfig, spelled flat, as a sidecar);
its options are flags and zoo-file keys; a 2-step finetune on the tiny model moves only the
parameters the method says train; and its checkpoint reloads through the engine with the trained
model's outputs.
"""

from __future__ import annotations

import json
import typing

import numpy as np
import pytest
import torch
from pydantic import TypeAdapter

from conftest import saved_tensors
from weightscape.models.checkpoint import Checkpoint
from weightscape.models.tuning import METHODS, SPECS, AnySpec
from weightscape.models.tuning_spec import SIDECAR, read_tuning_spec, spec_from_json, spec_to_json
from weightscape.training.finetune import FinetuneConfig, finetune, initial_model


def _config(tiny_models, method: str) -> FinetuneConfig:
    return FinetuneConfig(
        name=f"{method}-conformance",
        base=str(tiny_models[0]),
        tuning=SPECS[method](),
        steps=2,
        batch_size=8,
        lr=1e-2,
        max_length=16,
    )


@pytest.fixture(scope="module")
def trained(tiny_models, tiny_task, tmp_path_factory) -> dict[str, Checkpoint]:
    """Each method's 2-step run on the tiny model: its last checkpoint."""
    out = tmp_path_factory.mktemp("methods")
    return {m: finetune(_config(tiny_models, m), tiny_task, out)[-1] for m in METHODS}


@pytest.mark.parametrize("method", METHODS)
def test_spec_round_trips_through_json(method):
    spec = SPECS[method]()
    assert spec.method == method
    assert SPECS[method].model_validate_json(spec.model_dump_json()) == spec
    assert TypeAdapter(AnySpec).validate_json(spec.model_dump_json()) == spec  # by discriminator
    config = FinetuneConfig(name="run", tuning=spec)
    assert FinetuneConfig.model_validate_json(config.model_dump_json()) == config
    assert FinetuneConfig.model_validate(config.flat()) == config  # method: x, x_option: ...
    assert FinetuneConfig(name="run", method=method).tuning == spec
    if spec.adds_modules():
        assert spec_from_json(json.loads(json.dumps(spec_to_json(spec)))) == spec


@pytest.mark.parametrize("method", METHODS)
def test_every_option_is_a_flag_and_a_zoo_file_key(method):
    from weightscape.studies.finetune import Config
    from weightscape.training.sweeps import RunOverrides

    assert method in typing.get_args(Config.model_fields["method"].annotation)
    for option, info in SPECS[method].model_fields.items():
        if option == "method":
            continue
        key = f"{method}_{option}"
        assert info.description, key
        assert Config.model_fields[key].default == info.default
        assert Config.model_fields[key].metadata == info.metadata  # the same constraints
        assert key in RunOverrides.model_fields


@pytest.mark.parametrize("method", METHODS)
def test_only_the_parameters_the_method_says_train(method, trained, tiny_models, tiny_task):
    config = _config(tiny_models, method)
    start, _ = initial_model(config, tiny_task)  # the run's start, drawn from the same seeds
    start_params = {name: p.detach() for name, p in start.named_parameters()}
    after = saved_tensors(trained[method])
    assert set(start_params) <= set(after)
    trains = {name for name in start_params if config.tuning.trains(name)}
    moved = {name for name in start_params if not torch.equal(after[name], start_params[name])}
    assert trains and moved, "something trains, and it moved"
    assert moved <= trains, sorted(moved - trains)
    specs = [f for f in (SIDECAR, "adapter_config.json") if (trained[method].path / f).is_file()]
    assert bool(specs) == config.tuning.adds_modules()  # how to rebuild the added modules


@pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing`:FutureWarning")  # peft's call
@pytest.mark.parametrize("method", METHODS)
def test_checkpoint_reloads_through_the_engine(method, trained, tiny_models, tiny_task):
    from weightscape.evaluation.engine import Engine
    from weightscape.evaluation.evaluator import Evaluator, load_tokenizer

    checkpoint = Checkpoint.from_path(trained[method].path)
    spec = read_tuning_spec(checkpoint.path)
    assert spec == (SPECS[method]() if SPECS[method].adds_modules() else None)
    walked = Engine([checkpoint], tiny_task, device="cpu").evaluate((1.0,))
    # The trained model: the training-time construction holding the saved tensors, every one.
    model, _ = initial_model(_config(tiny_models, method), tiny_task)
    model.load_state_dict(saved_tensors(checkpoint), strict=True)
    alone = Evaluator(load_tokenizer(checkpoint.path), tiny_task).evaluate(model.eval())
    np.testing.assert_array_equal(walked.losses, alone.losses)
    np.testing.assert_array_equal(walked.predictions, alone.predictions)
