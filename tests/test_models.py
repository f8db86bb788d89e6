"""Checkpoints in every supported layout, content hashes, parameter spaces and zoos."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from weightscape.errors import WeightscapeError
from weightscape.models.architecture import build_model, check_compatible
from weightscape.models.checkpoint import Checkpoint, TensorReader
from weightscape.models.space import ParameterSpace
from weightscape.models.zoo import Zoo, append_to_manifest

HEAD = {"classifier.weight", "classifier.bias"}
# A 2-layer BERT classifier: 5 embedding tensors, 16 per layer, 2 pooler, 2 head.
N_TENSORS = 5 + 2 * 16 + 2 + 2
N_BIASES = 1 + 2 * 8 + 1 + 1  # embedding LayerNorm, 8 per layer, pooler, classifier
N_LAYERNORM = 2 + 2 * 4  # weight and bias of the embedding norm and of two norms per layer


@pytest.fixture(scope="module")
def original(tiny_models) -> dict[str, torch.Tensor]:
    """The tensors of the first tiny model, read with safetensors directly."""
    return load_file(str(tiny_models[0] / "model.safetensors"))


@pytest.fixture(scope="module")
def names(original) -> list[str]:
    return list(original)


def _assert_same_tensors(reader: TensorReader, original: dict[str, torch.Tensor]) -> None:
    assert sorted(reader.keys()) == sorted(original)
    for name, tensor in original.items():
        assert reader.shape(name) == tuple(tensor.shape)
        got = reader.get(name)
        assert got.dtype == tensor.dtype
        assert torch.equal(got, tensor), name


def _hf_safetensors(tmp_path, tiny_models, original):
    return Checkpoint.from_path(tiny_models[0])


def _hf_torch_bin(tmp_path, tiny_models, original):
    folder = tmp_path / "bin-model"
    folder.mkdir()
    shutil.copy(tiny_models[0] / "config.json", folder)
    torch.save(original, folder / "pytorch_model.bin")
    return Checkpoint.from_path(folder)


def _bare_safetensors(tmp_path, tiny_models, original):
    save_file(original, str(tmp_path / "weights.safetensors"))
    return Checkpoint.from_path(tmp_path / "weights.safetensors", config=tiny_models[0])


def _torch_pt(tmp_path, tiny_models, original):
    torch.save(original, tmp_path / "weights.pt")
    return Checkpoint.from_path(tmp_path / "weights.pt", config=tiny_models[0] / "config.json")


def _wrapped_torch_pt(tmp_path, tiny_models, original):
    # Lightning-style files nest the state dict under "state_dict".
    torch.save({"state_dict": original}, tmp_path / "wrapped.pt")
    return Checkpoint.from_path(tmp_path / "wrapped.pt", config=tiny_models[0])


def _sharded(tmp_path, tiny_models, original):
    folder = tmp_path / "sharded"
    folder.mkdir()
    shutil.copy(tiny_models[0] / "config.json", folder)
    names = list(original)
    half = len(names) // 2
    shards = {
        "model-00001-of-00002.safetensors": names[:half],
        "model-00002-of-00002.safetensors": names[half:],
    }
    weight_map = {}
    for shard, shard_names in shards.items():
        save_file({n: original[n] for n in shard_names}, str(folder / shard))
        weight_map.update(dict.fromkeys(shard_names, shard))
    index = {"metadata": {"total_size": 0}, "weight_map": weight_map}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    return Checkpoint.from_path(folder)


LAYOUTS = {
    "hf-safetensors": _hf_safetensors,
    "hf-pytorch-bin": _hf_torch_bin,
    "bare-safetensors": _bare_safetensors,
    "torch-pt": _torch_pt,
    "torch-pt-wrapped": _wrapped_torch_pt,
    "sharded": _sharded,
}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_layout_reads_the_same_tensors(layout, tmp_path, tiny_models, original):
    checkpoint = LAYOUTS[layout](tmp_path, tiny_models, original)
    reader = TensorReader(checkpoint)
    _assert_same_tensors(reader, original)
    assert (checkpoint.config_dir() / "config.json").is_file()
    check_compatible(build_model(checkpoint), [reader])  # raises on any mismatch


def test_sharded_checkpoint_lists_both_shards(tmp_path, tiny_models, original):
    checkpoint = _sharded(tmp_path, tiny_models, original)
    assert [f.name for f in checkpoint.weight_files()] == [
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
    ]


def test_bare_file_without_config_names_the_config(tmp_path, original):
    save_file(original, str(tmp_path / "weights.safetensors"))
    checkpoint = Checkpoint.from_path(tmp_path / "weights.safetensors")
    assert checkpoint.name == "weights"
    with pytest.raises(WeightscapeError, match="config"):
        checkpoint.config_dir()
    with pytest.raises(WeightscapeError, match="config"):
        build_model(checkpoint)


def test_unknown_suffix_is_refused(tmp_path):
    path = tmp_path / "weights.npz"
    path.write_bytes(b"\0" * 16)
    with pytest.raises(WeightscapeError, match=r"unsupported suffix '\.npz'"):
        Checkpoint.from_path(path)


def test_directory_without_weights_is_refused(tmp_path, tiny_models):
    shutil.copy(tiny_models[0] / "config.json", tmp_path)
    with pytest.raises(WeightscapeError, match="holds no weights"):
        Checkpoint.from_path(tmp_path)


def test_missing_path_is_refused(tmp_path):
    with pytest.raises(WeightscapeError, match="does not exist"):
        Checkpoint.from_path(tmp_path / "nowhere")


class _NotATensor:
    pass


def test_pickle_with_objects_is_refused(tmp_path, tiny_models):
    torch.save({"weight": _NotATensor()}, tmp_path / "evil.pt")
    checkpoint = Checkpoint.from_path(tmp_path / "evil.pt", config=tiny_models[0])
    with pytest.raises(WeightscapeError, match="weights_only"):
        TensorReader(checkpoint)


def test_corrupt_safetensors_is_an_error(tmp_path):
    (tmp_path / "broken.safetensors").write_bytes(b"\x08\0\0\0\0\0\0\0{not json")
    checkpoint = Checkpoint.from_path(tmp_path / "broken.safetensors")
    with pytest.raises(WeightscapeError, match="Cannot read safetensors file"):
        TensorReader(checkpoint)


# --- content hashes -------------------------------------------------------------------------


def test_content_hash_identifies_content_not_location(tmp_path, tiny_models, original):
    copy = shutil.copytree(tiny_models[0], tmp_path / "elsewhere" / "copy")
    a, b = Checkpoint.from_path(tiny_models[0]), Checkpoint.from_path(copy)
    assert a.content_hash() == b.content_hash()
    assert a.content_hash() == a.content_hash()  # stable across calls
    assert len(a.content_hash()) == 64

    changed = dict(original)
    changed["classifier.bias"] = original["classifier.bias"] + 1.0
    folder = shutil.copytree(tiny_models[0], tmp_path / "changed")
    save_file(changed, str(folder / "model.safetensors"), metadata={"format": "pt"})
    assert Checkpoint.from_path(folder).content_hash() != a.content_hash()
    assert Checkpoint.from_path(tiny_models[1]).content_hash() != a.content_hash()


# --- parameter spaces -----------------------------------------------------------------------


def test_presets_select_the_expected_tensors(names):
    assert len(names) == N_TENSORS
    assert ParameterSpace("all").select(names) == names
    no_head = ParameterSpace("no-head").select(names)
    assert set(names) - set(no_head) == HEAD
    assert no_head == [n for n in names if n not in HEAD]  # order kept
    biases = ParameterSpace("biases").select(names)
    assert len(biases) == N_BIASES
    assert all(n.endswith(".bias") for n in biases)
    assert "bert.pooler.dense.bias" in biases and "classifier.bias" in biases


def test_include_and_exclude_patterns(names):
    layer1 = ParameterSpace(include=(r"\.layer\.1\.",)).select(names)
    assert len(layer1) == 16
    assert all(n.startswith("bert.encoder.layer.1.") for n in layer1)
    no_norms = ParameterSpace(exclude=("LayerNorm",)).select(names)
    assert len(no_norms) == N_TENSORS - N_LAYERNORM
    assert not any("LayerNorm" in n for n in no_norms)
    # Preset, include and exclude all apply: layer-0 biases outside the norms.
    combined = ParameterSpace("biases", include=(r"layer\.0\.",), exclude=("LayerNorm",))
    assert len(combined.select(names)) == 6  # query, key, value, three dense layers


def test_space_selecting_nothing_names_itself(names):
    space = ParameterSpace("biases", include=("nothing-matches",))
    with pytest.raises(WeightscapeError, match=r"biases \+nothing-matches selects none"):
        space.select(names)


def test_invalid_regex_is_refused():
    with pytest.raises(WeightscapeError, match=r"'\(unclosed' is not a valid regular expression"):
        ParameterSpace(include=("(unclosed",))


def test_unknown_preset_lists_the_valid_ones():
    with pytest.raises(WeightscapeError) as info:
        ParameterSpace("no_head")
    message = str(info.value)
    assert "Did you mean 'no-head'?" in message
    assert "Available: all, biases, no-head, tuned." in message


def test_unknown_grouping_is_refused():
    with pytest.raises(WeightscapeError, match="Available: layer, matrix, module"):
        ParameterSpace(group_by="row")


def test_layer_grouping(names):
    groups = ParameterSpace(group_by="layer").groups(names)
    sizes = {group: len(members) for group, members in groups.items()}
    assert sizes == {"embeddings": 5, "layer.0": 16, "layer.1": 16, "pooler": 2, "head": 2}
    assert set(groups["head"]) == HEAD


def test_module_grouping_splits_attention_from_feed_forward(names):
    groups = ParameterSpace(group_by="module").groups(names)
    # Attention: query, key, value, output dense and its LayerNorm (weight and bias each).
    # Feed-forward: intermediate dense, output dense and its LayerNorm.
    sizes = {group: len(members) for group, members in groups.items()}
    assert sizes == {
        "embeddings": 5,
        "layer.0.attention": 10,
        "layer.0.ffn": 6,
        "layer.1.attention": 10,
        "layer.1.ffn": 6,
        "pooler": 2,
        "head": 2,
    }
    assert "bert.encoder.layer.1.attention.output.LayerNorm.bias" in groups["layer.1.attention"]
    assert "bert.encoder.layer.1.output.LayerNorm.bias" in groups["layer.1.ffn"]


def test_matrix_grouping_pairs_weights_with_biases(names):
    groups = ParameterSpace(group_by="matrix").groups(names)
    # 4 embedding modules, 8 per layer, the pooler and the classifier.
    assert len(groups) == 4 + 2 * 8 + 1 + 1
    assert groups["bert.embeddings.word_embeddings"] == ["bert.embeddings.word_embeddings.weight"]
    for group, members in groups.items():
        if len(members) == 2:
            assert set(members) == {f"{group}.weight", f"{group}.bias"}
        else:
            assert members == [f"{group}.weight"]


@pytest.mark.parametrize("group_by", ["layer", "module", "matrix"])
@pytest.mark.parametrize(
    "space_args",
    [{}, {"preset": "no-head"}, {"preset": "biases"}, {"exclude": ("LayerNorm", "embeddings")}],
)
def test_every_selected_name_lands_in_exactly_one_group(names, group_by, space_args):
    space = ParameterSpace(group_by=group_by, **space_args)
    grouped = [n for members in space.groups(names).values() for n in members]
    assert sorted(grouped) == sorted(space.select(names))
    assert len(grouped) == len(set(grouped))


# --- zoos -----------------------------------------------------------------------------------


@pytest.fixture
def zoo_dir(tmp_path, tiny_models):
    """Copies of two tiny models under tmp_path/models, manifests go in tmp_path/manifests."""
    for i in range(2):
        shutil.copytree(tiny_models[i], tmp_path / "models" / f"m{i}")
    (tmp_path / "manifests").mkdir()
    return tmp_path


def _manifest(base: str | None = None) -> dict:
    data = {
        "models": [
            {"name": "rt-seed0", "path": "../models/m0", "tags": {"head_seed": 0, "step": 200}},
            {"name": "rt-seed1", "path": "../models/m1", "tags": {"head_seed": 1, "step": 200}},
        ]
    }
    if base is not None:
        data["base"] = base
    return data


def _check_zoo(zoo: Zoo, root) -> None:
    assert zoo.names() == ["rt-seed0", "rt-seed1"]
    assert len(zoo) == 2
    assert zoo["rt-seed1"].tags == {"head_seed": 1, "step": 200}
    assert zoo["rt-seed0"].path.resolve() == (root / "models" / "m0").resolve()
    assert [c.name for c in zoo] == zoo.names()


def test_zoo_from_yaml_manifest_resolves_paths_from_its_folder(zoo_dir, monkeypatch):
    import yaml

    manifest = zoo_dir / "manifests" / "zoo.yaml"
    manifest.write_text(yaml.safe_dump(_manifest(base="../models/m0")))
    monkeypatch.chdir(zoo_dir / "models")  # paths must not be resolved from the cwd
    zoo = Zoo.from_manifest(manifest)
    _check_zoo(zoo, zoo_dir)
    assert zoo.base is not None and zoo.base.name == "base"
    assert zoo.base.path.resolve() == (zoo_dir / "models" / "m0").resolve()


def test_zoo_from_json_manifest(zoo_dir):
    manifest = zoo_dir / "manifests" / "zoo.json"
    manifest.write_text(json.dumps(_manifest()))
    zoo = Zoo.from_manifest(manifest)
    _check_zoo(zoo, zoo_dir)
    assert zoo.base is None


def test_zoo_from_glob_names_models_by_relative_path(zoo_dir):
    zoo = Zoo.from_glob(str(zoo_dir / "models" / "*"))
    assert zoo.names() == ["m0", "m1"]
    assert zoo["m1"].path == zoo_dir / "models" / "m1"


def test_zoo_from_glob_matching_nothing(zoo_dir):
    with pytest.raises(WeightscapeError, match="No checkpoints match"):
        Zoo.from_glob(str(zoo_dir / "models" / "nothing-*"))


def test_duplicate_names_are_listed(zoo_dir):
    data = _manifest()
    data["models"] += [
        {"name": "rt-seed0", "path": "../models/m1"},
        {"name": "rt-seed1", "path": "../models/m0"},
    ]
    manifest = zoo_dir / "manifests" / "zoo.json"
    manifest.write_text(json.dumps(data))
    with pytest.raises(WeightscapeError, match="more than once: rt-seed0, rt-seed1"):
        Zoo.from_manifest(manifest)


def test_invalid_manifest_lists_every_problem_at_once(zoo_dir):
    data = {
        "models": [
            {"name": "no-path"},
            {"name": "typo", "path": "../models/m0", "tgas": {}},
        ],
        "bsae": "../models/m0",
    }
    manifest = zoo_dir / "manifests" / "zoo.json"
    manifest.write_text(json.dumps(data))
    with pytest.raises(WeightscapeError) as info:
        Zoo.from_manifest(manifest)
    message = str(info.value)
    assert "is invalid" in message
    assert "models[0].path" in message
    assert "models[1].tgas" in message
    assert "bsae" in message


def test_missing_checkpoints_in_a_manifest_are_reported_together(zoo_dir):
    """The manifest reader promises that every problem in the file is reported together."""
    data = {
        "models": [
            {"name": "gone-a", "path": "../models/gone-a"},
            {"name": "ok", "path": "../models/m0"},
            {"name": "gone-b", "path": "../models/gone-b"},
        ]
    }
    manifest = zoo_dir / "manifests" / "zoo.json"
    manifest.write_text(json.dumps(data))
    with pytest.raises(WeightscapeError) as info:
        Zoo.from_manifest(manifest)
    assert "gone-a" in str(info.value)
    assert "gone-b" in str(info.value)


def test_unparseable_manifest(zoo_dir):
    manifest = zoo_dir / "manifests" / "zoo.yaml"
    manifest.write_text("models: [unclosed\n")
    with pytest.raises(WeightscapeError, match="Cannot parse zoo manifest"):
        Zoo.from_manifest(manifest)


def test_unknown_model_lists_the_names(zoo_dir):
    zoo = Zoo.from_glob(str(zoo_dir / "models" / "*"))
    with pytest.raises(WeightscapeError, match=r"no model named 'missing'. Models: m0, m1\."):
        zoo["missing"]


def test_append_to_manifest_adds_and_replaces_by_name(zoo_dir):
    import yaml

    manifest = zoo_dir / "manifests" / "zoo.yaml"
    append_to_manifest(manifest, {"name": "a", "path": "../models/m0", "tags": {"step": 1}})
    append_to_manifest(manifest, {"name": "b", "path": "../models/m1", "tags": {"step": 1}})
    append_to_manifest(manifest, {"name": "a", "path": "../models/m1", "tags": {"step": 2}})
    data = yaml.safe_load(manifest.read_text())
    assert data == {
        "models": [
            {"name": "b", "path": "../models/m1", "tags": {"step": 1}},
            {"name": "a", "path": "../models/m1", "tags": {"step": 2}},
        ]
    }
    zoo = Zoo.from_manifest(manifest)
    assert zoo.names() == ["b", "a"]
    assert zoo["a"].path.resolve() == (zoo_dir / "models" / "m1").resolve()
    assert not manifest.with_suffix(".tmp").exists()
