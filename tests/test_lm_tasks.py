"""Language-model tasks: causal-LM and masked-LM loss along paths, against plain transformers.

Tiny Llama causal LMs (2 layers, hidden 32) and tiny BERT masked LMs are built from configs and
saved with their tokenizers (no hub). Every expected number is recomputed here with plain
transformers, one unpadded document at a time: ``model(input_ids, labels=...).loss`` times the
document's target count, summed and divided by the total (the token-weighted mean); for the
masked LM the mask is rebuilt here from the documented rule.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file

from conftest import VOCAB, generated_texts
from weightscape.cli.main import main
from weightscape.data import TextTask, load_task, split, subset
from weightscape.errors import WeightscapeError
from weightscape.evaluation.engine import EngineSpec
from weightscape.evaluation.evaluator import EvalSettings
from weightscape.evaluation.keys import spec_key
from weightscape.models.checkpoint import Checkpoint

LLAMA_VOCAB = ["[PAD]", "[UNK]", *VOCAB[5:]]


def _llama_config():
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=len(LLAMA_VOCAB),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=64,
        pad_token_id=0,
        bos_token_id=None,
        eos_token_id=None,
    )


def _mlm_config():
    from transformers import BertConfig

    return BertConfig(
        vocab_size=len(VOCAB),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,  # the decoder is tied to the word embeddings, as in BERT
    )


@pytest.fixture(scope="module")
def llama_tokenizer_dir(tmp_path_factory) -> Path:
    """A word-level tokenizer (no BOS/EOS added) for the tiny Llamas."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.WordLevel({w: i for i, w in enumerate(LLAMA_VOCAB)}, "[UNK]"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, unk_token="[UNK]", pad_token="[PAD]")
    folder = tmp_path_factory.mktemp("llama_tokenizer")
    tokenizer.save_pretrained(str(folder))
    return folder


def _save(model, folder: Path, tokenizer: Path) -> Path:
    model.save_pretrained(str(folder))
    for f in tokenizer.iterdir():
        shutil.copy(f, folder / f.name)
    return folder


@pytest.fixture(scope="module")
def llamas(tmp_path_factory, llama_tokenizer_dir) -> list[Path]:
    """Three tiny Llama causal LMs (seeds 0, 1, 2)."""
    from transformers import LlamaForCausalLM

    root = tmp_path_factory.mktemp("llamas")
    folders = []
    for seed in range(3):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(_llama_config())
        folders.append(_save(model, root / f"llama{seed}", llama_tokenizer_dir))
    return folders


@pytest.fixture(scope="module")
def mlms(tmp_path_factory, tokenizer_dir) -> list[Path]:
    """Two tiny BERT masked LMs (seeds 0, 1) with the conftest WordPiece tokenizer."""
    from transformers import BertForMaskedLM

    root = tmp_path_factory.mktemp("mlms")
    folders = []
    for seed in range(2):
        torch.manual_seed(seed)
        model = BertForMaskedLM(_mlm_config())
        folders.append(_save(model, root / f"mlm{seed}", tokenizer_dir))
    return folders


@pytest.fixture(scope="module")
def docs(tmp_path_factory) -> Path:
    """Twelve documents of 4-9 words, one per line (blank lines are not documents)."""
    texts, _ = generated_texts(12, seed=3)
    path = tmp_path_factory.mktemp("text") / "docs.txt"
    path.write_text("\n".join(texts[:6]) + "\n\n" + "\n".join(texts[6:]) + "\n")
    return path


