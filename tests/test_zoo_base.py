"""One resolver of a zoo's pretrained base for every command (``resolve_base``).

The defect it fixes: ``weightscape similarity`` on a zoo with no manifest ``base`` subtracted the
built-in MiniLM instead of the base the models' ``base`` tags name. Here the zoo's models are a
tiny base plus planted deltas, so the true cosines are known by construction.
"""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file, save_file

from conftest import save_tiny_model
from weightscape.analyses.similarity import task_vector_similarity
from weightscape.analyses.weight_stats import gram_matrix
from weightscape.cli.main import main
from weightscape.errors import WeightscapeError
from weightscape.models.checkpoint import Checkpoint
from weightscape.models.zoo import Zoo
from weightscape.models.zoo_base import model_spec, resolve_base

QUERY = "bert.encoder.layer.0.attention.self.query.weight"  # 32 x 32
FFN = "bert.encoder.layer.1.intermediate.dense.weight"  # 64 x 32


def _deltas() -> dict[str, dict[str, np.ndarray]]:
    """Task vectors by model: d1 on QUERY, d2 on FFN (disjoint tensors, so orthogonal)."""
    rng = np.random.default_rng(0)
    d1 = rng.normal(scale=0.01, size=(32, 32)).astype(np.float32)  # small, as finetuning is
    d2 = rng.normal(size=(64, 32))
    d2 = (d2 * np.linalg.norm(d1) / np.linalg.norm(d2)).astype(np.float32)  # |d2| = |d1|
    return {
        "m1": {QUERY: d1},
        "m2": {FFN: d2},
        "m3": {QUERY: 2 * d1},
        "m4": {QUERY: d1, FFN: d2},
    }


DATASETS = {"m1": "a", "m2": "b", "m3": "a", "m4": "b"}


def _perturbed(base, folder, delta: dict[str, np.ndarray]):
    """A copy of the model folder ``base`` with ``delta`` added to some of its tensors."""
    shutil.copytree(base, folder)
    state = load_file(str(base / "model.safetensors"))
    for name, d in delta.items():
        state[name] = state[name] + torch.from_numpy(d)
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    return folder


def _write_manifest(path, entries: list[dict], base: str | None = None):
    manifest = {"models": entries} if base is None else {"base": base, "models": entries}
    path.write_text(yaml.safe_dump(manifest))
    return path


@pytest.fixture(scope="module")
def planted_zoo(tmp_path_factory, tokenizer_dir):
    """zoo/zoo.yaml with no top-level base; its models are zoo/base plus known deltas and carry
    the tag base: 'base' (relative to the manifest's folder, as finetune writes it)."""
    root = tmp_path_factory.mktemp("planted") / "zoo"
    base = save_tiny_model(root / "base", 7, tokenizer_dir)
    entries = []
    for name, delta in _deltas().items():
        _perturbed(base, root / name, delta)
        tags = {"dataset": DATASETS[name], "base": "base"}
        entries.append({"name": name, "path": name, "tags": tags})
    return _write_manifest(root / "zoo.yaml", entries), base


def _expected_cosines() -> np.ndarray:
    """Cosines of the planted task vectors, by hand: flatten each model's deltas."""
    deltas = _deltas()
    zeros = {QUERY: np.zeros((32, 32)), FFN: np.zeros((64, 32))}
    vectors = np.array(
        [np.concatenate([d.get(n, zeros[n]).ravel() for n in zeros]) for d in deltas.values()],
        dtype=np.float64,
    )
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    return unit @ unit.T


def test_similarity_subtracts_the_base_the_tags_name(planted_zoo, tmp_path, monkeypatch, capsys):
    manifest, base = planted_zoo
    monkeypatch.chdir(tmp_path)  # no 'base' here: the tag resolves against the manifest's folder
    out = tmp_path / "out"
    code = main(["similarity", "--zoo", str(manifest), "--out", str(out), "--seed", "0"])
    assert code == 0, capsys.readouterr().err
    assert f"from {base.resolve()}" in capsys.readouterr().out
    cosine = np.loadtxt(out / "cosine.csv", delimiter=",", skiprows=1, usecols=range(1, 5))
    expected = _expected_cosines()
    np.testing.assert_allclose(expected[0, 1:], [0, 1, 1 / np.sqrt(2)], atol=1e-6)  # by hand
    np.testing.assert_allclose(cosine, expected, atol=1e-6)


