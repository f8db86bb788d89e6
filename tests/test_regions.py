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
    # pairs="first" (no longer the default): the line through the first two models of each
    # dataset, on that dataset.
    result = extrapolation_curves(study, steps=3, reach=4.0, pairs="first")
    curves = result["curves"]
    assert [c["target"] for c in curves] == ["pos", "count"]
    _base, models, targets = tiny_region
    for curve, (a, b) in zip(curves, ((0, 1), (3, 4)), strict=True):
        assert result["t"] == [-3.0, -1.0, 0.0, 0.5, 1.0, 2.0, 4.0]
        assert (curve["from"], curve["to"]) == (models[a].name, models[b].name)
        target = targets[curve["target"]]
        for t, model in ((0.0, models[a]), (1.0, models[b])):
            alone = Engine([model], target.test, probe=Probe(target.train), device="cpu")
            expected = alone.evaluate([1.0]).metrics["loss"]
            assert curve["loss"][result["t"].index(t)] == expected  # bit for bit


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
        # The default now also moves toward theta = 0 (the origin of weight space).
        assert set(moves) == {"origin", "pretrained", "random0", "random1"}
        # r = 0 is the centroid whatever the direction.
        assert moves["pretrained"]["loss"][0] == moves["random0"]["loss"][0]
        assert moves["origin"]["loss"][0] == moves["pretrained"]["loss"][0]
        assert np.mean(record["model_radii"]) == pytest.approx(1.0)


def test_interpolation_across_data_orients_and_summarises(study):
    # targets="own" (no longer the default): each pair on its two models' own datasets.
    result = interpolation_across_data(study, t=[0.0, 0.5, 1.0], max_pairs=2, targets="own")
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


# The paper's protocol (Gueta et al. 2023): which pairs, which targets, how many points.


@pytest.fixture(scope="module")
def tagged_study(tiny_region, tmp_path_factory):
    """Six models tagged as datasets A, B (family 'x') and C (family 'w'), two each; the probe
    targets reuse the tiny tasks (only the protocol's counts matter here)."""
    base, models, targets = tiny_region
    tags = [("A", "x"), ("A", "x"), ("B", "x"), ("B", "x"), ("C", "w"), ("C", "w")]
    zoo = [
        Checkpoint.from_path(m.path, name=f"{d}{i % 2}", tags={"dataset": d, "family": f})
        for i, (m, (d, f)) in enumerate(zip(models, tags, strict=True))
    ]
    folder = tmp_path_factory.mktemp("tagged")
    texts, labels = generated_texts(60, seed=5)
    other = split(make_task("other", texts, labels, ("negative", "positive")))
    chosen = {
        "A": (targets["pos"].train, targets["pos"].test),
        "B": (targets["count"].train, targets["count"].test),
        "C": (other["train"], other["test"]),  # three different tasks: no point is shared
    }
    return RegionStudy(
        zoo,
        base,
        {name: RegionTarget(name, *parts) for name, parts in chosen.items()},
        folder,
        random_directions=1,
        device="cpu",
        store=ResultStore(folder / "results.sqlite"),
    )


# Hand-listed: every pair of each category (Gueta et al. §5.1: "5 models ... a total of 10
# pairs"; "5 models ... with 5 models ... resulting in 25 pairs"). Models: A0 A1 B0 B1 C0 C1.
# A cross pair starts from the model whose (family, dataset) comes first: family 'w' (C) before
# 'x' (A, B).
EXPECTED_PAIRS = {
    "dataset": [("A0", "A1"), ("B0", "B1"), ("C0", "C1")],
    "family": [("A0", "B0"), ("A0", "B1"), ("A1", "B0"), ("A1", "B1")],
    "general": [(c, x) for x in ("A0", "A1", "B0", "B1") for c in ("C0", "C1")],
}
# ... scored on every target of the pair's level: its dataset; every dataset of the family;
# every dataset of the zoo.
EXPECTED_TARGETS = {"family": ["A", "B"], "general": ["A", "B", "C"]}


