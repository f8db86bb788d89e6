"""Region studies on a tiny zoo: anchors, PB, edges and interpolation across data."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from conftest import generated_texts, save_tiny_model
from weightscape.analyses.region_anchors import (
    pretrained_anchor,
    random_direction,
    random_direction_anchor,
)
from weightscape.analyses.region_edges import centroid_moves, extrapolation_curves
from weightscape.analyses.region_paths import centroid_interpolation, interpolation_across_data
from weightscape.analyses.region_pb import region_comparisons
from weightscape.analyses.regions import RegionStudy, RegionTarget
from weightscape.data import make_task, split
from weightscape.errors import WeightscapeError
from weightscape.evaluation.engine import Engine
from weightscape.evaluation.probe import Probe
from weightscape.metrics.regions import pb
from weightscape.models.checkpoint import Checkpoint
from weightscape.runtime.store import ResultStore


def _perturbed(source, folder, seed, direction_seed, scale=0.05):
    """A copy of ``source`` moved along a group direction plus a little seeded noise."""
    import shutil

    shutil.copytree(source, folder)
    state = load_file(str(folder / "model.safetensors"))
    group = torch.Generator().manual_seed(direction_seed)
    noise = torch.Generator().manual_seed(1000 + seed)
    for name, tensor in state.items():
        if tensor.is_floating_point() and not name.startswith("classifier"):
            shift = torch.randn(tensor.shape, generator=group) + 0.3 * torch.randn(
                tensor.shape, generator=noise
            )
            state[name] = tensor + scale * shift
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    return folder


@pytest.fixture(scope="module")
def tiny_region(tmp_path_factory, tokenizer_dir):
    """A base and a zoo of two datasets (2 and 3 labels) x 3 seeds, with targets."""
    root = tmp_path_factory.mktemp("region")
    base = save_tiny_model(root / "base", 0, tokenizer_dir)
    base3 = save_tiny_model(root / "base3", 0, tokenizer_dir, num_labels=3)
    models = []
    for dataset, source, family, direction in (
        ("pos", base, "sentiment", 11),
        ("count", base3, "counting", 12),
    ):
        for seed in range(3):
            folder = _perturbed(source, root / f"{dataset}{seed}", seed, direction)
            tags = {"dataset": f"{dataset}:train", "family": family}
            models.append(Checkpoint.from_path(folder, name=f"{dataset}-s{seed}", tags=tags))
    texts, labels = generated_texts(90, seed=3)
    pos = split(make_task("pos", texts, labels, ("negative", "positive")))
    counts = [len(t.split()) % 3 for t in texts]
    count = split(make_task("count", texts, counts, ("zero", "one", "two")), ratios=(0.6, 0.1, 0.3))
    targets = {
        "pos": RegionTarget("pos", pos["train"], pos["test"]),
        "count": RegionTarget("count", count["train"], count["test"]),
    }
    return Checkpoint.from_path(base, name="base"), models, targets


@pytest.fixture(scope="module")
def study(tiny_region, tmp_path_factory):
    """One study for the module: its anchors are written and its engines built once."""
    base, models, targets = tiny_region
    folder = tmp_path_factory.mktemp("study")
    store = ResultStore(folder / "results.sqlite")
    return RegionStudy(
        models, base, targets, folder, random_directions=2, device="cpu", store=store
    )


def test_pretrained_anchor_is_the_base_under_model_names(tiny_region, tmp_path):
    base, models, _ = tiny_region
    anchor = pretrained_anchor(base, models[3], tmp_path)
    got, want, like = (
        load_file(str(c.path / "model.safetensors")) for c in (anchor, base, models[3])
    )
    for name, tensor in got.items():
        source = like if name.startswith("classifier") else want
        assert torch.equal(tensor, source[name]), name
    assert pretrained_anchor(base, models[3], tmp_path).path == anchor.path  # reused


def test_random_direction_norm_and_xavier_scale(tiny_region, tmp_path):
    base, models, _ = tiny_region
    direction = random_direction(models[0], norm=3.0, seed=1)
    total = torch.sqrt(sum((d * d).sum() for d in direction.values()))
    assert float(total) == pytest.approx(3.0)
    assert not any(name.startswith("classifier") for name in direction)
    # Xavier: std proportional to sqrt(2 / (fan_in + fan_out)); compare two matrix shapes.
    ffn = direction["bert.encoder.layer.0.intermediate.dense.weight"]  # 64 x 32
    query = direction["bert.encoder.layer.0.attention.self.query.weight"]  # 32 x 32
    ratio = float(ffn.std() / query.std())
    assert ratio == pytest.approx(np.sqrt(64 / 96), rel=0.15)
    other = random_direction(models[0], norm=3.0, seed=2)
    assert not torch.equal(other[next(iter(other))], direction[next(iter(direction))])
    pretrained = pretrained_anchor(base, models[0], tmp_path)
    anchor = random_direction_anchor(pretrained, 3.0, 1, tmp_path)
    moved, start = (load_file(str(c.path / "model.safetensors")) for c in (anchor, pretrained))
    name = "bert.encoder.layer.0.attention.self.query.weight"
    assert torch.allclose(moved[name] - start[name], direction[name].float(), atol=1e-6)


def test_random_anchors_have_the_mean_task_vector_norm(study):
    gram = study.gram()
    norms = study.task_vector_norms()
    for index in study.random_indices:
        assert np.sqrt(gram[index, index]) == pytest.approx(norms.mean(), rel=1e-4)
    assert gram[study.pretrained_index, study.pretrained_index] == pytest.approx(0.0, abs=1e-9)


def test_extrapolation_at_0_and_1_reproduces_the_endpoints(study, tiny_region):
    curves = extrapolation_curves(study, steps=3, reach=4.0)
    assert [c["group"] for c in curves] == ["pos", "count"]
    _base, models, targets = tiny_region
    for curve, (a, b) in zip(curves, ((0, 1), (3, 4)), strict=True):
        assert curve["t"] == [-3.0, -1.0, 0.0, 0.5, 1.0, 2.0, 4.0]
        target = targets[curve["group"]]
        for t, model in ((0.0, models[a]), (1.0, models[b])):
            alone = Engine([model], target.test, probe=Probe(target.train), device="cpu")
            expected = alone.evaluate([1.0]).metrics["loss"]
            assert curve["loss"][curve["t"].index(t)] == expected  # bit for bit


def test_region_comparisons_match_pb_of_the_measured_losses(study, tiny_region):
    rows = region_comparisons(study, hull_size=4)
    levels = [(r["level"], r["group"]) for r in rows]
    assert levels == [
        ("dataset", "pos"),
        ("dataset", "count"),
        ("family", "sentiment"),
        ("family", "counting"),
        ("general", "all"),
    ]
    pos = rows[0]
    assert (pos["n_in"], pos["n_hull"], pos["n_ex"]) == (3, 4, 3)
    # Independent check: evaluate the In models and the Ex models on the target directly.
    _, models, targets = tiny_region
    engine = Engine(models, targets["pos"].test, probe=Probe(targets["pos"].train), device="cpu")
    inside = [engine.evaluate(np.eye(6)[i]).metrics["loss"] for i in range(3)]
    outside = [engine.evaluate(np.eye(6)[i]).metrics["loss"] for i in range(3, 6)]
    assert pos["losses"]["In"] == pytest.approx(inside)
    assert pos["pb_in_ex"] == pb(inside, outside)
    general = rows[-1]
    assert general["n_ex"] == 2 and general["targets"] == ["count", "pos"]


def test_centroid_moves_start_at_the_centroid(study):
    records = centroid_moves(study, radii=[0.0, 1.0])
    assert [r["group"] for r in records] == ["pos", "count"]
    for record in records:
        moves = record["moves"]
        assert set(moves) == {"pretrained", "random0", "random1"}
        # r = 0 is the centroid whatever the direction.
        assert moves["pretrained"]["loss"][0] == moves["random0"]["loss"][0]
        assert np.mean(record["model_radii"]) == pytest.approx(1.0)


def test_interpolation_across_data_orients_and_summarises(study):
    result = interpolation_across_data(study, t=[0.0, 0.5, 1.0], max_pairs=2)
    categories = {c["category"] for c in result["curves"]}
    assert categories == {"dataset", "general"}  # two families: no same-family pair of datasets
    for curve in result["curves"]:
        own = curve["target"]
        assert curve["from"].startswith(own)  # t = 0 is the target's own model
    summary = result["summary"]["general"]
    assert summary["n_curves"] == 4 and len(summary["loss"]["mean"]) == 3
    centroids = centroid_interpolation(study, t=[0.0, 1.0])
    assert len(centroids["curves"]) == 2


def test_a_zoo_dataset_without_target_is_refused(tiny_region, tmp_path):
    base, models, targets = tiny_region
    with pytest.raises(WeightscapeError, match=r"\['count'\]"):
        RegionStudy(models, base, {"pos": targets["pos"]}, tmp_path)
    with pytest.raises(WeightscapeError, match="famly"):
        RegionStudy(models, base, targets, tmp_path, family_tag="famly")


def test_region_cli_end_to_end(tiny_region, tmp_path, capsys):
    import csv

    from weightscape.cli.main import main
    from weightscape.models.zoo import append_to_manifest

    base, models, _ = tiny_region
    texts, labels = generated_texts(60, seed=4)
    manifest = tmp_path / "zoo.yaml"
    for dataset, flip in (("a", 0), ("b", 1)):  # two table tasks: the labels and their flip
        path = tmp_path / f"{dataset}.csv"
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["text", "label"])
            writer.writerows((t, y ^ flip) for t, y in zip(texts, labels, strict=True))
        for model in models[:2] if flip == 0 else models[3:5]:
            tags = {"dataset": str(path), "family": "toy"}
            name = f"{dataset}-{model.name}"
            append_to_manifest(manifest, {"name": name, "path": str(model.path), "tags": tags})
    out = tmp_path / "out"
    argv = ["region", "--zoo", str(manifest), "--base", str(base.path), "--out", str(out)]
    small = ["--hull", "2", "--random", "1", "--probe-train", "30", "--probe-test", "10"]
    small += ["--radii", "0,1", "--extrapolation-steps", "2", "--reach", "2", "--max-pairs", "1"]
    assert main([*argv, *small, "--device", "cpu", "--no-progress"]) == 0, capsys.readouterr().err
    results = json.loads((out / "regions.json").read_text())
    assert {"comparisons", "extrapolation", "moves", "interpolation"} <= set(results)
    assert [r["group"] for r in results["comparisons"] if r["level"] == "dataset"] == [
        str(tmp_path / "a.csv"),
        str(tmp_path / "b.csv"),
    ]
    for name in ("regions.md", "region-losses.png", "region-moves.png"):
        assert (out / name).is_file()
    assert "PB(In,Ex)" in capsys.readouterr().out
    assert main([*argv, "--sections", "pb,edgs"]) == 2
    assert "Unknown section 'edgs'" in capsys.readouterr().err


def test_region_config_checks_flags_before_any_data(tmp_path, capsys):
    from weightscape.cli.main import main
    from weightscape.studies.region import Config

    assert Config(sections=["paths", "pb", "paths"]).sections == ("paths", "pb")
    out = str(tmp_path / "o")
    bad = ["--sections", "pb,edgs", "--reach", "1", "--extrapolation-steps", "1", "--hull", "0"]
    assert main(["region", "--zoo", "z.yaml", *bad, "--out", out]) == 2
    err = capsys.readouterr().err
    assert "--sections: Unknown section 'edgs'. Did you mean 'edges'?" in err
    assert "--reach: Input should be greater than 1. Got '1'." in err
    assert "--extrapolation-steps: Input should be greater than or equal to 2" in err
    assert "--hull: Input should be greater than or equal to 1" in err
    assert main(["region", "--out", out]) == 2
    assert "--zoo is required" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
