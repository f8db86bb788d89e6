"""The evaluation dtype (``--dtype``): float32 by default whatever the anchors hold and in whatever
order, bfloat16/float16/the anchors' own on request, part of every store key, and every
combination computed in float32 and cast once."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import LABEL_NAMES, VOCAB
from weightscape.cli.main import main
from weightscape.errors import WeightscapeError
from weightscape.evaluation.engine import Engine, EngineSpec
from weightscape.evaluation.evaluator import EvalSettings
from weightscape.evaluation.export import read_provenance, save_combination
from weightscape.evaluation.working_model import DTYPES, WorkingModel, working_dtype
from weightscape.models.architecture import build_model
from weightscape.models.checkpoint import Checkpoint, TensorReader


def _resave(source: Path, folder: Path, dtype: torch.dtype, edit=None) -> Path:
    """``source`` re-saved in ``dtype`` (as a user's half-precision checkpoint is), with its
    tokenizer files; ``edit(model)`` changes it first."""
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(
        str(source), dtype=dtype, local_files_only=True, trust_remote_code=False
    )
    if edit is not None:
        edit(model)
    model.save_pretrained(str(folder))
    for f in source.iterdir():
        if f.name.startswith(("tokenizer", "vocab", "special")):
            shutil.copy(f, folder / f.name)
    return folder


def _tiny_llama(folder: Path, seed: int, tokenizer_dir: Path) -> Path:
    """A random 2-layer Llama classifier (rotary buffers, no learned positions) in bfloat16."""
    from transformers import LlamaConfig, LlamaForSequenceClassification

    config = LlamaConfig(
        vocab_size=len(VOCAB),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
        num_labels=2,
        pad_token_id=0,
        id2label=dict(enumerate(LABEL_NAMES[2])),
    )
    torch.manual_seed(seed)
    LlamaForSequenceClassification(config).to(torch.bfloat16).save_pretrained(str(folder))
    for f in tokenizer_dir.iterdir():
        shutil.copy(f, folder / f.name)
    return folder


@pytest.fixture(scope="module")
def halves(tiny_models, tmp_path_factory) -> dict[str, Path]:
    """The tiny BERTs m0 and m1 re-saved in float16 and bfloat16."""
    root = tmp_path_factory.mktemp("halves")
    return {
        f"{name}-m{i}": _resave(tiny_models[i], root / f"{name}-m{i}", getattr(torch, name))
        for name in ("float16", "bfloat16")
        for i in (0, 1)
    }


@pytest.fixture(scope="module")
def llamas(tokenizer_dir, tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("llamas")
    return [_tiny_llama(root / f"llama{seed}", seed, tokenizer_dir) for seed in (0, 1)]


def _checkpoints(*paths) -> list[Checkpoint]:
    return [Checkpoint.from_path(p) for p in paths]


def _plain_losses(folder: Path, dtype: torch.dtype, engine: Engine) -> np.ndarray:
    """Per-example losses of the checkpoint loaded by plain transformers in ``dtype``, on the
    engine's own tokenised batches."""
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(
        str(folder), dtype=dtype, local_files_only=True, trust_remote_code=False
    ).eval()
    labels = np.asarray(engine.task.labels)
    losses = np.empty(len(labels), dtype=np.float32)
    with torch.inference_mode():
        for idx, inputs in engine.evaluator.batches:
            log_probs = torch.log_softmax(model(**inputs).logits.float(), dim=-1)
            true = torch.as_tensor(labels[idx])
            losses[idx] = (-log_probs[torch.arange(len(idx)), true]).numpy()
    return losses


def test_default_is_float32_whatever_the_anchors_dtype_and_order(tiny_models, halves, tiny_task):
    half, full = halves["float16-m0"], tiny_models[1]
    forward = Engine(_checkpoints(half, full), tiny_task, device="cpu")
    backward = Engine(_checkpoints(full, half), tiny_task, device="cpu")
    for engine in (forward, backward):
        assert {p.dtype for p in engine.working.model.parameters()} == {torch.float32}
    for t in (0.0, 0.3, 0.5, 1.0, 1.4):
        a = forward.evaluate([1 - t, t])
        b = backward.evaluate([t, 1 - t])
        assert np.array_equal(a.losses, b.losses), t
        assert forward.spec([1 - t, t]) == backward.spec([t, 1 - t])  # one key, one result
    # The fp16 endpoint in float32 is the fp16 file as plain transformers reads it into float32.
    assert np.array_equal(
        forward.evaluate([1, 0]).losses, _plain_losses(half, torch.float32, forward)
    )


@pytest.mark.parametrize("family", ["bert", "llama"])
@pytest.mark.parametrize("choice", ["bfloat16", "anchors"])
def test_bf16_walk_endpoints_equal_plain_transformers_in_bf16(
    family, choice, halves, llamas, tiny_task
):
    folders = [halves["bfloat16-m0"], halves["bfloat16-m1"]] if family == "bert" else llamas
    engine = Engine(
        _checkpoints(*folders), tiny_task, settings=EvalSettings(dtype=choice), device="cpu"
    )
    assert {p.dtype for p in engine.working.model.parameters()} == {torch.bfloat16}
    mid = engine.evaluate([0.5, 0.5]).losses  # the model holds a mix before each endpoint
    for row, folder in (([1, 0], folders[0]), ([0, 1], folders[1])):
        losses = engine.evaluate(row).losses
        assert np.array_equal(losses, _plain_losses(folder, torch.bfloat16, engine))
        assert not np.array_equal(losses, mid)
    # Buffers outside the state dict (rotary frequencies, position ids) are plain transformers'.
    from transformers import AutoModelForSequenceClassification

    plain = AutoModelForSequenceClassification.from_pretrained(
        str(folders[0]), dtype=torch.bfloat16, local_files_only=True, trust_remote_code=False
    )
    ours = dict(engine.working.model.named_buffers())
    for name, buffer in plain.named_buffers():
        assert ours[name].dtype == buffer.dtype and torch.equal(ours[name], buffer), name


def test_keys_differ_by_dtype_and_always_name_it(halves, tiny_task):
    anchors = tuple(_checkpoints(halves["bfloat16-m0"], halves["bfloat16-m1"]))
    specs = {
        choice: EngineSpec(anchors, tiny_task, settings=EvalSettings(dtype=choice), device="cpu")
        .key_maker()
        .spec([0.5, 0.5])
        for choice in DTYPES
    }
    assert specs["float32"]["settings"]["dtype"] == "float32"  # the default is in the key too
    keys = {choice: str(spec) for choice, spec in specs.items()}
    assert len({keys["float32"], keys["bfloat16"], keys["float16"]}) == 3
    assert keys["anchors"] == keys["bfloat16"]  # the same computation, the same stored point
    engine = Engine(list(anchors), tiny_task, device="cpu")  # the engine's keys agree
    assert engine.spec([0.5, 0.5]) == specs["float32"]


def test_anchors_dtype_of_mixed_anchors_is_refused_naming_the_flag(
    tiny_models, halves, tiny_csv, tmp_path, capsys
):
    mixed = _checkpoints(halves["float16-m0"], tiny_models[1])
    with pytest.raises(WeightscapeError, match="--dtype"):
        working_dtype("anchors", mixed)
    code = main(
        [
            "interpolate",
            str(halves["float16-m0"]),
            str(tiny_models[1]),
            "--task",
            str(tiny_csv),
            "--split",
            "all",
            "--out",
            str(tmp_path / "out"),
            "--no-progress",
            "--device",
            "cpu",
            "--dtype",
            "anchors",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "--dtype" in err and "float16" in err and "float32" in err
    assert "Traceback" not in err


def test_the_mix_is_summed_in_float32_and_cast_once(halves, tmp_path, tiny_task):
    """An affine combination of equal tensors is that tensor: 1.3 x - 0.3 x = x. Summed in
    float32 and cast once to bfloat16 it is x exactly; summed in bfloat16 (1.3 x rounded to
    bfloat16 first) it is off by an ulp in many entries, in either order of the terms."""
    a = halves["bfloat16-m0"]

    def other_head(model):
        with torch.no_grad():
            model.classifier.bias.add_(1.0)  # another file (another content hash), same encoder

    b = _resave(a, tmp_path / "b", torch.bfloat16, other_head)
    working = WorkingModel(Checkpoint.from_path(a), dtype=torch.bfloat16)
    from weightscape.models.space import ParameterSpace

    anchors = working.anchors(_checkpoints(a, b))
    working.write(anchors, [1.3, -0.3], ParameterSpace())
    name = "bert.embeddings.word_embeddings.weight"
    x = TensorReader(anchors.checkpoints[0]).get(name)
    assert x.dtype == torch.bfloat16
    assert torch.equal(working.state[name], x)
    for first, second in ((1.3, -0.3), (-0.3, 1.3)):  # a bf16 sum: round the first term
        in_bf16 = (x * first).add_(x, alpha=second)
        assert in_bf16.dtype == torch.bfloat16
        assert (in_bf16 != x).sum() > 10, "the case must tell the two sums apart"


def test_the_working_model_is_built_in_its_dtype_without_random_init(tiny_models, monkeypatch):
    from transformers.models.bert.modeling_bert import BertPreTrainedModel

    calls = []
    original = BertPreTrainedModel._init_weights
    monkeypatch.setattr(
        BertPreTrainedModel,
        "_init_weights",
        lambda self, module: calls.append(module) or original(self, module),
    )
    checkpoint = Checkpoint.from_path(tiny_models[0])
    build_model(checkpoint)
    assert calls, "a plain build initialises weights (the test's premise)"
    calls.clear()
    working = WorkingModel(checkpoint, dtype=torch.float16)
    assert not calls
    assert {t.dtype for t in working.state.values() if t.is_floating_point()} == {torch.float16}


def test_export_computes_the_point_as_the_engine_does(halves, tiny_task, tmp_path):
    folders = [halves["bfloat16-m0"], halves["bfloat16-m1"]]
    anchors = _checkpoints(*folders)
    saved = save_combination(anchors, [0.25, 0.75], tmp_path / "mix", dtype="anchors")
    assert read_provenance(saved.path)["dtype"] == "bfloat16"
    engine = Engine(anchors, tiny_task, settings=EvalSettings(dtype="anchors"), device="cpu")
    point = engine.evaluate([0.25, 0.75]).losses
    reader = TensorReader(saved)
    for name, tensor in engine.working.state.items():
        assert torch.equal(reader.get(name), tensor), name
    assert np.array_equal(point, _plain_losses(saved.path, torch.bfloat16, engine))
    default = save_combination(anchors, [0.25, 0.75], tmp_path / "mix32")
    floats = TensorReader(default)
    assert {floats.dtype(n) for n in floats.keys() if floats.is_floating_point(n)} == {"float32"}  # noqa: SIM118


def test_unknown_dtype_lists_the_choices(tiny_models):
    with pytest.raises(WeightscapeError, match="anchors"):
        working_dtype("float64x", _checkpoints(tiny_models[0]))
    with pytest.raises(WeightscapeError, match="dtype"):
        EvalSettings(dtype="double")


def test_large_anchors_are_read_from_the_file_to_the_same_points(halves, tiny_task, monkeypatch):
    """Anchors over the size limit are read without their memory map (so their pages do not stay
    resident): the points are the same bits either way."""
    from weightscape.evaluation import working_model

    anchors = _checkpoints(halves["bfloat16-m0"], halves["float16-m1"])
    settings = EvalSettings(dtype="bfloat16")
    rows = ([1, 0], [0.3, 0.7], [0, 1])
    mapped = Engine(anchors, tiny_task, settings=settings, device="cpu")
    expected = []
    for row in rows:
        losses = mapped.evaluate(row).losses
        expected.append((losses, {n: t.clone() for n, t in mapped.working.state.items()}))
    monkeypatch.setattr(working_model, "MAPPED_READ_LIMIT", 0)
    from_file = Engine(anchors, tiny_task, settings=settings, device="cpu")
    for row, (losses, state) in zip(rows, expected, strict=True):
        assert np.array_equal(from_file.evaluate(row).losses, losses)
        for name, tensor in state.items():
            assert torch.equal(from_file.working.state[name], tensor), name
    assert all(mapped.working._mapped.values()) and not any(from_file.working._mapped.values())