def test_the_protocol_takes_every_pair_of_each_category(tagged_study):
    from weightscape.analyses.region_paths import model_pairs

    names = [m.name for m in tagged_study.models]
    pairs = {
        category: sorted((names[a], names[b]) for a, b in found)
        for category, found in model_pairs(tagged_study).items()
    }
    assert pairs == {c: sorted(p) for c, p in EXPECTED_PAIRS.items()}
    sampled = model_pairs(tagged_study, max_pairs=2, seed=1)
    assert [len(p) for p in sampled.values()] == [2, 2, 2]
    assert model_pairs(tagged_study, categories=["family"]).keys() == {"family"}


def test_each_path_is_scored_on_every_target_of_its_level(tagged_study):
    captured = {}
    plan = tagged_study.plan(
        lambda: captured.update(result=interpolation_across_data(tagged_study))
    )
    scored = {}
    for curve in captured["result"]["curves"]:
        scored.setdefault((curve["category"], curve["from"], curve["to"]), []).append(
            curve["target"]
        )
    expected = {
        (category, a, b): EXPECTED_TARGETS.get(category, [a[0]])
        for category, pairs in EXPECTED_PAIRS.items()
        for a, b in pairs
    }
    assert scored == expected
    summary = captured["result"]["summary"]
    assert [summary[c]["n_pairs"] for c in ("dataset", "family", "general")] == [3, 4, 8]
    assert summary["general"]["n_curves"] == 8 * 3
    # Distinct points (5 t values; t = 0 and 1 are the models, shared between pairs):
    # on A, the A pair 5, the 4 family pairs 4 x 3 inside + B0, B1, the 8 general pairs 8 x 3
    # + C0, C1: 45; B likewise 45; C, its pair 5 and the general pairs 8 x 3 + A0..B1: 33.
    assert plan.by_target == {"A": 45, "B": 45, "C": 33}
    assert plan.to_evaluate == plan.distinct == 123 and plan.stored == 0


def test_extrapolation_reproduces_the_interpolation_settings_in_10_log_steps(tagged_study):
    captured = {}
    tagged_study.plan(lambda: captured.update(result=extrapolation_curves(tagged_study)))
    result = captured["result"]
    # 10 steps from 1 to 32 and from 0 to -31, the models at 0 and 1, and the midpoint.
    forward = [32 ** (k / 9) for k in range(10)]
    expected_t = sorted([1 - f for f in forward] + [0.5] + forward)
    assert result["t"] == pytest.approx(expected_t) and len(result["t"]) == 21
    assert {0.0, 0.5, 1.0, 32.0, -31.0} <= set(result["t"])
    counts = {c: result["summary"][c]["n_pairs"] for c in result["summary"]}
    assert counts == {"dataset": 3, "family": 4, "general": 8}
    assert {c["target"] for c in result["curves"] if c["category"] == "general"} == {"A", "B", "C"}


def test_the_hull_has_as_many_samples_as_in_has_models(tagged_study):
    captured = {}
    tagged_study.plan(lambda: captured.update(rows=region_comparisons(tagged_study)))
    rows = captured["rows"]
    sizes = {(r["level"], r["group"]): (r["n_in"], r["n_hull"], r["n_ex"]) for r in rows}
    assert sizes == {
        ("dataset", "A"): (2, 2, 4),
        ("dataset", "B"): (2, 2, 4),
        ("dataset", "C"): (2, 2, 4),
        ("family", "x"): (4, 4, 2),
        ("family", "w"): (2, 2, 4),
        ("general", "all"): (6, 6, 1),
    }
    families = {r["group"]: r["targets"] for r in captured["rows"] if r["level"] == "family"}
    assert families == {"x": ["A", "B"], "w": ["C"]}


