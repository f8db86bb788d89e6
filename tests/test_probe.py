"""The generalised loss: linear probes over frozen encoders, in the engine."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conftest import generated_texts, save_tiny_model
from weightscape.data import make_task, split
from weightscape.errors import WeightscapeError
from weightscape.evaluation.engine import Engine, EngineSpec
from weightscape.evaluation.evaluator import EvalSettings, load_tokenizer, tokenised_batches
from weightscape.evaluation.probe import (
    Probe,
    ProbeSettings,
    fit_linear_probe,
    head_inputs,
    probe_outcomes,
)
from weightscape.models.architecture import build_model
from weightscape.models.checkpoint import Checkpoint
from weightscape.models.space import ParameterSpace
from weightscape.runtime.executor import evaluate_points
from weightscape.runtime.store import ResultStore


def _planted(n: int, seed: int, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.random.default_rng(seed).normal(size=(n, len(w)))
    return x, (x @ w > 0).astype(np.int64)


def test_probe_recovers_a_planted_linear_separator():
    w = np.random.default_rng(0).normal(size=12)
    train_x, train_y = _planted(600, 1, w)
    test_x, test_y = _planted(400, 2, w)
    probe = fit_linear_probe(train_x, train_y, 2, ProbeSettings(c=100.0))
    result = probe_outcomes(probe, test_x, test_y, 2)
    assert result.metrics["accuracy"] > 0.97
    # The learned normal, mapped back through the standardisation, points along w.
    scaler, logistic = probe[0], probe[-1]
    normal = logistic.coef_[0] / scaler.scale_
    assert normal @ w / np.linalg.norm(normal) / np.linalg.norm(w) > 0.98
    # Labels carry no signal: the probe stays near chance on fresh data.
    noise_y = np.random.default_rng(3).integers(0, 2, size=600)
    chance = probe_outcomes(
        fit_linear_probe(train_x, noise_y, 2, ProbeSettings()), test_x, test_y, 2
    )
    assert chance.metrics["accuracy"] < 0.65


def test_probe_outcomes_are_consistent():
    w = np.array([1.0, -1.0, 0.5])
    x, y = _planted(200, 4, w)
    result = probe_outcomes(fit_linear_probe(x, y, 2, ProbeSettings()), x, y, 2)
    assert np.allclose(result.losses, -np.log(result.p_true), atol=1e-5)
    assert result.metrics["loss"] == pytest.approx(float(result.losses.mean()))


def test_probe_refuses_training_data_without_a_class():
    x = np.zeros((4, 2))
    with pytest.raises(WeightscapeError, match=r"lacks labels \[2\]"):
        fit_linear_probe(x, np.array([0, 1, 0, 1]), 3, ProbeSettings())
    with pytest.raises(WeightscapeError, match="'c' parameter"):
        ProbeSettings(c=0.0)


def test_head_inputs_are_the_pooled_representation(tiny_models, tiny_task, tokenizer_dir):
    model = build_model(Checkpoint.from_path(tiny_models[0]))
    settings = EvalSettings(batch_size=7)
    batches = tokenised_batches(load_tokenizer(tokenizer_dir), tiny_task, settings, "cpu")
    features = head_inputs(model, batches, len(tiny_task))
    with torch.inference_mode():
        for idx, inputs in batches:
            pooled = model.bert(**inputs).pooler_output
            assert np.allclose(features[idx], pooled.numpy(), atol=1e-6)


@pytest.fixture(scope="module")
def mixed_heads(tmp_path_factory, tokenizer_dir):
    """Two 2-label models and one 3-label model over one encoder architecture."""
    root = tmp_path_factory.mktemp("heads")
    two = [save_tiny_model(root / f"two{s}", s, tokenizer_dir) for s in (0, 1)]
    three = save_tiny_model(root / "three", 2, tokenizer_dir, num_labels=3)
    return [Checkpoint.from_path(p) for p in (*two, three)]


@pytest.fixture(scope="module")
def probe_task():
    texts, labels = generated_texts(120, seed=5)
    return split(make_task("probe", texts, labels, ("negative", "positive")), seed=0)


def test_engine_probe_combines_models_with_other_heads(mixed_heads, probe_task):
    probe = Probe(probe_task["train"])
    engine = Engine(mixed_heads, probe_task["test"], probe=probe)
    result = engine.evaluate([0.25, 0.25, 0.5])
    assert np.isfinite(result.losses).all() and len(result.losses) == len(probe_task["test"])
    with pytest.raises(WeightscapeError, match="three"):
        Engine(mixed_heads, probe_task["test"])  # the own-head loss cannot mix the heads


def test_probe_ignores_the_head_and_keys_apart(mixed_heads, probe_task):
    probe = Probe(probe_task["train"])
    a, b = mixed_heads[0], mixed_heads[1]
    with_probe = Engine([a, b], probe_task["test"], probe=probe, space=ParameterSpace("no-head"))
    other_ref = Engine(
        [a, b], probe_task["test"], probe=probe, space=ParameterSpace("no-head"), reference=1
    )
    # With heads ignored, no-head covers every tensor that matters: the reference is irrelevant.
    assert with_probe.spec([0.5, 0.5]) == other_ref.spec([0.5, 0.5])
    r1, r2 = with_probe.evaluate([0.5, 0.5]), other_ref.evaluate([0.5, 0.5])
    assert np.allclose(r1.losses, r2.losses, atol=1e-5)
    plain = Engine([a, b], probe_task["test"])
    assert plain.spec([0.5, 0.5]) != with_probe.spec([0.5, 0.5])
    stronger = Probe(probe_task["train"], ProbeSettings(c=0.01))
    assert Engine([a, b], probe_task["test"], probe=stronger).spec([1, 0]) != with_probe.spec(
        [1, 0]
    )


def test_probe_results_are_stored_and_features_cached(mixed_heads, probe_task, tmp_path):
    spec = EngineSpec(tuple(mixed_heads), probe_task["test"], probe=Probe(probe_task["train"]))
    engine = spec.build()
    store = ResultStore(tmp_path / "r.sqlite")
    first = evaluate_points(engine, [[1, 0, 0], [0, 0, 1]], store)
    passes = engine.evaluator.forward_passes
    again = evaluate_points(engine, [[1, 0, 0], [0, 0, 1]], store)
    store.close()
    assert [e.cached for e in again] == [True, True] and engine.evaluator.forward_passes == passes
    assert np.array_equal(first[1].result.losses, again[1].result.losses)
    # Features of a point are computed once: evaluating it again reuses them.
    engine.evaluate([1, 0, 0])
    assert engine.evaluator.forward_passes == passes


def test_probe_needs_matching_label_sets(mixed_heads, probe_task):
    texts, labels = generated_texts(30, seed=6)
    other = make_task("other", texts, labels, ("bad", "good"))
    with pytest.raises(WeightscapeError, match="train and test splits of one task"):
        Engine(mixed_heads, probe_task["test"], probe=Probe(other))


def test_cli_paths_between_models_of_other_label_sets(mixed_heads, tiny_csv, tmp_path, capsys):
    from weightscape.cli.main import main

    argv = [
        "interpolate",
        str(mixed_heads[0].path),
        str(mixed_heads[2].path),  # a 3-label model: only a generalised loss compares them
        "--task",
        str(tiny_csv),
        "--split",
        "test",
        "--points",
        "3",
        "--out",
        str(tmp_path),
        "--no-progress",
        "--device",
        "cpu",
    ]
    assert main([*argv, "--probe-train", "40"]) == 0, capsys.readouterr().err
    walk = json.loads((tmp_path / "path.json").read_text())
    assert all(np.isfinite(p["metrics"]["loss"]) for p in walk["points"])
    capsys.readouterr()
    assert main(argv) == 2  # the own-head loss cannot mix a 2-label and a 3-label head
    assert "shape of classifier.weight" in capsys.readouterr().err
    assert main([*argv, "--probe-train", "40", "--split", "train"]) == 2
    assert "evaluate on another split" in capsys.readouterr().err
