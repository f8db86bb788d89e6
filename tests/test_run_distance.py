"""``weightscape run-distance`` (Qin et al. 2022, Fig. 12) on runs with hand-made deltas.

Run ``a`` saves the tiny model unchanged at steps 10 and 20; run ``b`` saves it with known changes:
at step 10, neuron 2 of layer 0's query (its row of 32 weights +0.5 each, its bias +2.0), so
||a - b||^2 = 32 * 0.25 + 4 = 12; at step 20 also the head weight [0, 0] -4.0: 12 + 16 = 28.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file, save_file

from weightscape.analyses.run_distance import compare_zoo_runs, distance_over_steps, runs_by_step
from weightscape.errors import WeightscapeError
from weightscape.models.space import ParameterSpace
from weightscape.models.zoo import Zoo

QUERY = "bert.encoder.layer.0.attention.self.query"


def _changed(state: dict, step: int) -> dict:
    out = {k: v.clone() for k, v in state.items()}
    out[QUERY + ".weight"][2] += 0.5
    out[QUERY + ".bias"][2] += 2.0
    if step == 20:
        out["classifier.weight"][0, 0] -= 4.0
    return out


@pytest.fixture(scope="module")
def zoo_file(tiny_models, tmp_path_factory):
    folder = tmp_path_factory.mktemp("runs")
    state = load_file(str(tiny_models[0] / "model.safetensors"))
    models = []
    for run in ("a", "b"):
        for step in (10, 20):
            weights = state if run == "a" else _changed(state, step)
            save_file(weights, str(folder / f"{run}-{step}.safetensors"))
            tags = {"run": run, "step": step}
            models.append(
                {"name": f"{run}@{step}", "path": f"{run}-{step}.safetensors", "tags": tags}
            )
    manifest = folder / "zoo.yaml"
    manifest.write_text(yaml.safe_dump({"config": str(tiny_models[0]), "models": models}))
    return manifest, state


def test_distance_per_weight_cosine_and_neurons_match_the_hand_deltas(zoo_file):
    manifest, state = zoo_file
    result = compare_zoo_runs(Zoo.from_manifest(manifest), "a", "b")
    n = sum(t.numel() for t in state.values() if t.is_floating_point())
    assert result.steps == [10, 20] and result.parameters == n
    # float32 weights: w + 0.5 - w is 0.5 to float32 rounding
    assert result.distance == pytest.approx([math.sqrt(12), math.sqrt(28)], rel=1e-6)
    assert result.per_parameter == pytest.approx([math.sqrt(12 / n), math.sqrt(28 / n)], rel=1e-6)
    # cosine of the flattened weights, computed here in numpy from the saved states
    a = np.concatenate([t.double().numpy().ravel() for t in state.values()])
    for step, cosine in zip(result.steps, result.cosine, strict=True):
        changed = _changed(state, step)
        b = np.concatenate([changed[k].double().numpy().ravel() for k in state])
        assert cosine == pytest.approx(a @ b / np.linalg.norm(a) / np.linalg.norm(b), rel=1e-12)
    # per neuron: layer 0 has 32 + 32 + 32 + 32 (attention) + 64 + 32 (feed-forward) = 224
    # neurons, one of which moved by sqrt(12) (its row and its bias); embeddings are no neurons.
    layer0 = result.neurons[10]["layer.0"]
    assert layer0["count"] == 224 and layer0["max"] == pytest.approx(math.sqrt(12), rel=1e-6)
    assert layer0["median"] == 0 and layer0["mean"] == pytest.approx(math.sqrt(12) / 224, rel=1e-6)
    assert result.neurons[10]["layer.1"]["max"] == 0
    assert result.neurons[10]["head"]["max"] == 0
    head = result.neurons[20]["head"]  # 2 rows of 32 and 2 biases; row 0 moved by 4
    assert (head["count"], head["min"]) == (2, 0.0)
    assert (head["max"], head["mean"]) == pytest.approx((4.0, 2.0), rel=1e-6)
    assert not any("embed" in layer for layer in result.neurons[10])


def test_the_total_agrees_with_distance_over_steps_and_follows_the_space(zoo_file):
    manifest, _ = zoo_file
    zoo = Zoo.from_manifest(manifest)
    runs = runs_by_step(list(zoo))
    result = compare_zoo_runs(zoo, "a", "b")
    assert list(distance_over_steps(runs["a"], runs["b"]).values()) == pytest.approx(
        result.distance, rel=1e-9
    )
    head = compare_zoo_runs(zoo, "a", "b", space=ParameterSpace(include=("^classifier",)))
    assert head.distance == pytest.approx([0.0, 4.0], rel=1e-6)
    assert head.parameters == 2 * 32 + 2
    only = compare_zoo_runs(zoo, "b", "a", steps=[20])
    assert only.steps == [20] and only.runs == ("b", "a")
    with pytest.raises(WeightscapeError, match=r"Step\(s\) \[30\] were not saved by both runs"):
        compare_zoo_runs(zoo, "a", "b", steps=[20, 30])
    with pytest.raises(WeightscapeError, match="Unknown run 'c'"):
        compare_zoo_runs(zoo, "a", "c")


def test_run_distance_command(zoo_file, tmp_path, capsys):
    from weightscape.cli.main import main

    manifest, _ = zoo_file
    argv = ["run-distance", "a", "b", "--zoo", str(manifest), "--out", str(tmp_path)]
    assert main(argv) == 0, capsys.readouterr().err
    for name in ("run-distance.json", "run-distance.csv", "run-distance.png"):
        assert (tmp_path / name).is_file(), name
    saved = json.loads((tmp_path / "run-distance.json").read_text())
    assert saved["distance"] == pytest.approx([math.sqrt(12), math.sqrt(28)], rel=1e-6)
    assert saved["neurons"]["20"]["head"]["max"] == pytest.approx(4.0, rel=1e-6)
    assert "a vs b" in capsys.readouterr().out
    assert main(["run-distance", "a", "a", "--zoo", str(manifest)]) == 2
    assert "RUNS: give exactly 2 different runs" in capsys.readouterr().err


def test_different_shapes_are_refused(tmp_path):
    from weightscape.analyses.run_distance import compare_runs
    from weightscape.models.checkpoint import Checkpoint

    save_file({"w": torch.zeros(2, 3)}, str(tmp_path / "a.safetensors"))
    save_file({"w": torch.zeros(3, 2)}, str(tmp_path / "b.safetensors"))
    a, b = (Checkpoint.from_path(tmp_path / f"{n}.safetensors") for n in "ab")
    with pytest.raises(WeightscapeError, match="holds another shape of the tensor 'w'"):
        compare_runs({1: a}, {1: b})