def _texts(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


# --- independent references with plain transformers ---------------------------------------


def _causal_reference(model, tokenizer, texts) -> dict[str, float]:
    total = count = right = 0.0
    with torch.no_grad():
        for text in texts:
            ids = torch.tensor([tokenizer(text)["input_ids"]])
            out = model(input_ids=ids, labels=ids)
            targets = ids.shape[1] - 1
            total += float(out.loss) * targets
            count += targets
            right += int((out.logits[0, :-1].argmax(-1) == ids[0, 1:]).sum())
    return {"loss": total / count, "accuracy": right / count, "tokens": count}


def _masked_reference(model, tokenizer, texts, ids, seed=0) -> dict[str, float]:
    """The documented mask: round(15%) (>= 1) of the non-special tokens, drawn by
    default_rng([seed, row id]), replaced by [MASK]."""
    special = set(tokenizer.all_special_ids)
    total = count = right = 0.0
    with torch.no_grad():
        for text, row_id in zip(texts, ids, strict=True):
            tokens = tokenizer(text)["input_ids"]
            candidates = [i for i, t in enumerate(tokens) if t not in special]
            k = max(1, round(0.15 * len(candidates)))
            chosen = np.sort(
                np.random.default_rng([seed, row_id]).choice(len(candidates), k, replace=False)
            )
            inputs, labels = list(tokens), [-100] * len(tokens)
            for c in chosen:
                position = candidates[c]
                labels[position] = tokens[position]
                inputs[position] = tokenizer.mask_token_id
            out = model(input_ids=torch.tensor([inputs]), labels=torch.tensor([labels]))
            total += float(out.loss) * k
            count += k
            positions = [candidates[c] for c in chosen]
            right += sum(int(out.logits[0, p].argmax()) == tokens[p] for p in positions)
    return {"loss": total / count, "accuracy": right / count, "tokens": count}


def _load(auto, folder: Path):
    return auto.from_pretrained(str(folder), local_files_only=True, trust_remote_code=False).eval()


def _midpoint(auto, a: Path, b: Path):
    """The model with the hand-averaged state dict of a and b."""
    model = _load(auto, a)
    sa, sb = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    model.load_state_dict({k: 0.5 * sa[k] + 0.5 * sb[k] for k in sa}, strict=False)
    return model


def _interpolate(anchors, task: str, out: Path, *extra: str) -> int:
    return main(
        [
            "interpolate",
            *map(str, anchors),
            "--task",
            task,
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


def _check_point(metrics: dict, expected: dict) -> None:
    assert metrics["loss"] == pytest.approx(expected["loss"], rel=1e-5)
    assert metrics["perplexity"] == pytest.approx(np.exp(expected["loss"]), rel=1e-5)
    assert metrics["accuracy"] == pytest.approx(expected["accuracy"], abs=1e-9)


# --- paths -----------------------------------------------------------------------------------


def test_causal_lm_path_matches_plain_transformers(llamas, docs, tmp_path, capsys):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    assert _interpolate(llamas[:2], f"text:{docs}", tmp_path) == 0, capsys.readouterr().err
    walk = json.loads((tmp_path / "path.json").read_text())
    tokenizer = AutoTokenizer.from_pretrained(
        str(llamas[0]), local_files_only=True, trust_remote_code=False
    )
    texts = _texts(docs)
    a, b = (_load(AutoModelForCausalLM, f) for f in llamas[:2])
    mid = _midpoint(AutoModelForCausalLM, *llamas[:2])
    expected = [_causal_reference(m, tokenizer, texts) for m in (a, mid, b)]
    for point, reference in zip(walk["points"], expected, strict=True):
        _check_point(point["metrics"], reference)
    assert expected[0]["loss"] != pytest.approx(expected[2]["loss"])  # distinct models
    assert "loss barrier" in capsys.readouterr().out
    assert set(walk["summary"]) >= {"loss", "accuracy", "perplexity"}


def test_masked_lm_path_matches_plain_transformers(mlms, docs, tmp_path, capsys):
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    code = _interpolate(mlms, f"text:{docs}", tmp_path, "--mask-seed", "5")
    assert code == 0, capsys.readouterr().err
    walk = json.loads((tmp_path / "path.json").read_text())
    tokenizer = AutoTokenizer.from_pretrained(
        str(mlms[0]), local_files_only=True, trust_remote_code=False
    )
    texts = _texts(docs)
    ids = list(range(len(texts)))
    a, b = (_load(AutoModelForMaskedLM, f) for f in mlms)
    mid = _midpoint(AutoModelForMaskedLM, *mlms)
    expected = [_masked_reference(m, tokenizer, texts, ids, seed=5) for m in (a, mid, b)]
    for point, reference in zip(walk["points"], expected, strict=True):
        _check_point(point["metrics"], reference)
    # The mask is fixed per seed: another seed scores other positions, so other numbers.
    other = _masked_reference(a, tokenizer, texts, ids, seed=6)
    assert other["loss"] != pytest.approx(expected[0]["loss"], rel=1e-6)


def test_per_document_outcomes_make_the_token_weighted_loss(llamas, docs, tmp_path):
    from weightscape.runtime.store import ResultStore

    assert _interpolate(llamas[:2], f"text:{docs}", tmp_path) == 0
    walk = json.loads((tmp_path / "path.json").read_text())
    store = ResultStore(tmp_path / "results.sqlite")
    result = store.get(walk["points"][1]["key"], load_task(f"text:{docs}"))
    assert result.tokens is not None and result.tokens.shape == (12,)
    weighted = float(np.sum(result.losses.astype(np.float64) * result.tokens))
    assert weighted / result.tokens.sum() == pytest.approx(result.metrics["loss"], rel=1e-6)
    assert result.predictions.sum() / result.tokens.sum() == pytest.approx(
        result.metrics["accuracy"]
    )
    # 12 documents of n words have n - 1 targets each (no BOS with this tokenizer).
    assert int(result.tokens.sum()) == sum(len(t.split()) - 1 for t in _texts(docs))


def test_grid_of_three_causal_lms(llamas, docs, tmp_path, capsys):
    out = tmp_path / "grid"
    code = main(
        [
            "grid",
            "--models",
            str(llamas[0].parent / "llama*"),
            "--task",
            f"text:{docs}",
            "--split",
            "all",
            "--points",
            "3",
            "--out",
            str(out),
            "--no-progress",
            "--device",
            "cpu",
        ]
    )
    assert code == 0, capsys.readouterr().err
    with np.load(out / "grid.npz") as data:
        barrier = data["matrix_loss_barrier"]
    assert barrier.shape == (3, 3)
    np.testing.assert_allclose(barrier, barrier.T)
    np.testing.assert_array_equal(np.diag(barrier), 0.0)
    assert np.all(np.isfinite(barrier))


def test_study_file_with_a_language_model_step(llamas, docs, tmp_path, capsys):
    folder = tmp_path / "study"
    folder.mkdir()
    shutil.copy(docs, folder / "corpus.txt")
    study = folder / "lm.yaml"
    study.write_text(
        yaml.safe_dump(
            {
                "name": "lm",
                "out": str(tmp_path / "out"),
                "evaluation": {"split": "all", "device": "cpu"},
                "steps": [
                    {
                        "interpolate": {
                            "anchors": [str(llamas[0]), str(llamas[1])],
                            "task": "text:corpus.txt",  # relative to the study file
                            "points": 3,
                        }
                    }
                ],
            }
        )
    )
    assert main(["run", str(study)]) == 0, capsys.readouterr().err
    walks = list((tmp_path / "out").rglob("path.json"))
    assert len(walks) == 1
    points = json.loads(walks[0].read_text())["points"]
    assert [p["t"] for p in points] == [0.0, 0.5, 1.0]
    assert all(np.isfinite(p["metrics"]["perplexity"]) for p in points)


# --- keys ------------------------------------------------------------------------------------


def test_keys_of_causal_masked_and_classification_points_differ(
    llamas, mlms, tiny_models, tiny_task, docs
):
    text = load_task(f"text:{docs}")
    causal = EngineSpec(tuple(map(Checkpoint.from_path, llamas[:2])), text).key_maker()
    masked = EngineSpec(tuple(map(Checkpoint.from_path, mlms)), text).key_maker()
    reseeded = EngineSpec(
        tuple(map(Checkpoint.from_path, mlms)), text, settings=EvalSettings(mask_seed=1)
    ).key_maker()
    classes = EngineSpec(tuple(map(Checkpoint.from_path, tiny_models[:2])), tiny_task).key_maker()
    specs = [k.spec([1.0, 0.0]) for k in (causal, masked, reseeded, classes)]
    assert [s["evaluation"] for s in specs] == [
        "causal-lm",
        "masked-lm",
        "masked-lm",
        "classification",
    ]
    assert specs[1]["settings"]["mask"] == {"seed": 0, "rate": 0.15, "rule": "mask-token/1"}
    assert specs[2]["settings"]["mask"]["seed"] == 1
    assert "mask" not in specs[0]["settings"] and "mask" not in specs[3]["settings"]
    assert len({spec_key(s) for s in specs}) == 4
    # The mask seed is no part of a classification key: old classification stores stay valid.
    assert "mask_seed" not in specs[3]["settings"]


# --- text tasks ------------------------------------------------------------------------------


def test_text_task_sources_agree(docs, tmp_path):
    texts = _texts(docs)
    jsonl = tmp_path / "docs.jsonl"
    jsonl.write_text("".join(json.dumps({"body": t, "n": i}) + "\n" for i, t in enumerate(texts)))
    import datasets

    saved = tmp_path / "saved"
    datasets.Dataset.from_dict({"text": texts}).save_to_disk(str(saved))
    plain = load_task(f"text:{docs}")
    from_jsonl = load_task(f"text:{jsonl}", text_columns=("body",))
    from_disk = load_task(f"text:{saved}")
    assert isinstance(plain, TextTask) and plain.texts == tuple(texts) == from_disk.texts
    assert from_jsonl.texts == plain.texts and plain.ids.tolist() == list(range(12))
    # The fingerprint is the content's: the same documents under one name agree, an edit differs.
    assert plain.fingerprint() == load_task(f"text:{docs}").fingerprint()
    edited = TextTask(plain.name, (*plain.texts[:-1], "the movie"), plain.ids)
    assert edited.fingerprint() != plain.fingerprint()
    parts = split(plain, seed=0)
    assert sum(map(len, parts.values())) == 12
    assert sorted(np.concatenate([p.ids for p in parts.values()]).tolist()) == list(range(12))
    assert subset(plain, 5, seed=1).ids.tolist() == sorted(subset(plain, 5, seed=1).ids.tolist())


@pytest.mark.parametrize(
    ("make", "extra", "message"),
    [
        (lambda d: "text:" + str(d / "missing.txt"), (), "missing.txt"),
        (lambda d: _write(d / "empty.txt", "\n  \n"), (), "no documents"),
        (lambda d: _write(d / "rows.jsonl", '{"body": "a b"}\n'), (), "Column 'text'"),
        (lambda d: _write(d / "rows.jsonl", '{"text": "a b"}\n'), ("--label-column", "y"), "no "),
    ],
)
def test_bad_text_task_exits_2_naming_it(llamas, tmp_path, capsys, make, extra, message):
    spec = make(tmp_path)
    code = _interpolate(llamas[:2], spec, tmp_path / "out", *extra)
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert spec in err and message in err


def _write(path: Path, content: str) -> str:
    path.write_text(content)
    return f"text:{path}"


def test_text_task_on_a_classifier_and_classification_on_lms_exit_2(
    tiny_models, llamas, tiny_csv, docs, tmp_path, capsys
):
    assert _interpolate(tiny_models[:2], f"text:{docs}", tmp_path / "a") == 2
    err = capsys.readouterr().err
    assert "is not a language model" in err and "BertForSequenceClassification" in err
    assert _interpolate(llamas[:2], str(tiny_csv), tmp_path / "b") == 2
    err = capsys.readouterr().err
    assert "classification task" in err and "causal-lm" in err


def test_document_with_nothing_to_score_is_refused(llamas, tmp_path):
    from weightscape.data import make_text_task
    from weightscape.evaluation.engine import Engine

    task = make_text_task("short", ["the movie was good", "plot"])
    with pytest.raises(WeightscapeError, match=r"ids \[1\] have nothing to score"):
        Engine([Checkpoint.from_path(p) for p in llamas[:2]], task, device="cpu")


def test_pretraining_mlm_paths_score_the_masked_lm_loss(mlms, docs, tmp_path):
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    from weightscape.analyses.pretraining import PretrainingStudy, mlm_paths
    from weightscape.runtime.store import ResultStore

    texts = _texts(docs)
    study = PretrainingStudy(points=3, mlm_eval_size=8, max_length=64)
    store = ResultStore(tmp_path / "results.sqlite")
    checkpoints = [Checkpoint.from_path(p) for p in mlms]
    (row,) = mlm_paths(checkpoints, texts, study, store=store)
    assert (row["from_step"], row["to_step"], row["documents"], row["t"]) == (0, 1, 8, [0, 0.5, 1])
    # The 8 documents are the seeded subset (ids kept), masked by the documented rule.
    chosen = subset(load_task(f"text:{docs}"), 8, seed=0)
    tokenizer = AutoTokenizer.from_pretrained(
        str(mlms[0]), local_files_only=True, trust_remote_code=False
    )
    first = _load(AutoModelForMaskedLM, mlms[0])
    expected = _masked_reference(first, tokenizer, chosen.texts, chosen.ids.tolist())
    assert row["loss"][0] == pytest.approx(expected["loss"], rel=1e-5)
    assert row["perplexity"][0] == pytest.approx(np.exp(expected["loss"]), rel=1e-5)
    assert row["loss_barrier"] >= 0 and row["computed"] == 3
    again = mlm_paths(checkpoints, texts, study, store=store)
    assert again[0]["computed"] == 0 and again[0]["loss"] == row["loss"]
    store.close()


def test_gpt2_without_a_pad_token_matches_plain_transformers(docs, tmp_path):
    """GPT2LMHeadModel (a causal LM by its *LMHeadModel name) with a tokenizer that has no pad
    token, as GPT-2 is saved: batches pad with its end-of-text id, which is never scored."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    from weightscape.evaluation.engine import Engine

    words = ["<|endoftext|>", "[UNK]", *VOCAB[5:]]
    core = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, "[UNK]"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core, unk_token="[UNK]", eos_token="<|endoftext|>"
    )
    assert tokenizer.pad_token_id is None
    tokenizer.save_pretrained(str(tmp_path / "tok"))
    folders = []
    for seed in range(2):
        torch.manual_seed(seed)
        config = GPT2Config(
            vocab_size=len(words), n_embd=32, n_layer=2, n_head=2, n_positions=64,
            bos_token_id=0, eos_token_id=0,
        )  # fmt: skip
        folders.append(_save(GPT2LMHeadModel(config), tmp_path / f"g{seed}", tmp_path / "tok"))
    task = load_task(f"text:{docs}")
    engine = Engine([Checkpoint.from_path(f) for f in folders], task, device="cpu")
    assert engine.keys.evaluation == "causal-lm"
    for coefficients, folder in (([1.0, 0.0], folders[0]), ([0.0, 1.0], folders[1])):
        expected = _causal_reference(_load(GPT2LMHeadModel, folder), tokenizer, task.texts)
        _check_point(engine.evaluate(coefficients).metrics, expected)


def test_export_of_a_causal_lm_point_loads_as_a_causal_lm(llamas, docs, tmp_path, capsys):
    """`weightscape export` of a point between two causal LMs writes the LM class itself: it
    loads in AutoModelForCausalLM with no missing or unexpected keys, and its loss is the
    engine's (and the hand-averaged model's) at that point."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path / "mid"
    argv = ["export", str(llamas[0]), str(llamas[1]), "--t", "0.5", "--out", str(out)]
    assert main(argv) == 0, capsys.readouterr().err
    model, info = AutoModelForCausalLM.from_pretrained(
        str(out), local_files_only=True, trust_remote_code=False, output_loading_info=True
    )
    assert not info["missing_keys"] and not info["unexpected_keys"]
    tokenizer = AutoTokenizer.from_pretrained(
        str(out), local_files_only=True, trust_remote_code=False
    )
    texts = _texts(docs)
    exported = _causal_reference(model.eval(), tokenizer, texts)
    by_hand = _causal_reference(_midpoint(AutoModelForCausalLM, *llamas[:2]), tokenizer, texts)
    assert exported["loss"] == pytest.approx(by_hand["loss"], rel=1e-6)
    assert _interpolate(llamas[:2], f"text:{docs}", tmp_path / "walk") == 0
    walk = json.loads((tmp_path / "walk" / "path.json").read_text())
    assert walk["points"][1]["metrics"]["loss"] == pytest.approx(exported["loss"], rel=1e-5)


# --- finetunes of one pretrained LM, through interpolate, grid and a study file ---------------


def _finetune(model, tokenizer, texts: list[str], masked: bool, seed: int):
    """A few AdamW steps of the model's own LM loss on ``texts`` (one document per step)."""
    torch.manual_seed(seed)
    optimiser = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for text in texts:
        ids = torch.tensor([tokenizer(text)["input_ids"]])
        if masked:  # mask one real token in the middle, score it
            inputs, labels = ids.clone(), torch.full_like(ids, -100)
            position = ids.shape[1] // 2
            labels[0, position], inputs[0, position] = ids[0, position], tokenizer.mask_token_id
            loss = model(input_ids=inputs, labels=labels).loss
        else:
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        optimiser.step()
        optimiser.zero_grad()
    return model.eval()


@pytest.fixture(scope="module", params=["causal", "masked"])
def lm_finetunes(request, tmp_path_factory, llama_tokenizer_dir, tokenizer_dir, docs):
    """A tiny pretrained LM (Llama causal, or BERT masked with a tied decoder) and two finetunes
    of it on different documents, saved as model folders with the tokenizer."""
    from transformers import AutoTokenizer, BertForMaskedLM, LlamaForCausalLM

    masked = request.param == "masked"
    tok_dir = tokenizer_dir if masked else llama_tokenizer_dir
    tokenizer = AutoTokenizer.from_pretrained(
        str(tok_dir), local_files_only=True, trust_remote_code=False
    )
    root = tmp_path_factory.mktemp(f"finetunes-{request.param}")
    torch.manual_seed(0)
    base = BertForMaskedLM(_mlm_config()) if masked else LlamaForCausalLM(_llama_config())
    _save(base, root / "base", tok_dir)
    texts = _texts(docs)
    folders = []
    for k, part in enumerate((texts[:6], texts[6:])):
        model = type(base).from_pretrained(
            str(root / "base"), local_files_only=True, trust_remote_code=False
        )
        _finetune(model, tokenizer, part, masked, seed=k)
        folders.append(_save(model, root / "ft" / f"ft{k}", tok_dir))
    return request.param, folders, tokenizer


def test_lm_finetunes_through_interpolate_grid_and_a_study_file(lm_finetunes, docs, tmp_path):
    """Issue 16's acceptance: the same path through `interpolate`, `grid` and a study file gives,
    at t = 0, 0.5 and 1, the per-token loss plain transformers computes (one document at a time,
    on hand-averaged weights for the midpoint), and the grid's barrier follows from it."""
    from transformers import AutoModelForCausalLM, AutoModelForMaskedLM

    kind, (ft0, ft1), tokenizer = lm_finetunes
    auto = AutoModelForMaskedLM if kind == "masked" else AutoModelForCausalLM
    texts = _texts(docs)

    def reference(model):
        if kind == "masked":
            return _masked_reference(model, tokenizer, texts, list(range(len(texts))))
        return _causal_reference(model, tokenizer, texts)

    expected = [
        reference(m) for m in (_load(auto, ft0), _midpoint(auto, ft0, ft1), _load(auto, ft1))
    ]
    assert expected[0]["loss"] != pytest.approx(expected[2]["loss"])  # two different finetunes
    study = tmp_path / "lm.yaml"
    study.write_text(
        yaml.safe_dump(
            {
                "name": "lm-finetunes",
                "out": str(tmp_path / "out"),
                "evaluation": {"task": f"text:{docs}", "split": "all", "device": "cpu"},
                "steps": [
                    {"interpolate": {"anchors": [str(ft0), str(ft1)], "points": 3}},
                    {"grid": {"models": str(ft0.parent / "ft*"), "points": 3}},
                ],
            }
        )
    )
    assert main(["run", str(study)]) == 0
    (walk_file,) = (tmp_path / "out").rglob("path.json")
    walk = json.loads(walk_file.read_text())
    for point, want in zip(walk["points"], expected, strict=True):
        _check_point(point["metrics"], want)
    (grid_file,) = (tmp_path / "out").rglob("grid.npz")
    with np.load(grid_file) as grid:
        curve, barrier = grid["curve_loss"][0, 1], grid["matrix_loss_barrier"][0, 1]
    np.testing.assert_allclose(curve, [e["loss"] for e in expected], rtol=1e-5)
    chord = 0.5 * (expected[0]["loss"] + expected[2]["loss"])
    assert barrier == pytest.approx(max(0.0, expected[1]["loss"] - chord), abs=1e-5)
    # The command on its own (a fresh store) computes the same numbers as the study step.
    out = tmp_path / "alone"
    assert _interpolate([ft0, ft1], f"text:{docs}", out) == 0
    alone = json.loads((out / "path.json").read_text())
    assert [p["metrics"]["loss"] for p in alone["points"]] == [
        p["metrics"]["loss"] for p in walk["points"]
    ]