def test_a_move_toward_the_origin_shrinks_the_centroid_to_zero(tagged_study):
    from weightscape.analyses.region_edges import move_rows

    # Independent lengths: the raw weights, flattened by hand (no-head tensors).
    states = [load_file(str(m.path / "model.safetensors")) for m in tagged_study.models]
    names = [n for n, t in states[0].items() if t.is_floating_point() and "classifier" not in n]
    x = np.array([torch.cat([s[n].double().ravel() for n in names]).numpy() for s in states])
    members = [0, 1, 2]
    centroid = x[members].mean(axis=0)
    spread = np.mean([np.linalg.norm(x[i] - centroid) for i in members])
    to_zero = np.linalg.norm(centroid) / spread  # the radius that reaches theta = 0
    rows = move_rows(tagged_study, members, [0.0, 1.0, to_zero], toward=["origin"])["origin"]
    assert rows.shape == (3, len(tagged_study.anchors))
    expected = np.zeros((3, len(tagged_study.anchors)))
    expected[0, members] = 1 / 3
    expected[1, members] = (1 - spread / np.linalg.norm(centroid)) / 3
    np.testing.assert_allclose(rows, expected, atol=1e-9)
    # The combination at radius 1 is the centroid moved by one spread toward zero.
    moved = rows[1, :6] @ x
    assert np.linalg.norm(moved - centroid) == pytest.approx(spread, rel=1e-6)
    assert np.linalg.norm(moved) == pytest.approx(np.linalg.norm(centroid) - spread, rel=1e-6)


def test_general_moves_compare_source_and_non_source_models(study, tiny_region, tmp_path):
    from weightscape.analyses.region_edges import general_moves

    fresh = RegionStudy(
        study.models,
        study.base,
        study.targets,
        study.out_dir,
        random_directions=2,
        device="cpu",
        store=ResultStore(tmp_path / "fresh.sqlite"),
    )
    plan = fresh.plan(lambda: general_moves(fresh, radii=[0.0, 1.0], toward=["origin", "random"]))
    # Per dataset: the 6 models, the centroid (r = 0 of every direction), and r = 1 toward the
    # origin and along each of the 2 random directions.
    assert plan.by_target == {"count": 6 + 1 + 3, "pos": 6 + 1 + 3}
    record = general_moves(study, radii=[0.0, 1.0], toward=["origin", "random"])
    _, models, targets = tiny_region
    accuracy = {}
    for name, target in targets.items():
        engine = Engine(models, target.test, probe=Probe(target.train), device="cpu")
        accuracy[name] = [engine.evaluate(np.eye(6)[i]).metrics["accuracy"] for i in range(6)]
    source = {"pos": np.mean(accuracy["pos"][:3]), "count": np.mean(accuracy["count"][3:])}
    others = {"pos": np.mean(accuracy["pos"][3:]), "count": np.mean(accuracy["count"][:3])}
    for name in targets:
        kinds = record["per_target"][name]
        assert kinds["source"]["accuracy"] == pytest.approx(source[name])
        assert kinds["non_source"]["accuracy"] == pytest.approx(others[name])
        assert kinds["origin"]["loss"][0] == kinds["random0"]["loss"][0]  # r = 0: the centroid
        assert kinds["random"]["accuracy"] == pytest.approx(
            np.mean([kinds["random0"]["accuracy"], kinds["random1"]["accuracy"]], axis=0)
        )
    summary = record["summary"]
    assert summary["source"]["accuracy"]["mean"] == pytest.approx(np.mean(list(source.values())))
    assert summary["non_source"]["accuracy"]["std"] == pytest.approx(np.std(list(others.values())))


