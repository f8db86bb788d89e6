"""No stale or silently wrong number: store keys cover every input, labels are matched by name.

Expectations come from outside the code under test: a fresh store, plain transformers forward
passes, hand-built label permutations, and keys written the way version-1 stores wrote them.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from weightscape.cli.main import main
from weightscape.data import load_task, subset
from weightscape.errors import WeightscapeError
from weightscape.evaluation.engine import Engine, EngineSpec
from weightscape.evaluation.evaluator import EvalSettings
from weightscape.evaluation.keys import canonical_terms, spec_key
from weightscape.evaluation.probe import Probe
from weightscape.evaluation.result import PointResult
from weightscape.models.checkpoint import Checkpoint
from weightscape.models.space import ParameterSpace
from weightscape.runtime.store import ResultStore


def _copy(folder: Path, to: Path) -> Path:
    shutil.copytree(folder, to)
    return to


def _edit_config(folder: Path, **changes) -> None:
    config = json.loads((folder / "config.json").read_text())
    config.update(changes)
    (folder / "config.json").write_text(json.dumps(config, indent=2))


def _relabel(folder: Path, order: list[int]) -> None:
    """Re-save the classifier with its output columns in ``order`` (column j of the new model is
    column order[j] of the old), names permuted with them: the same classifier, listed
    differently, as roberta-large-mnli lists MNLI's classes."""
    state = load_file(str(folder / "model.safetensors"))
    for name in ("classifier.weight", "classifier.bias"):
        state[name] = state[name][order].contiguous()
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    config = json.loads((folder / "config.json").read_text())
    old = {int(k): v for k, v in config["id2label"].items()}
    config["id2label"] = {str(j): old[i] for j, i in enumerate(order)}
    config["label2id"] = {v: int(k) for k, v in config["id2label"].items()}
    (folder / "config.json").write_text(json.dumps(config, indent=2))


