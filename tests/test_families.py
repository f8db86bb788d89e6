"""Every classifier family round-trips through the engine, against plain transformers.

For each family a tiny sequence classifier is built from its config (the sizes of
tests/test_space_families.py, two labels), saved with ``save_pretrained`` (safetensors) with a
tokenizer that fits it, under three seeds; nothing is finetuned. The reference for every number is
the saved folder loaded with ``AutoModelForSequenceClassification.from_pretrained`` and run one
example at a time. Encoders read the WordPiece tokenizer of ``conftest.tokenizer_dir``; decoders,
T5 and BART a word-level tokenizer built here with the ``tokenizers`` library (T5 appends
``</s>``, BART wraps in ``<s> ... </s>``, as their classifiers read the end-of-sequence token).
GPT-2 comes with and without a pad token; Llama and Mistral without one, as most users save
them, so their padded batches rely on the eos-as-pad convention
(:mod:`weightscape.models.padding`). (Qwen2 is left out: transformers 5.23 loads any tokenizer
beside a ``qwen2`` config as its byte-level ``Qwen2Tokenizer``, which a word-level test tokenizer
is not; the engine treats it exactly as Mistral, the same decoder classifier class.)

The task's examples are 5 to 9 words, so with ``batch_size=1`` no two examples fit one token
budget (twice the shortest is longer than the longest) and the engine runs them one at a time,
as the reference does: t = 0 and t = 1 must then match it bit for bit.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import FILLER, LABEL_NAMES, NEGATIVE, POSITIVE
from test_space_families import _bart, _deberta, _distilbert, _electra, _t5
from weightscape.analyses.connectivity import connectivity_grid
from weightscape.analyses.interpolation import walk_path
from weightscape.analyses.weight_stats import cosine_similarities, gram_matrix
from weightscape.data import make_task
from weightscape.evaluation.engine import EngineSpec
from weightscape.evaluation.evaluator import EvalSettings
from weightscape.evaluation.grouped import GroupedPoint
from weightscape.models.checkpoint import Checkpoint
from weightscape.models.space import ParameterSpace, group_of

H, FF, V = 16, 32, 100
ONE_AT_A_TIME = EvalSettings(batch_size=1, max_length=32)
BATCHED = EvalSettings(batch_size=64, max_length=32)


def _texts(n: int = 16, seed: int = 3) -> tuple[list[str], list[int]]:
    """Sentences of 5 to 9 words, labelled by whether a positive or negative word is in them."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for _ in range(n):
        label = int(rng.integers(2))
        words = list(rng.choice(FILLER, size=int(rng.integers(4, 9))))
        words.insert(
            int(rng.integers(len(words) + 1)), str(rng.choice([NEGATIVE, POSITIVE][label]))
        )
        texts.append(" ".join(words))
        labels.append(label)
    return texts, labels


TEXTS, LABELS = _texts()


@pytest.fixture(scope="module")
def task():
    return make_task("families", TEXTS, LABELS, LABEL_NAMES[2])


# ---- tokenizers --------------------------------------------------------------------------------


def word_tokenizer(folder: Path, specials: list[str], template: str | None = None, **roles):
    """A word-level fast tokenizer over the test vocabulary, saved to ``folder``.

    ``roles`` maps pad/eos/bos/unk_token to special tokens; a missing role is absent (GPT-2 as
    most users save it has no pad token). ``template`` adds special tokens around each input.
    """
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {word: i for i, word in enumerate([*specials, *POSITIVE, *NEGATIVE, *FILLER])}
    core = Tokenizer(models.WordLevel(vocab, unk_token=roles["unk_token"]))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    if template is not None:
        used = [t for t in specials if t in template]
        core.post_processor = processors.TemplateProcessing(
            single=template, special_tokens=[(t, vocab[t]) for t in used]
        )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core, model_input_names=["input_ids", "attention_mask"], **roles
    )
    tokenizer.save_pretrained(str(folder))
    return vocab


def _bert_tokens(folder: Path, tokenizer_dir: Path) -> dict[str, int]:
    for f in tokenizer_dir.iterdir():
        shutil.copy(f, folder / f.name)
    return {}


