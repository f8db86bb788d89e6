"""The engine: in-place writes, exact endpoints, one working model, compatibility errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from weightscape.errors import WeightscapeError
from weightscape.evaluation.engine import Engine
from weightscape.evaluation.evaluator import EvalSettings, Evaluator, load_tokenizer
from weightscape.models.checkpoint import Checkpoint, TensorReader
from weightscape.models.space import ParameterSpace


def _own_evaluation(folder, task, tokenizer_dir):
    """Evaluate a checkpoint loaded the ordinary way, independently of the engine's writes."""
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(
        str(folder), trust_remote_code=False
    ).eval()
    evaluator = Evaluator(load_tokenizer(tokenizer_dir), task, EvalSettings(batch_size=16))
    return evaluator.evaluate(model)


def test_one_hot_points_reproduce_anchors_exactly(tiny_models, tiny_task, tokenizer_dir):
    a, b = (Checkpoint.from_path(p) for p in tiny_models[:2])
    engine = Engine([a, b], tiny_task, settings=EvalSettings(batch_size=16), device="cpu")
    for coefficients, folder in (([1.0, 0.0], tiny_models[0]), ([0.0, 1.0], tiny_models[1])):
        engine.evaluate([0.5, 0.5])  # dirty the working model first
        got = engine.evaluate(coefficients)
        want = _own_evaluation(folder, tiny_task, tokenizer_dir)
        assert got.metrics == want.metrics
        np.testing.assert_array_equal(got.losses, want.losses)
        np.testing.assert_array_equal(got.p_true, want.p_true)


def test_midpoint_weights_are_the_average(tiny_models, tiny_task):
    a, b = (Checkpoint.from_path(p) for p in tiny_models[:2])
    engine = Engine([a, b], tiny_task, device="cpu")
    engine.working.write(engine.anchors, [0.25, 0.75], engine.space)
    ra, rb = TensorReader(a), TensorReader(b)
    for name, tensor in engine.working.model.state_dict().items():
        torch.testing.assert_close(tensor, 0.25 * ra.get(name) + 0.75 * rb.get(name))


def test_space_copies_tensors_outside_it_from_the_reference(tiny_models, tiny_task):
    a, b = (Checkpoint.from_path(p) for p in tiny_models[:2])
    engine = Engine([a, b], tiny_task, space=ParameterSpace("no-head"), device="cpu")
    engine.working.write(engine.anchors, [0.0, 1.0], engine.space)
    ra, rb = TensorReader(a), TensorReader(b)
    state = engine.working.model.state_dict()
    torch.testing.assert_close(state["classifier.weight"], ra.get("classifier.weight"))
    torch.testing.assert_close(
        state["bert.pooler.dense.weight"], rb.get("bert.pooler.dense.weight")
    )


def test_three_anchor_combination(tiny_models, tiny_task):
    anchors = [Checkpoint.from_path(p) for p in tiny_models]
    engine = Engine(anchors, tiny_task, device="cpu")
    engine.working.write(engine.anchors, [0.2, 0.3, 0.5], engine.space)
    readers = [TensorReader(c) for c in anchors]
    name = "bert.encoder.layer.1.output.dense.weight"
    want = 0.2 * readers[0].get(name) + 0.3 * readers[1].get(name) + 0.5 * readers[2].get(name)
    torch.testing.assert_close(engine.working.model.state_dict()[name], want)


def test_walk_builds_one_model(tiny_models, tiny_task, monkeypatch):
    """During a walk the working model is the only full model constructed."""
    from transformers import BertForSequenceClassification

    from weightscape.analyses.interpolation import walk_path
    from weightscape.geometry import even_grid

    built = []
    original = BertForSequenceClassification.__init__

    def counting_init(self, *args, **kwargs):
        built.append(1)
        original(self, *args, **kwargs)

    monkeypatch.setattr(BertForSequenceClassification, "__init__", counting_init)
    anchors = [Checkpoint.from_path(p) for p in tiny_models]
    engine = Engine(anchors, tiny_task, device="cpu")
    walk_path(engine, even_grid(5), path="polychain")
    assert len(built) == 1


def test_mismatched_architectures_name_the_tensors(tiny_models, tokenizer_dir, tmp_path, tiny_task):
    from conftest import save_tiny_model

    wide = save_tiny_model(tmp_path / "wide", 0, tokenizer_dir, hidden=48)
    with pytest.raises(WeightscapeError) as err:
        Engine(
            [Checkpoint.from_path(tiny_models[0]), Checkpoint.from_path(wide)],
            tiny_task,
            device="cpu",
        )
    message = str(err.value)
    assert (
        "shape of bert.embeddings.word_embeddings.weight: expected [25, 32], got [25, 48]"
        in message
    )
    assert "'wide'" in message


def test_label_count_mismatch_is_explained(tiny_models, tokenizer_dir, tmp_path, tiny_task):
    from conftest import save_tiny_model

    three = save_tiny_model(tmp_path / "three", 0, tokenizer_dir, num_labels=3)
    engine = Engine([Checkpoint.from_path(three)] * 2, tiny_task, device="cpu")
    with pytest.raises(WeightscapeError, match="3 output labels but task 'generated' has 2"):
        engine.evaluate([1.0, 0.0])


def test_walk_keeps_both_endpoints_when_names_collide(tiny_models, tiny_task, tmp_path):
    """Two checkpoints with one name (e.g. two run/model folders) keep separate results."""
    import shutil

    from weightscape.analyses.interpolation import walk_path
    from weightscape.geometry import even_grid

    for i in (0, 1):
        shutil.copytree(tiny_models[i], tmp_path / f"r{i}" / "model")
    a, b = (Checkpoint.from_path(tmp_path / f"r{i}" / "model") for i in (0, 1))
    assert a.name == b.name == "model"
    walk = walk_path(Engine([a, b], tiny_task, device="cpu"), even_grid(3))
    assert list(walk.endpoints) == ["model", "model#2"]
    assert walk.endpoints["model"] == walk.points[0].metrics
    assert walk.endpoints["model#2"] == walk.points[-1].metrics