def test_the_estimate_is_the_number_of_points_computed(study, tmp_path, monkeypatch):
    from weightscape.studies.region import Config, run_sections

    store = ResultStore(tmp_path / "count.sqlite")
    fresh = RegionStudy(
        study.models,
        study.base,
        study.targets,
        study.out_dir,
        random_directions=1,
        device="cpu",
        store=store,
    )
    puts = []
    real_put = ResultStore.put
    monkeypatch.setattr(
        ResultStore, "put", lambda self, *a, **k: (puts.append(a[0]), real_put(self, *a, **k))
    )
    config = Config(out=tmp_path / "out", quick=True, radii=(0.0, 1.0), reach=4.0)
    first = run_sections(fresh, config)
    assert first.results["plan"]["to_evaluate"] == len(puts) > 0
    assert first.results["plan"]["to_evaluate"] == first.results["plan"]["distinct"]
    assert {"comparisons", "extrapolation", "moves", "general_moves", "interpolation"} <= set(
        first.results
    )
    puts.clear()
    again = run_sections(fresh, config)  # everything is stored now
    assert again.results["plan"]["to_evaluate"] == 0 == len(puts)
    assert again.results["plan"]["stored"] == first.results["plan"]["distinct"]


def test_the_paper_protocol_is_the_default_and_quick_is_smaller():
    from weightscape.studies.region import Config

    config = Config()
    assert (config.levels, config.path_targets, config.extrapolation_pairs) == (
        ("dataset", "family", "general"),
        "level",
        "paths",
    )
    assert config.toward == ("origin", "pretrained", "random")
    assert config.move_levels == ("dataset", "general")
    # hull None: |In| samples; max_pairs None: every pair; 10 log steps (Gueta et al. §5.2, §6.1).
    assert config.protocol() == {"hull": None, "max_pairs": None, "extrapolation_steps": 10}
    assert Config(quick=True).protocol() == {"hull": 3, "max_pairs": 2, "extrapolation_steps": 4}
    given = Config(quick=True, hull=7, extrapolation_steps=5).protocol()
    assert given == {"hull": 7, "max_pairs": 2, "extrapolation_steps": 5}  # given values win


def test_region_names_are_checked_and_the_estimate_is_printed_first(tiny_region, tmp_path, capsys):
    from weightscape.cli.main import main
    from weightscape.models.zoo import append_to_manifest

    out = str(tmp_path / "o")
    bad = ["--levels", "dataset,famly", "--toward", "orgin", "--move-levels", "family"]
    assert main(["region", "--zoo", "z.yaml", *bad, "--out", out]) == 2
    err = capsys.readouterr().err
    assert "--levels: Unknown level 'famly'. Did you mean 'family'?" in err
    assert "--toward: Unknown direction 'orgin'. Did you mean 'origin'?" in err
    assert "--move-levels: Unknown level 'family'" in err

    import csv

    base, models, _ = tiny_region
    texts, labels = generated_texts(40, seed=6)
    manifest = tmp_path / "zoo.yaml"
    for dataset, model in (("a", models[0]), ("a", models[1]), ("b", models[3])):
        path = tmp_path / f"{dataset}.csv"
        with path.open("w", newline="") as handle:
            csv.writer(handle).writerows([("text", "label"), *zip(texts, labels, strict=True)])
        tags = {"dataset": str(path), "family": "toy"}
        entry = {"name": f"{dataset}-{model.name}", "path": str(model.path), "tags": tags}
        append_to_manifest(manifest, entry)
    argv = ["region", "--zoo", str(manifest), "--base", str(base.path), "--out", out]
    small = ["--probe-train", "8", "--probe-test", "8", "--random", "1", "--device", "cpu"]
    assert main([*argv, *small, "--estimate-only", "--no-progress"]) == 0
    captured = capsys.readouterr()
    assert "region: " in captured.err and " points to evaluate (" in captured.err
    results = json.loads((tmp_path / "o" / "regions.json").read_text())
    assert results["plan"]["to_evaluate"] > 0 and "comparisons" not in results
    assert "to evaluate" in captured.out
    assert len(ResultStore(tmp_path / "o" / "results.sqlite")) == 0  # nothing was evaluated