def _hf_losses(folder: Path, tokenizer_dir: Path, task, columns=None) -> np.ndarray:
    """Per-example losses by plain transformers: the independent reference."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(
        str(folder), trust_remote_code=False
    ).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir), trust_remote_code=False)
    inputs = tokenizer(list(task.text_a), padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = model(**inputs).logits
    if columns is not None:
        logits = logits[:, columns]
    losses = torch.nn.functional.cross_entropy(
        logits, torch.as_tensor(np.array(task.labels)), reduction="none"
    )
    return losses.numpy()


def _interpolate(a, b, csv, out, *extra) -> int:
    return main(
        [
            "interpolate",
            str(a),
            str(b),
            "--task",
            str(csv),
            "--split",
            "all",
            "--points",
            "3",
            "--out",
            str(out),
            "--no-progress",
            "--device",
            "cpu",
            *extra,
        ]
    )


def _walk(out: Path) -> dict:
    return json.loads((out / "path.json").read_text())


# --- stale results -----------------------------------------------------------------------------


def test_an_edited_config_is_recomputed_not_answered_from_the_store(
    tiny_models, tiny_csv, tokenizer_dir, tmp_path
):
    a, b = _copy(tiny_models[0], tmp_path / "a"), _copy(tiny_models[1], tmp_path / "b")
    out = tmp_path / "out"
    assert _interpolate(a, b, tiny_csv, out) == 0
    before = _walk(out)
    _edit_config(a, hidden_act="relu")
    assert _interpolate(a, b, tiny_csv, out) == 0
    after = _walk(out)
    assert after["computed"] == 2  # t = 0 and 0.5 involve the edited model; t = 1 is stored
    task = load_task(str(tiny_csv))
    expected = _hf_losses(a, tokenizer_dir, task).mean()  # relu, by plain transformers
    assert after["points"][0]["metrics"]["loss"] == pytest.approx(expected, abs=1e-6)
    assert after["points"][0]["metrics"]["loss"] != before["points"][0]["metrics"]["loss"]
    assert after["points"][-1]["metrics"] == before["points"][-1]["metrics"]


def _permuted_tokenizer(tokenizer_dir: Path, to: Path) -> Path:
    """The same words with other ids (a reversed word -> id map over the non-special words)."""
    from transformers import BertTokenizerFast

    from conftest import VOCAB

    words = VOCAB[5:]
    vocab = [*VOCAB[:5], *reversed(words)]
    BertTokenizerFast(vocab={w: i for i, w in enumerate(vocab)}).save_pretrained(str(to))
    assert (to / "tokenizer.json").read_text() != (tokenizer_dir / "tokenizer.json").read_text()
    return to


def test_another_tokenizer_is_another_key(tiny_models, tiny_csv, tokenizer_dir, tmp_path):
    other = _permuted_tokenizer(tokenizer_dir, tmp_path / "tok")
    a, b = tiny_models[0], tiny_models[1]
    shared = tmp_path / "shared"
    assert _interpolate(a, b, tiny_csv, shared, "--tokenizer", str(tokenizer_dir)) == 0
    assert _interpolate(a, b, tiny_csv, shared, "--tokenizer", str(other)) == 0
    reused = _walk(shared)
    assert reused["computed"] == 3  # nothing answered from the first tokenizer's points
    fresh = tmp_path / "fresh"
    assert _interpolate(a, b, tiny_csv, fresh, "--tokenizer", str(other)) == 0
    assert [p["metrics"] for p in reused["points"]] == [
        p["metrics"] for p in _walk(fresh)["points"]
    ]
    task = load_task(str(tiny_csv))
    assert reused["points"][0]["metrics"]["loss"] == pytest.approx(
        _hf_losses(a, other, task).mean(), abs=1e-6
    )


def test_a_tokenizer_beyond_the_vocabulary_is_refused_not_answered_from_the_store(
    tiny_models, tiny_csv, tokenizer_dir, tmp_path, capsys
):
    from transformers import BertTokenizerFast

    from conftest import VOCAB

    big = tmp_path / "big"
    vocab = [*VOCAB[:5], *[f"pad{i}" for i in range(100)], *VOCAB[5:]]  # ids past the table
    BertTokenizerFast(vocab={w: i for i, w in enumerate(vocab)}).save_pretrained(str(big))
    out = tmp_path / "out"
    assert _interpolate(tiny_models[0], tiny_models[1], tiny_csv, out) == 0
    stored = len(ResultStore(out / "results.sqlite"))
    capsys.readouterr()
    code = _interpolate(tiny_models[0], tiny_models[1], tiny_csv, out, "--tokenizer", str(big))
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert str(big) in err and "embeddings for" in err
    assert len(ResultStore(out / "results.sqlite")) == stored


def _spec(anchors, task, **changes) -> EngineSpec:
    spec = EngineSpec(tuple(anchors), task, device="cpu")
    return replace(spec, **changes)


def _key(spec: EngineSpec, coefficients=(0.5, 0.5)) -> str:
    return spec_key(spec.key_maker().spec(coefficients))


def test_every_input_of_a_computation_changes_its_key(
    tiny_models, tiny_task, tokenizer_dir, tmp_path
):
    a = Checkpoint.from_path(_copy(tiny_models[0], tmp_path / "a"))
    b = Checkpoint.from_path(tiny_models[1])
    base = _spec([a, b], tiny_task)
    keys = {"base": _key(base)}
    assert _key(base) == keys["base"]  # deterministic

    # each anchor's tensors: one value of one tensor of a copy
    tensors = Checkpoint.from_path(_copy(tiny_models[0], tmp_path / "tensors"))
    state = load_file(str(tensors.path / "model.safetensors"))
    state["classifier.bias"][0] += 1e-3
    save_file(state, str(tensors.path / "model.safetensors"), metadata={"format": "pt"})
    keys["tensors"] = _key(_spec([tensors, b], tiny_task))
    # its config
    config = Checkpoint.from_path(_copy(tiny_models[0], tmp_path / "config"))
    _edit_config(config.path, hidden_act="relu")
    keys["config"] = _key(_spec([config, b], tiny_task))
    # the tokenizer
    keys["tokenizer"] = _key(
        replace(base, tokenizer=_permuted_tokenizer(tokenizer_dir, tmp_path / "tok"))
    )
    keys["coefficients"] = _key(base, (0.25, 0.75))
    # the parameter space (a partial space: the reference supplies the rest)
    keys["space"] = _key(replace(base, space=ParameterSpace(preset="no-head")))
    keys["task content"] = _key(
        _spec([a, b], tiny_task.select(np.arange(len(tiny_task)), name="renamed"))
    )
    keys["task subset"] = _key(_spec([a, b], subset(tiny_task, 20, seed=0)))
    keys["max length"] = _key(replace(base, settings=EvalSettings(max_length=16)))
    keys["batch size"] = _key(replace(base, settings=EvalSettings(batch_size=8)))
    keys["label map"] = _key(replace(base, settings=EvalSettings(label_map="mnli_to_hans")))
    keys["model labels"] = _key(
        replace(base, settings=EvalSettings(model_labels=("negative", "positive")))
    )
    keys["probe"] = _key(replace(base, probe=Probe(subset(tiny_task, 20, seed=1))))
    assert len(set(keys.values())) == len(keys), keys


def _version1_key(checkpoints, coefficients, task, settings: EvalSettings) -> str:
    """A key as stores before this change wrote it: anchors hashed by their weight files only, no
    config, no tokenizer, no version."""
    hashes = []
    for checkpoint in checkpoints:
        digest = hashlib.sha256()
        for file in checkpoint.weight_files():
            digest.update(file.read_bytes())
        hashes.append(digest.hexdigest())
    spec = {
        "evaluation": "classification",
        "terms": canonical_terms(hashes, coefficients),
        "task": task.fingerprint(),
        "settings": {**settings.spec(), "device": "cpu"},
    }
    return spec_key(spec)


def test_a_store_of_version_1_keys_is_never_answered_from(tiny_models, tiny_task, tmp_path):
    """Old keys cannot prove which config or tokenizer they were computed with: the points are
    recomputed (a planted wrong result under the old key never comes back)."""
    from weightscape.runtime.executor import InProcessExecutor

    anchors = [Checkpoint.from_path(tiny_models[0]), Checkpoint.from_path(tiny_models[1])]
    store = ResultStore(tmp_path / "old.sqlite")
    rows = np.array([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]])
    planted = PointResult(
        metrics={"loss": 99.0, "accuracy": 0.0, "macro_f1": 0.0, "mcc": 0.0},
        predictions=np.zeros(len(tiny_task), dtype=np.int64),
        p_true=np.zeros(len(tiny_task), dtype=np.float32),
        losses=np.full(len(tiny_task), 99.0, dtype=np.float32),
    )
    for row in rows:
        key = _version1_key(anchors, row, tiny_task, EvalSettings())
        store.put(key, {"planted": True}, planted, 0.0)
    spec = _spec(anchors, tiny_task)
    results = InProcessExecutor().run(spec, rows, store)
    assert [r.cached for r in results] == [False, False, False]
    fresh = InProcessExecutor().run(spec, rows, ResultStore(tmp_path / "fresh.sqlite"))
    for old, new in zip(results, fresh, strict=True):
        assert old.result.metrics == new.result.metrics
        assert old.result.metrics["loss"] != 99.0


# --- label order -------------------------------------------------------------------------------


def _engine_losses(anchors, task, settings=None) -> np.ndarray:
    engine = Engine(anchors, task, settings=settings, device="cpu")
    return engine.evaluate([1.0] + [0.0] * (len(anchors) - 1)).losses


def test_the_same_classifier_listed_in_another_label_order_scores_the_same(
    tiny_models, tiny_task, tokenizer_dir, tmp_path
):
    original = Checkpoint.from_path(tiny_models[0])
    swapped = Checkpoint.from_path(_copy(tiny_models[0], tmp_path / "swapped"))
    _relabel(swapped.path, [1, 0])
    assert json.loads((swapped.path / "config.json").read_text())["id2label"]["0"] == "positive"
    expected = _hf_losses(tiny_models[0], tokenizer_dir, tiny_task)  # column i = label i
    np.testing.assert_allclose(_engine_losses([original], tiny_task), expected, atol=1e-6)
    np.testing.assert_allclose(_engine_losses([swapped], tiny_task), expected, atol=1e-6)
    # by index, the swapped copy would score the opposite classes: its columns really moved
    by_index = _hf_losses(swapped.path, tokenizer_dir, tiny_task)
    assert np.abs(by_index - expected).max() > 1e-3
    np.testing.assert_allclose(
        _hf_losses(swapped.path, tokenizer_dir, tiny_task, columns=[1, 0]), expected, atol=1e-6
    )


def test_a_label_map_reads_the_model_columns_by_name(tiny_models, tokenizer_dir, tmp_path):
    """An MNLI classifier listing (contradiction, entailment, neutral), as roberta-large-mnli
    does, gives the same HANS results as the same classifier in MNLI's own order."""
    from conftest import save_tiny_model

    mnli_order = Checkpoint.from_path(save_tiny_model(tmp_path / "mnli", 3, tokenizer_dir, 3))
    roberta_order = Checkpoint.from_path(_copy(mnli_order.path, tmp_path / "roberta"))
    _relabel(roberta_order.path, [2, 0, 1])
    names = json.loads((roberta_order.path / "config.json").read_text())["id2label"]
    assert list(names.values()) == ["contradiction", "entailment", "neutral"]
    hans = subset(load_task("hans_like_lexical_overlap", cache_dir=tmp_path), 40, seed=0)
    settings = EvalSettings(label_map="mnli_to_hans")
    expected = _engine_losses([mnli_order], hans, settings)
    # the max rule by hand on MNLI-ordered logits: non-entailment = max(neutral, contradiction)
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(
        str(mnli_order.path), trust_remote_code=False
    ).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir), trust_remote_code=False)
    inputs = tokenizer(list(hans.text_a), list(hans.text_b), padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = model(**inputs).logits
    mapped = torch.stack([logits[:, 0], logits[:, 1:].max(dim=1).values], dim=1)
    by_hand = torch.nn.functional.cross_entropy(
        mapped, torch.as_tensor(np.array(hans.labels)), reduction="none"
    )
    np.testing.assert_allclose(expected, by_hand.numpy(), atol=1e-5)
    np.testing.assert_allclose(_engine_losses([roberta_order], hans, settings), expected, atol=1e-6)


def test_a_checkpoint_without_label_names_is_refused_until_they_are_given(
    tiny_models, tiny_csv, tokenizer_dir, tmp_path, capsys
):
    unnamed = _copy(tiny_models[0], tmp_path / "unnamed")
    _edit_config(unnamed, id2label={"0": "LABEL_0", "1": "LABEL_1"}, label2id={})
    code = _interpolate(unnamed, unnamed, tiny_csv, tmp_path / "refused")
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "names no labels" in err and "negative, positive" in err and "--model-labels" in err
    assert not (tmp_path / "refused" / "path.json").exists()
    code = _interpolate(
        unnamed, unnamed, tiny_csv, tmp_path / "given", "--model-labels", "positive,negative"
    )
    assert code == 0, capsys.readouterr().err
    task = load_task(str(tiny_csv))
    expected = _hf_losses(unnamed, tokenizer_dir, task, columns=[1, 0])  # as the user said
    assert _walk(tmp_path / "given")["points"][0]["metrics"]["loss"] == pytest.approx(
        expected.mean(), abs=1e-6
    )


def test_label_names_that_disagree_are_refused_listing_both(
    tiny_models, tiny_csv, tmp_path, capsys
):
    other = _copy(tiny_models[0], tmp_path / "other")
    _edit_config(other, id2label={"0": "neg", "1": "pos"}, label2id={"neg": 0, "pos": 1})
    code = _interpolate(other, other, tiny_csv, tmp_path / "out")
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "neg, pos" in err and "negative, positive" in err


def test_integer_labels_match_an_unnamed_model_by_index_and_refuse_a_named_one(
    tiny_models, tokenizer_dir, tmp_path, capsys
):
    from conftest import generated_texts

    texts, labels = generated_texts(30, seed=3)
    csv = tmp_path / "ints.csv"
    csv.write_text(
        "text,label\n" + "".join(f"{t},{y}\n" for t, y in zip(texts, labels, strict=True))
    )
    unnamed = _copy(tiny_models[0], tmp_path / "unnamed")
    _edit_config(unnamed, id2label={"0": "LABEL_0", "1": "LABEL_1"}, label2id={})
    assert _interpolate(unnamed, unnamed, csv, tmp_path / "a") == 0, capsys.readouterr().err
    task = load_task(str(csv))
    expected = _hf_losses(unnamed, tokenizer_dir, task).mean()
    assert _walk(tmp_path / "a")["points"][0]["metrics"]["loss"] == pytest.approx(expected, 1e-6)
    capsys.readouterr()
    assert _interpolate(tiny_models[0], tiny_models[0], csv, tmp_path / "b") == 2
    err = capsys.readouterr().err
    assert "bare integer labels" in err and "--model-labels 0,1" in err


def test_heads_in_different_label_orders_are_not_mixed(tiny_models, tiny_csv, tmp_path, capsys):
    swapped = _copy(tiny_models[1], tmp_path / "swapped")
    _relabel(swapped, [1, 0])
    code = _interpolate(tiny_models[0], swapped, tiny_csv, tmp_path / "out")
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "order their labels differently" in err and "negative, positive" in err
    assert "positive, negative" in err
    # without the heads in the mix (the reference's head is used whole) the walk is sound
    assert (
        _interpolate(tiny_models[0], swapped, tiny_csv, tmp_path / "ok", "--space", "no-head") == 0
    )


def test_label_settings_are_validated():
    with pytest.raises(WeightscapeError, match="--model-labels"):
        EvalSettings(model_labels=("a", "A"))
    with pytest.raises(WeightscapeError, match="--model-labels"):
        EvalSettings(model_labels=())