def test_the_planted_cosines_hold_only_about_the_true_base(planted_zoo, tiny_models):
    """The comparison above would catch a wrong base: about another model of the architecture,
    orthogonal task vectors look alike (the distance between the bases dominates them)."""
    manifest, _ = planted_zoo
    models = list(Zoo.from_manifest(manifest))
    wrong = task_vector_similarity(models, Checkpoint.from_path(tiny_models[1], name="wrong"))
    assert _expected_cosines()[0, 1] == 0 and wrong.cosine[0, 1] > 0.9


def _zoo(models, tags: list, base=None, root=None) -> Zoo:
    """A zoo over the model folders ``models``; a None tag leaves a model untagged."""
    checkpoints = [
        Checkpoint.from_path(path, name=f"z{i}", tags={} if tag is None else {"base": tag})
        for i, (path, tag) in enumerate(zip(models, tags, strict=True))
    ]
    base = Checkpoint.from_path(base, name="base") if base is not None else None
    return Zoo(checkpoints, base=base, root=root)


def test_manifest_base_is_used_and_checked_against_the_tags(tiny_models):
    m0, m1, m2 = tiny_models
    assert resolve_base(_zoo([m1, m2], [None, None], base=m0)).path == m0
    assert resolve_base(_zoo([m1, m2], [str(m0), None], base=m0)).path == m0
    with pytest.raises(WeightscapeError) as err:
        resolve_base(_zoo([m1, m2], [str(m0), str(m1)], base=m0))
    message = str(err.value)
    assert "the manifest's base" in message and f"'{m1}' ({m1.resolve()}) on z1" in message
    assert "Fix the tags" in message


def test_agreeing_tags_name_one_base(tiny_models, monkeypatch):
    m0, m1, m2 = tiny_models
    monkeypatch.chdir(m0.parent)
    base = resolve_base(_zoo([m1, m2], [str(m0), m0.name]))  # absolute and cwd-relative
    assert base.path == m0.resolve() and base.name == "base"


def test_a_builtin_name_and_its_folder_are_one_base(tiny_models):
    from weightscape.models.pretrained import resolve_model_path

    minilm = resolve_model_path("minilm")
    base = resolve_base(_zoo(tiny_models[1:], ["minilm", str(minilm)]))
    assert base.path == minilm.resolve()
    assert model_spec(base) == "minilm"  # run configs keep the portable name
    assert model_spec(Checkpoint.from_path(tiny_models[0])) == str(tiny_models[0].resolve())


def test_disagreeing_tags_are_refused_listing_both(tiny_models):
    m0, m1, m2 = tiny_models
    with pytest.raises(WeightscapeError, match="different bases") as err:
        resolve_base(_zoo([m1, m2, m0], [str(m0), str(m1), str(m0)]))
    message = str(err.value)
    assert f"'{m0}' ({m0.resolve()}) on z0, z2" in message
    assert f"'{m1}' ({m1.resolve()}) on z1" in message


def test_an_untagged_model_is_refused(tiny_models):
    m0, m1, m2 = tiny_models
    with pytest.raises(WeightscapeError, match=r"models z1 have no 'base' tag\. Give --base"):
        resolve_base(_zoo([m1, m2], [str(m0), None]))