# ---- families ----------------------------------------------------------------------------------


def _encoder_sizes() -> dict:
    return {
        "hidden_size": H,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": FF,
        "max_position_embeddings": 64,
        "vocab_size": V,
        "pad_token_id": 0,  # the WordPiece [PAD]
    }


def _with(model, **changes):
    """The same family rebuilt with config changes (two labels, the tokenizer's special ids)."""
    config = model.config
    for key, value in changes.items():
        setattr(config, key, value)
    return type(model)(config)


def _decoder_tokens(pad: bool):
    def write(folder: Path, _: Path) -> dict[str, int]:
        specials = ["<unk>", "<eos>", *(["<pad>"] if pad else [])]
        roles = {"unk_token": "<unk>", "eos_token": "<eos>", "bos_token": "<eos>"}
        return word_tokenizer(folder, specials, **roles, **({"pad_token": "<pad>"} if pad else {}))

    return write


def _decoder_ids(pad: bool) -> dict:
    return {"bos_token_id": 1, "eos_token_id": 1, "pad_token_id": 2 if pad else None}


def _gpt2(t, pad: bool):
    config = t.GPT2Config(n_embd=H, n_layer=2, n_head=2, n_positions=64, vocab_size=V)
    for key, value in _decoder_ids(pad).items():
        setattr(config, key, value)
    return t.GPT2ForSequenceClassification(config)


def _decoder(config_class: str, model_class: str):
    def build(t):
        config = getattr(t, config_class)(
            hidden_size=H, intermediate_size=FF, num_hidden_layers=2, num_attention_heads=2,
            num_key_value_heads=1, vocab_size=V, max_position_embeddings=64,
            **_decoder_ids(pad=False),
        )  # fmt: skip
        return getattr(t, model_class)(config)

    return build


def _t5_tokens(folder: Path, _: Path) -> dict[str, int]:
    roles = {"pad_token": "<pad>", "eos_token": "</s>", "unk_token": "<unk>"}
    return word_tokenizer(folder, ["<pad>", "</s>", "<unk>"], "$A </s>", **roles)


def _bart_tokens(folder: Path, _: Path) -> dict[str, int]:
    roles = {"bos_token": "<s>", "pad_token": "<pad>", "eos_token": "</s>", "unk_token": "<unk>"}
    return word_tokenizer(folder, ["<s>", "<pad>", "</s>", "<unk>"], "<s> $A </s>", **roles)


@dataclass(frozen=True)
class Family:
    build: Callable  # transformers module -> a tiny classifier (any label count)
    tokens: Callable[[Path, Path], dict]  # (folder, WordPiece folder) -> writes a tokenizer


def _encoder(config_class: str, model_class: str, **extra):
    def build(t):
        config = getattr(t, config_class)(**_encoder_sizes(), **extra)
        return getattr(t, model_class)(config)

    return build


FAMILIES = {
    "bert": Family(_encoder("BertConfig", "BertForSequenceClassification"), _bert_tokens),
    "roberta": Family(_encoder("RobertaConfig", "RobertaForSequenceClassification"), _bert_tokens),
    "deberta-v2": Family(lambda t: _with(_deberta(t), pad_token_id=0), _bert_tokens),
    "distilbert": Family(lambda t: _with(_distilbert(t), pad_token_id=0), _bert_tokens),
    "electra": Family(lambda t: _with(_electra(t), pad_token_id=0), _bert_tokens),
    # ALBERT: one layer's weights shared by both layers, embeddings narrower than the hidden size.
    "albert": Family(
        _encoder("AlbertConfig", "AlbertForSequenceClassification", embedding_size=8),
        _bert_tokens,
    ),
    "t5": Family(
        lambda t: _with(_t5(t), pad_token_id=0, eos_token_id=1, decoder_start_token_id=0),
        _t5_tokens,
    ),
    "bart": Family(
        lambda t: _with(
            _bart(t), bos_token_id=0, pad_token_id=1, eos_token_id=2, decoder_start_token_id=2
        ),
        _bart_tokens,
    ),
    "gpt2": Family(lambda t: _gpt2(t, pad=True), _decoder_tokens(pad=True)),
    "gpt2-no-pad": Family(lambda t: _gpt2(t, pad=False), _decoder_tokens(pad=False)),
    "llama": Family(
        _decoder("LlamaConfig", "LlamaForSequenceClassification"), _decoder_tokens(False)
    ),
    "mistral": Family(
        _decoder("MistralConfig", "MistralForSequenceClassification"), _decoder_tokens(False)
    ),
}