def test_an_unknown_base_names_the_value_and_the_fix(tiny_models, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(WeightscapeError) as err:
        resolve_base(_zoo(tiny_models[1:], ["nope/base", "nope/base"], root=tiny_models[0]))
    message = str(err.value)
    assert message.startswith("Unknown base 'nope/base' ('base' tag of models z0, z1)")
    assert "built-in name (minilm)" in message and "Give --base or fix the tag." in message
    assert str(tiny_models[0] / "nope/base") in message and str(tmp_path / "nope/base") in message


def test_relative_tags_resolve_against_the_manifest_folder_then_cwd(
    tiny_models, tmp_path, monkeypatch
):
    m0, m1, m2 = tiny_models
    root = m0.parent
    monkeypatch.chdir(tmp_path)  # 'm0' exists only under the manifest's folder
    assert resolve_base(_zoo([m1, m2], ["m0", "m0"], root=root)).path == m0.resolve()
    (tmp_path / "m0").mkdir()  # now 'm0' names two folders
    with pytest.raises(WeightscapeError, match="is ambiguous"):
        resolve_base(_zoo([m1, m2], ["m0", "m0"], root=root))
    shutil.rmtree(tmp_path / "m0")
    monkeypatch.chdir(root)  # an old zoo: its tag as typed where finetune ran
    assert resolve_base(_zoo([m1, m2], ["m0", "m0"], root=tmp_path)).path == m0.resolve()


def test_a_given_base_must_agree_with_the_tags(tiny_models):
    m0, m1, m2 = tiny_models
    agreeing = _zoo([m1, m2], [str(m0), str(m0)])
    assert resolve_base(agreeing, str(m0)).path == m0.resolve()
    assert resolve_base(_zoo([m1, m2], ["gone", "gone"]), m0).path == m0.resolve()  # a repair
    with pytest.raises(WeightscapeError) as err:
        resolve_base(agreeing, str(m1))
    message = str(err.value)
    assert f"--base '{m1}'" in message and f"'{m0}' ({m0.resolve()}) on z0, z1" in message
    assert "Fix the tags in the zoo manifest or the --base flag." in message
    with pytest.raises(WeightscapeError, match="is not the zoo's manifest base"):
        resolve_base(_zoo([m1, m2], [None, None], base=m0), str(m1))


def _disagreeing_manifest(tiny_models, tmp_path):
    m0, m1, m2 = tiny_models
    entries = [
        {"name": "x", "path": str(m1), "tags": {"dataset": "pos", "base": str(m0)}},
        {"name": "y", "path": str(m2), "tags": {"dataset": "neg", "base": str(m1)}},
    ]
    return _write_manifest(tmp_path / "zoo.yaml", entries)


@pytest.mark.parametrize(
    "command",
    [
        ["similarity"],
        ["region", "--sections", "pb", "--device", "cpu", "--no-progress"],
        ["fuse", "--device", "cpu", "--no-progress"],
    ],
)
def test_commands_refuse_disagreeing_tags_with_one_message(tiny_models, tmp_path, capsys, command):
    manifest = _disagreeing_manifest(tiny_models, tmp_path)
    out = tmp_path / "out"
    code = main([*command, "--zoo", str(manifest), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert "different bases" in err and "Traceback" not in err
    assert f"'{tiny_models[0]}'" in err and f"'{tiny_models[1]}'" in err
    assert not [p for p in out.glob("*") if p.is_dir()]  # refused before anything was made


def test_similarity_without_any_base_asks_for_one(tiny_models, tmp_path, capsys):
    """Untagged models and no --base: no silent MiniLM any more."""
    out = tmp_path / "out"
    code = main(["similarity", "--models", str(tiny_models[0].parent / "m*"), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "Cannot tell which pretrained model" in err and "Give --base" in err
    assert not out.exists()


def test_a_base_sharing_no_tensor_name_is_refused(tiny_models, tmp_path):
    stranger = tmp_path / "stranger.safetensors"
    save_file({"decoder.weight": torch.zeros(3, 3)}, str(stranger))
    models = [Checkpoint.from_path(p) for p in tiny_models[1:]]
    with pytest.raises(WeightscapeError, match="shares no tensor name with 'm1'") as err:
        gram_matrix(models, base=Checkpoint.from_path(stranger), skip_missing_in_base=True)
    assert "is it the pretrained model these were finetuned from?" in str(err.value)


def test_finetune_tags_the_base_relative_to_the_zoo(tiny_models, tiny_task, tmp_path, monkeypatch):
    from weightscape.training.finetune import FinetuneConfig, _tags, finetune

    monkeypatch.chdir(tmp_path)
    config = FinetuneConfig(name="r", base=str(tiny_models[0]), steps=1, batch_size=8)
    finetune(config, tiny_task, tmp_path / "zoo")
    tags = Zoo.from_manifest(tmp_path / "zoo" / "zoo.yaml")["r"].tags
    assert tags["base"] == os.path.relpath(tiny_models[0].resolve(), (tmp_path / "zoo").resolve())
    monkeypatch.chdir(tiny_models[1])  # read from anywhere: the tag is the manifest's
    zoo = Zoo.from_manifest(tmp_path / "zoo" / "zoo.yaml")
    assert resolve_base(zoo).path == tiny_models[0].resolve()
    builtin = FinetuneConfig(name="b", base="minilm")
    assert _tags(builtin, "d", tmp_path)["base"] == "minilm"


# Models finetuned from different pretrained models (Gueta et al. App. B): each task vector
# about its own base, only when asked for (--per-model-base); the default still refuses.


@pytest.fixture(scope="module")
def two_base_zoo(tmp_path_factory, tokenizer_dir):
    """zoo.yaml over two tiny bases b1, b2 (different seeds): p1 = b1 + d1, p2 = b1 + 2 d1,
    q1 = b2 + d2, q2 = b2 + d2 - d1 / 2, with |d1| = |d2| on disjoint tensors."""
    root = tmp_path_factory.mktemp("two-bases") / "zoo"
    bases = {"b1": save_tiny_model(root / "b1", 7, tokenizer_dir)}
    bases["b2"] = save_tiny_model(root / "b2", 8, tokenizer_dir)
    d1, d2 = _deltas()["m1"][QUERY], _deltas()["m2"][FFN]
    plan = {
        "p1": ("b1", {QUERY: d1}),
        "p2": ("b1", {QUERY: 2 * d1}),
        "q1": ("b2", {FFN: d2}),
        "q2": ("b2", {FFN: d2, QUERY: -d1 / 2}),
    }
    entries = []
    for name, (base, delta) in plan.items():
        _perturbed(bases[base], root / name, delta)
        entries.append({"name": name, "path": name, "tags": {"dataset": "x", "base": base}})
    return _write_manifest(root / "zoo.yaml", entries), bases


# By hand: cos(d1, 2 d1) = 1; d1 _|_ d2; q2 = d2 - d1/2 has length sqrt(1.25)|d1|, so
# cos(q1, q2) = 1 / sqrt(1.25) = 2 / sqrt(5) and cos(p, q2) = -0.5 / sqrt(1.25) = -1 / sqrt(5).
R5 = np.sqrt(5)
TWO_BASE_COSINES = [
    [1, 1, 0, -1 / R5],
    [1, 1, 0, -1 / R5],
    [0, 0, 1, 2 / R5],
    [-1 / R5, -1 / R5, 2 / R5, 1],
]


def test_each_model_resolves_its_own_base(two_base_zoo, tiny_models):
    from weightscape.models.zoo_base import resolve_model_bases

    manifest, bases = two_base_zoo
    resolved = resolve_model_bases(Zoo.from_manifest(manifest))
    assert [b.path for b in resolved] == [bases[k].resolve() for k in ("b1", "b1", "b2", "b2")]
    assert resolved[0] is resolved[1] and resolved[2] is not resolved[0]  # one per base
    with pytest.raises(WeightscapeError, match="different bases"):  # the default still refuses
        resolve_base(Zoo.from_manifest(manifest))
    m0, m1, m2 = tiny_models
    with pytest.raises(WeightscapeError, match=r"Models z1 have no 'base' tag"):
        resolve_model_bases(_zoo([m1, m2], [str(m0), None]))


def test_similarity_per_model_base_subtracts_each_models_base(two_base_zoo, tmp_path, capsys):
    manifest, bases = two_base_zoo
    out = tmp_path / "out"
    argv = ["similarity", "--zoo", str(manifest), "--by", "base", "--out", str(out)]
    assert main(argv) == 2  # one base for the whole zoo: refused, as before
    assert "different bases" in capsys.readouterr().err
    assert main([*argv, "--per-model-base", "--base", str(bases["b1"])]) == 2
    assert "give one of --base, --per-model-base, not both" in capsys.readouterr().err
    assert main([*argv, "--per-model-base"]) == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    assert "base: k=2, clustering accuracy 1.000" in printed  # clustered by base
    assert "per model: " in printed and str(bases["b2"].resolve()) in printed
    cosine = np.loadtxt(out / "cosine.csv", delimiter=",", skiprows=1, usecols=range(1, 5))
    np.testing.assert_allclose(cosine, TWO_BASE_COSINES, atol=1e-6)
    # About one base (b1) for all, b2 - b1 would dominate q1 and q2: near-parallel vectors.
    models = list(Zoo.from_manifest(manifest))
    wrong = task_vector_similarity(models, Checkpoint.from_path(bases["b1"]))
    assert wrong.cosine[2, 3] > 0.99 > TWO_BASE_COSINES[2][3] + 0.05