def save_family(name: str, folder: Path, seed: int, tokenizer_dir: Path) -> Checkpoint:
    """A tiny two-label classifier of ``name`` drawn with ``seed``, saved with its tokenizer."""
    import transformers

    torch.manual_seed(seed)
    model = FAMILIES[name].build(transformers)
    model = _with(model, num_labels=2, id2label=dict(enumerate(LABEL_NAMES[2])))
    model.config.label2id = {label: i for i, label in model.config.id2label.items()}
    model.save_pretrained(str(folder))
    FAMILIES[name].tokens(folder, tokenizer_dir)
    return Checkpoint.from_path(folder, name=f"{name}-{seed}")


@pytest.fixture(scope="module")
def zoo(tmp_path_factory, tokenizer_dir):
    """family -> three saved classifiers (seeds 0, 1, 2), built on first use."""
    built: dict[str, list[Checkpoint]] = {}

    def get(name: str) -> list[Checkpoint]:
        if name not in built:
            root = tmp_path_factory.mktemp(name)
            built[name] = [save_family(name, root / f"s{s}", s, tokenizer_dir) for s in range(3)]
        return built[name]

    return get


# ---- the reference: plain transformers, one example at a time -----------------------------------


def reference_losses(
    folder: Path, state: dict[str, torch.Tensor] | None = None, examples: int = len(TEXTS)
) -> np.ndarray:
    """Each example's loss (of the first ``examples``) from the folder loaded with plain
    transformers (optionally with some of its tensors replaced first), one example at a time, in
    float32."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(
        str(folder), local_files_only=True, trust_remote_code=False
    ).eval()
    with torch.no_grad():
        # from_pretrained leaves weights in the memory-mapped file, at offsets the header decides
        # (not 64-byte aligned), and CPU matmul kernels sum in an order that depends on alignment:
        # the same weights then give logits 1 ulp apart depending on where they lie. Fresh copies
        # lie where any newly allocated model's weights do.
        for parameter in model.parameters():
            parameter.data = parameter.data.clone()
    if state is not None:
        with torch.no_grad():
            for key, value in model.state_dict().items():
                if key in state:
                    value.copy_(state[key])
    tokenizer = AutoTokenizer.from_pretrained(
        str(folder), local_files_only=True, trust_remote_code=False
    )
    losses = []
    with torch.inference_mode():
        for text, label in zip(TEXTS[:examples], LABELS[:examples], strict=True):
            inputs = tokenizer(text, truncation=True, max_length=32, return_tensors="pt")
            log_probs = torch.log_softmax(model(**inputs).logits.float(), dim=-1)
            losses.append(float(-log_probs[0, label]))
    return np.array(losses, dtype=np.float32)


def _state(checkpoint: Checkpoint) -> dict[str, torch.Tensor]:
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(
        str(checkpoint.path), local_files_only=True, trust_remote_code=False
    )
    return {k: v.clone() for k, v in model.state_dict().items()}


# ---- conformance -------------------------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
def test_family_round_trips_through_the_engine(family, zoo, task):
    """t = 0 and t = 1 reproduce each model bit for bit; padded batches give the same losses;
    a per-layer one-hot mix equals the model assembled by hand; the line is finite throughout."""
    a, b, _ = zoo(family)
    expected = [reference_losses(c.path) for c in (a, b)]
    assert not np.array_equal(expected[0], expected[1])  # two different models

    spec = EngineSpec(anchors=(a, b), task=task, settings=ONE_AT_A_TIME, device="cpu")
    engine = spec.build()
    assert engine.evaluator.forward_passes == 0 and len(engine.evaluator.batches) == len(TEXTS)
    for coefficients, reference in (([1.0, 0.0], expected[0]), ([0.0, 1.0], expected[1])):
        np.testing.assert_array_equal(engine.evaluate(coefficients).losses, reference)

    # Alternate whole layers between the two anchors: tied tensors (T5/BART's token table) are
    # one group, so the result is a well-defined model, assembled here by hand.
    names = list(engine.working.state)
    layers = sorted(ParameterSpace(group_by="layer").groups(names))
    point = GroupedPoint.from_mapping(
        "layer", {g: [1.0, 0.0] if i % 2 else [0.0, 1.0] for i, g in enumerate(layers)}
    )
    from_b = {g for i, g in enumerate(layers) if not i % 2}
    state_b = _state(b)
    mixed = {k: v for k, v in state_b.items() if group_of(k, "layer") in from_b}
    np.testing.assert_array_equal(
        engine.evaluate(point).losses, reference_losses(a.path, state=mixed)
    )

    batched = EngineSpec(anchors=(a, b), task=task, settings=BATCHED, device="cpu").build()
    assert len(batched.evaluator.batches) < len(TEXTS)  # really padded batches
    np.testing.assert_allclose(
        batched.evaluate([1.0, 0.0]).losses, expected[0], rtol=2e-5, atol=2e-6
    )

    walk = walk_path(engine, [0.0, 0.5, 1.0])
    assert walk.endpoints[a.name]["loss"] == pytest.approx(float(np.mean(expected[0])), rel=1e-6)
    assert all(np.isfinite(p.metrics["loss"]) for p in walk.points)


@pytest.mark.parametrize("family", FAMILIES)
def test_family_grid_and_similarity(family, zoo, task):
    """A grid over three models starts each path at the model's own loss; task-vector cosines
    from the first model match the cosines of the flattened weights computed here."""
    models = zoo(family)
    spec = EngineSpec(anchors=tuple(models), task=task, settings=BATCHED, device="cpu")
    grid = connectivity_grid(spec, points=3)
    losses = grid.curves["loss"]
    assert losses.shape == (3, 3, 3) and np.isfinite(losses[~np.eye(3, dtype=bool)]).all()
    for i, checkpoint in enumerate(models):
        own = float(np.mean(reference_losses(checkpoint.path)))
        assert grid.endpoint_metrics["loss"][i] == pytest.approx(own, rel=1e-5)
        assert losses[i, (i + 1) % 3, 0] == grid.endpoint_metrics["loss"][i]

    from safetensors.torch import load_file

    files = [load_file(str(c.path / "model.safetensors")) for c in models]
    flat = [
        torch.cat([f[k].double().flatten() for k in sorted(f) if f[k].is_floating_point()])
        for f in files
    ]
    tv1, tv2 = flat[1] - flat[0], flat[2] - flat[0]
    expected = float(tv1 @ tv2 / (tv1.norm() * tv2.norm()))
    cosines = cosine_similarities(gram_matrix(models[1:], base=models[0]))
    assert cosines[0, 1] == pytest.approx(expected, abs=1e-9)


# ---- tied tensors ------------------------------------------------------------------------------


@pytest.mark.parametrize("kept", ["transformer.encoder.embed_tokens.weight", "all"])
def test_any_name_of_a_tied_group_serves_it(kept, zoo, task, tmp_path):
    """T5's token table saved under one other name of its tie (or under all three, as
    transformers 4 saved it) is found for every name, and reproduces the model."""
    from safetensors.torch import load_file, save_file

    t5 = zoo("t5")[0]
    folder = tmp_path / "renamed"
    shutil.copytree(t5.path, folder)
    tensors = load_file(str(t5.path / "model.safetensors"))
    table = tensors.pop("transformer.shared.weight")
    names = list(_state(t5)) if kept == "all" else [kept]
    tensors.update({n: table.clone() for n in names if "embed_tokens" in n or "shared" in n})
    save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})
    renamed = Checkpoint.from_path(folder, name="renamed")
    engine = EngineSpec(anchors=(renamed, t5), task=task, settings=ONE_AT_A_TIME).build()
    np.testing.assert_array_equal(engine.evaluate([1.0, 0.0]).losses, reference_losses(t5.path))


def test_tied_groups_come_from_the_model_itself():
    """Storage shared in a tied model makes a group, written once under its first name; a model
    built without tying (``no_init_weights``) still finds the group from its declared ties."""
    import transformers
    from transformers.initialization import no_init_weights

    from weightscape.models.aliases import secondary_names, tied_groups

    model = FAMILIES["t5"].build(transformers)
    table = ("shared", "encoder.embed_tokens", "decoder.embed_tokens")
    group = tuple(f"transformer.{n}.weight" for n in table)
    assert set(tied_groups(model).values()) == {group}
    assert secondary_names(model) == frozenset(group[1:])
    with no_init_weights():
        untied = type(model)(model.config)
    assert set(tied_groups(untied).values()) == {group}
    assert secondary_names(untied) == frozenset()  # three tensors: each is written
    assert tied_groups(FAMILIES["albert"].build(transformers)) == {}  # shared layers: one module


# ---- a bare pretrained base and its classifiers on one line -------------------------------------


def _base_and_classifiers(root: Path, tokenizer_dir: Path) -> tuple[Checkpoint, ...]:
    """A bare ``BertModel`` (as MiniLM's folder holds it) and two classifiers finetuned from it
    (its encoder moved a little, each with its own head)."""
    from transformers import BertForSequenceClassification, BertModel

    from conftest import tiny_config

    torch.manual_seed(7)
    base = BertModel(tiny_config(), add_pooling_layer=True)
    base.save_pretrained(str(root / "base"))
    _bert_tokens(root / "base", tokenizer_dir)
    made = [Checkpoint.from_path(root / "base", name="base")]
    for seed in (1, 2):
        torch.manual_seed(seed)
        classifier = BertForSequenceClassification(tiny_config())
        classifier.bert.load_state_dict(base.state_dict())
        with torch.no_grad():
            for parameter in classifier.bert.parameters():
                parameter.add_(0.05 * torch.randn_like(parameter))
        classifier.save_pretrained(str(root / f"ft{seed}"))
        _bert_tokens(root / f"ft{seed}", tokenizer_dir)
        made.append(Checkpoint.from_path(root / f"ft{seed}", name=f"ft{seed}"))
    return tuple(made)


@pytest.fixture(scope="module")
def base_pair(tmp_path_factory, tokenizer_dir):
    return _base_and_classifiers(tmp_path_factory.mktemp("base"), tokenizer_dir)


def _base_state(base: Checkpoint, prefix: str = "bert.") -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return {prefix + k: v for k, v in load_file(str(base.path / "model.safetensors")).items()}


def test_base_and_classifier_share_a_line(base_pair, task, caplog):
    """t = 1 is the classifier; t = 0 the classifier with the base's encoder; t = 0.5 the
    average encoder under the classifier's head; t = 2 (extrapolated) keeps that head exactly."""
    base, ft, _ = base_pair
    engine = EngineSpec(anchors=(base, ft), task=task, settings=ONE_AT_A_TIME).build()
    assert type(engine.working.model).__name__ == "BertForSequenceClassification"
    assert "no classification head" in caplog.text and "'ft1'" in caplog.text
    np.testing.assert_array_equal(engine.evaluate([0.0, 1.0]).losses, reference_losses(ft.path))
    base_state = _base_state(base)
    np.testing.assert_array_equal(
        engine.evaluate([1.0, 0.0]).losses, reference_losses(ft.path, state=base_state)
    )
    ft_state = _state(ft)
    average = {k: 0.5 * v + 0.5 * ft_state[k] for k, v in base_state.items() if k in ft_state}
    np.testing.assert_array_equal(
        engine.evaluate([0.5, 0.5]).losses, reference_losses(ft.path, state=average)
    )
    engine.evaluate([-1.0, 2.0])
    for name in ("classifier.weight", "classifier.bias"):
        assert torch.equal(engine.working.state[name], ft_state[name])
    encoder = "bert.encoder.layer.0.output.dense.weight"
    expected = 2.0 * ft_state[encoder] - base_state[encoder]
    torch.testing.assert_close(engine.working.state[encoder], expected, rtol=0, atol=1e-6)


def test_a_point_on_the_base_line_exports_as_the_engine_evaluates_it(base_pair, task, tmp_path):
    """A point between a bare base and its classifier (base given first, as the reference)
    exports as a classifier folder that plain transformers loads with no missing or unexpected
    keys, and whose per-example losses are the engine's for that point."""
    from transformers import AutoModelForSequenceClassification

    from weightscape.evaluation.export import save_combination

    base, ft, _ = base_pair
    saved = save_combination([base, ft], [0.25, 0.75], tmp_path / "point")
    _, info = AutoModelForSequenceClassification.from_pretrained(
        str(saved.path), local_files_only=True, trust_remote_code=False, output_loading_info=True
    )
    assert not info["missing_keys"] and not info["unexpected_keys"]
    engine = EngineSpec(anchors=(base, ft), task=task, settings=ONE_AT_A_TIME).build()
    np.testing.assert_allclose(
        engine.evaluate([0.25, 0.75]).losses, reference_losses(saved.path), rtol=0, atol=1e-6
    )


def test_base_first_or_second_builds_the_same_points(base_pair, task):
    """Anchor order does not matter: the classifier is built from the anchor with a head."""
    base, ft, _ = base_pair
    forward = EngineSpec(anchors=(base, ft), task=task, settings=ONE_AT_A_TIME)
    backward = EngineSpec(anchors=(ft, base), task=task, settings=ONE_AT_A_TIME)
    a, b = forward.build(), backward.build()
    np.testing.assert_array_equal(a.evaluate([1.0, 0.0]).losses, b.evaluate([0.0, 1.0]).losses)
    assert a.spec([1.0, 0.0]) == b.spec([0.0, 1.0])
    assert forward.key_maker().spec([0.3, 0.7]) == a.spec([0.3, 0.7])


def test_base_points_are_keyed_by_the_head_they_borrow(base_pair, task):
    """The base under ft1's head and under ft2's head are two models: two keys (and the keys of
    classifier-only points do not name a donor)."""
    from weightscape.evaluation.keys import spec_key

    base, ft1, ft2 = base_pair
    one = EngineSpec(anchors=(base, ft1), task=task, settings=ONE_AT_A_TIME).build()
    two = EngineSpec(anchors=(base, ft2), task=task, settings=ONE_AT_A_TIME).build()
    assert spec_key(one.spec([1.0, 0.0])) != spec_key(two.spec([1.0, 0.0]))
    assert not np.array_equal(one.evaluate([1.0, 0.0]).losses, two.evaluate([1.0, 0.0]).losses)
    plain = EngineSpec(anchors=(ft1, ft2), task=task, settings=ONE_AT_A_TIME)
    assert "heads_from" not in plain.key_maker().spec([1.0, 0.0])["settings"]


def test_only_bases_is_refused(base_pair, task):
    from weightscape.errors import WeightscapeError

    base = base_pair[0]
    with pytest.raises(WeightscapeError, match="no classification head"):
        EngineSpec(anchors=(base, base), task=task, settings=ONE_AT_A_TIME).build()


@pytest.mark.slow
def test_minilm_folder_is_an_anchor(tmp_path, tokenizer_dir):
    """The all-MiniLM-L6-v2 folder itself and a classifier one small step from it: t = 0 is the
    classifier with MiniLM's encoder, t = 1 the classifier."""
    from transformers import BertForSequenceClassification

    from weightscape.models.pretrained import resolve_model_path

    minilm = resolve_model_path("minilm")
    classifier = BertForSequenceClassification.from_pretrained(
        str(minilm), num_labels=2, local_files_only=True, trust_remote_code=False
    )
    classifier.config.id2label = dict(enumerate(LABEL_NAMES[2]))
    classifier.config.label2id = {label: i for i, label in classifier.config.id2label.items()}
    with torch.no_grad():
        classifier.bert.encoder.layer[0].output.dense.weight.add_(1e-3)
    classifier.save_pretrained(str(tmp_path / "ft"))
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        shutil.copy(minilm / name, tmp_path / "ft" / name)
    ft = Checkpoint.from_path(tmp_path / "ft", name="ft")
    base = Checkpoint.from_path(minilm, name="minilm")
    task = make_task("families", TEXTS[:4], LABELS[:4], LABEL_NAMES[2])
    engine = EngineSpec(anchors=(base, ft), task=task, settings=ONE_AT_A_TIME).build()
    np.testing.assert_array_equal(
        engine.evaluate([0.0, 1.0]).losses, reference_losses(ft.path, examples=4)
    )
    np.testing.assert_array_equal(
        engine.evaluate([1.0, 0.0]).losses,
        reference_losses(ft.path, state=_base_state(base), examples=4),
    )


def test_base_to_classifier_distance_is_over_the_encoder(base_pair):
    """The length of the line base -> classifier: the encoder's difference (the head is the
    classifier's at both ends), in either order."""
    from safetensors.torch import load_file

    from weightscape.analyses.interpolation import endpoint_distance

    base, ft, _ = base_pair
    ft_tensors = load_file(str(ft.path / "model.safetensors"))
    squares = sum(
        float(((ft_tensors[k].double() - v.double()) ** 2).sum())
        for k, v in _base_state(base).items()
        if v.is_floating_point()
    )
    for anchors in ((base, ft), (ft, base)):
        spec = EngineSpec(anchors=anchors, task=make_task("t", ["good"], [1], LABEL_NAMES[2]))
        assert endpoint_distance(spec) == pytest.approx(squares**0.5, rel=1e-9)


# ---- decoder classifiers: padding -------------------------------------------------------------


def test_missing_pad_token_is_said_once_and_keyed(zoo, task, caplog):
    """GPT-2 saved without a pad token: one line says eos pads (not one per point or engine),
    and the padding rule is in the keys, the same from the spec as from the engine; encoders'
    keys do not carry it."""
    from weightscape.models import padding

    padding._said.clear()
    a, b, _ = zoo("gpt2-no-pad")
    spec = EngineSpec(anchors=(a, b), task=task, settings=BATCHED, device="cpu")
    engine = spec.build()
    for t in (0.0, 0.5, 1.0):
        engine.evaluate([1 - t, t])
    spec.build()
    said = [r for r in caplog.records if "has no pad token" in r.getMessage()]
    assert len(said) == 1 and "end-of-sequence token (id 1)" in said[0].getMessage()
    assert engine.working.model.config.pad_token_id == 1
    key = engine.spec([0.5, 0.5])
    assert key == spec.key_maker().spec([0.5, 0.5])
    assert key["settings"]["padding"] == padding.DECODER_PADDING
    bert = EngineSpec(anchors=tuple(zoo("bert")[:2]), task=task, device="cpu")
    assert "padding" not in bert.key_maker().spec([0.5, 0.5])["settings"]


def test_left_padding_tokenizer_is_padded_on_the_right(zoo, task, tmp_path):
    """A decoder's tokenizer saved to pad on the left (common for generation) would shift GPT-2's
    absolute positions in a batch; batches are padded on the right, so each example's loss is
    its loss alone."""
    import json

    gpt2 = zoo("gpt2-no-pad")[0]
    folder = tmp_path / "left"
    shutil.copytree(gpt2.path, folder)
    settings = json.loads((folder / "tokenizer_config.json").read_text())
    (folder / "tokenizer_config.json").write_text(json.dumps({**settings, "padding_side": "left"}))
    left = Checkpoint.from_path(folder, name="left")
    engine = EngineSpec(anchors=(left,), task=task, settings=BATCHED, device="cpu").build()
    assert engine.evaluator.tokenizer.padding_side == "right"
    losses = engine.evaluate([1.0]).losses
    np.testing.assert_allclose(losses, reference_losses(gpt2.path), rtol=2e-5, atol=2e-6)
