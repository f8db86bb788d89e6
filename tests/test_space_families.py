"""Parameter-space grouping across model families, against counts worked out by hand.

Each family is a tiny sequence classifier built from a config (2 blocks per stack, hidden 16,
vocabulary 100, 3 labels); the names are its ``state_dict()`` keys, which is what the working model
writes. Every expected count below is derived in its comment from the architecture, not from
weightscape. Qin et al. (2022, App. B) give the T5-base counts (28 layer, 64 module, 282 matrix
groups for fine-tuning), checked on a T5 with their 12 + 12 blocks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from weightscape.models.space import ParameterSpace, group_of, is_head

V, H, FF, LABELS = 100, 16, 32, 3


def _bert(t):
    return t.BertForSequenceClassification(
        t.BertConfig(**_encoder_sizes(), vocab_size=V, num_labels=LABELS)
    )


def _roberta(t):
    return t.RobertaForSequenceClassification(
        t.RobertaConfig(**_encoder_sizes(), vocab_size=V, num_labels=LABELS)
    )


def _deberta(t):
    # DeBERTa-v3 style: relative attention with a normalised position table, no absolute
    # positions, no token types.
    config = t.DebertaV2Config(
        **_encoder_sizes(),
        vocab_size=V,
        num_labels=LABELS,
        relative_attention=True,
        position_buckets=8,
        max_relative_positions=16,
        norm_rel_ebd="layer_norm",
        share_att_key=True,
        pos_att_type=["p2c", "c2p"],
        position_biased_input=False,
        type_vocab_size=0,
    )
    return t.DebertaV2ForSequenceClassification(config)


def _electra(t):
    # ELECTRA-small style: embeddings narrower than the hidden size, hence a projection.
    config = t.ElectraConfig(**_encoder_sizes(), embedding_size=8, vocab_size=V, num_labels=LABELS)
    return t.ElectraForSequenceClassification(config)


def _distilbert(t):
    config = t.DistilBertConfig(
        dim=H, n_layers=2, n_heads=2, hidden_dim=FF, max_position_embeddings=64, vocab_size=V
    )
    config.num_labels = LABELS
    return t.DistilBertForSequenceClassification(config)


def _t5(t):
    config = t.T5Config(
        d_model=H, d_kv=8, d_ff=FF, num_layers=2, num_decoder_layers=2, num_heads=2, vocab_size=V
    )
    config.num_labels = LABELS
    return t.T5ForSequenceClassification(config)


def _bart(t):
    config = t.BartConfig(
        d_model=H,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=FF,
        decoder_ffn_dim=FF,
        max_position_embeddings=64,
        vocab_size=V,
        num_labels=LABELS,
    )
    return t.BartForSequenceClassification(config)


def _gpt2(t):
    config = t.GPT2Config(
        n_embd=H, n_layer=2, n_head=2, n_positions=64, vocab_size=V, pad_token_id=0,
        bos_token_id=1, eos_token_id=2, num_labels=LABELS,
    )  # fmt: skip
    return t.GPT2ForSequenceClassification(config)


def _llama(t):
    config = t.LlamaConfig(
        hidden_size=H, intermediate_size=FF, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=2, vocab_size=V, pad_token_id=0, bos_token_id=1, eos_token_id=2,
        num_labels=LABELS,
    )  # fmt: skip
    return t.LlamaForSequenceClassification(config)


def _encoder_sizes() -> dict[str, Any]:
    return {
        "hidden_size": H,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": FF,
        "max_position_embeddings": 64,
    }


@dataclass(frozen=True)
class Family:
    """Hand counts for one tiny model: tensors, groups per grouping, head tensors, and the
    number of tensors in each module group of the first block(s)."""

    build: Any
    tensors: int
    layer: int
    module: int
    matrix: int
    head: int
    block_modules: dict[str, int]


# BERT block: attention = query, key, value, attention.output.dense, attention.output.LayerNorm
# (5 matrices, 10 tensors); ffn = intermediate.dense, output.dense, output.LayerNorm (3, 6).
# So 8 matrices and 16 tensors per block.
BERT_BLOCK = {"layer.0.attention": 10, "layer.0.ffn": 6}

FAMILIES = {
    # embeddings: word, position, token_type, LayerNorm (4 matrices, 5 tensors); 2 blocks of 16;
    # pooler.dense (2); classifier (2): 5 + 32 + 2 + 2 = 41 tensors.
    # layer: embeddings, layer.0, layer.1, pooler, head = 5. module: 1 + 2*2 + 1 + 1 = 7.
    # matrix: 4 + 2*8 + pooler 1 + classifier 1 = 22.
    "bert": Family(_bert, 41, 5, 7, 22, 2, BERT_BLOCK),
    # As BERT without the pooler (RobertaForSequenceClassification builds none), and a two-matrix
    # head classifier.dense + classifier.out_proj (4 tensors): 5 + 32 + 4 = 41 tensors.
    # layer: embeddings, layer.0, layer.1, head = 4. module: 1 + 4 + 1 = 6. matrix: 4 + 16 + 2.
    "roberta": Family(_roberta, 41, 4, 6, 22, 4, BERT_BLOCK),
    # embeddings: word, LayerNorm (2 matrices, 3 tensors); 2 BERT-shaped blocks (query_proj, ...)
    # of 16; encoder.rel_embeddings + encoder.LayerNorm (2 matrices, 3 tensors); head: the
    # task's ContextPooler pooler.dense and classifier (2 matrices, 4 tensors): 3+32+3+4 = 42.
    # layer: embeddings, layer.0, layer.1, rel_embeddings, head = 5. module: 1 + 4 + 1 + 1 = 7.
    # matrix: 2 + 16 + 2 + 2 = 22.
    "deberta": Family(_deberta, 42, 5, 7, 22, 4, BERT_BLOCK),
    # embeddings: word, position, token_type, LayerNorm, embeddings_project (5 matrices, 7
    # tensors); 2 blocks of 16; head classifier.dense + out_proj (4): 7 + 32 + 4 = 43.
    # layer: embeddings, layer.0, layer.1, head = 4. module: 6. matrix: 5 + 16 + 2 = 23.
    "electra": Family(_electra, 43, 4, 6, 23, 4, BERT_BLOCK),
    # embeddings: word, position, LayerNorm (3 matrices, 4 tensors); block: attention = q_lin,
    # k_lin, v_lin, out_lin, sa_layer_norm (5, 10 tensors), ffn = lin1, lin2, output_layer_norm
    # (3, 6); head pre_classifier + classifier (4): 4 + 32 + 4 = 40 tensors.
    # layer: embeddings, layer.0, layer.1, head = 4. module: 6. matrix: 3 + 16 + 2 = 21.
    "distilbert": Family(_distilbert, 40, 4, 6, 21, 4, {"layer.0.attention": 10, "layer.0.ffn": 6}),
    # Token table under three tied names: shared, encoder.embed_tokens, decoder.embed_tokens.
    # Encoder block 0: layer.0 = SelfAttention q, k, v, o, relative_attention_bias + layer_norm
    # (6 tensors); layer.1 = DenseReluDense wi, wo + layer_norm (3). Block 1 has no relative
    # bias: 5 + 3. Decoder block 0: self-attention 6, layer.1 = EncDecAttention q, k, v, o +
    # layer_norm (5), layer.2 = feed-forward 3; block 1: 5 + 5 + 3. No biases anywhere (one
    # tensor per matrix) except the head. Final norms: encoder, decoder. Head:
    # classification_head.dense + out_proj (4 tensors).
    # Tensors: 3 + (9 + 8) + 1 + (14 + 13) + 1 + 4 = 53.
    # layer: embeddings, layer.0, layer.1, final_norm, decoder.layer.0, decoder.layer.1,
    # decoder.final_norm, head = 8. module: 1 + 2*2 + 2*3 + 1 + 1 + 1 = 14.
    # matrix: token table 1 + 17 + 1 + 27 + 1 + head 2 = 49.
    "t5": Family(
        _t5,
        53,
        8,
        14,
        49,
        4,
        {
            "layer.0.attention": 6,
            "layer.0.ffn": 3,
            "decoder.layer.0.attention": 6,
            "decoder.layer.0.cross_attention": 5,
            "decoder.layer.0.ffn": 3,
        },
    ),
    # Embeddings: shared, encoder/decoder embed_tokens (one tied table), encoder and decoder
    # embed_positions and layernorm_embedding (4 matrices, 6 tensors): 3 + 6 = 9 tensors.
    # Encoder block: self_attn k, v, q, out_proj + self_attn_layer_norm (5 matrices, 10
    # tensors); fc1, fc2, final_layer_norm (3, 6). Decoder block adds encoder_attn k, v, q,
    # out_proj + encoder_attn_layer_norm (5, 10). Head: classification_head dense + out_proj (4).
    # Tensors: 9 + 2*16 + 2*26 + 4 = 97.
    # layer: embeddings, layer.0, layer.1, decoder.layer.0, decoder.layer.1, head = 6.
    # module: 1 + 2*2 + 2*3 + 1 = 12. matrix: 1 + 4 + 2*8 + 2*13 + 2 = 49.
    "bart": Family(
        _bart,
        97,
        6,
        12,
        49,
        4,
        {
            "layer.0.attention": 10,
            "layer.0.ffn": 6,
            "decoder.layer.0.attention": 10,
            "decoder.layer.0.cross_attention": 10,
            "decoder.layer.0.ffn": 6,
        },
    ),
    # wte, wpe; block: ln_1, attn.c_attn, attn.c_proj (attention: 3 matrices, 6 tensors), ln_2,
    # mlp.c_fc, mlp.c_proj (ffn: 3, 6); ln_f (2); score (1, no bias): 2 + 24 + 2 + 1 = 29.
    # layer: embeddings, layer.0, layer.1, final_norm, head = 5. module: 1 + 4 + 1 + 1 = 7.
    # matrix: 2 + 2*6 + 1 + 1 = 16.
    "gpt2": Family(_gpt2, 29, 5, 7, 16, 1, {"layer.0.attention": 6, "layer.0.ffn": 6}),
    # embed_tokens; block: q, k, v, o_proj + input_layernorm (attention: 5), gate, up, down_proj +
    # post_attention_layernorm, the MLP's pre-norm (ffn: 4); no biases; norm; score:
    # 1 + 18 + 1 + 1 = 21. layer: embeddings, layer.0, layer.1, final_norm, head = 5.
    # module: 7. matrix: 1 + 18 + 1 + 1 = 21.
    "llama": Family(_llama, 21, 5, 7, 21, 1, {"layer.0.attention": 5, "layer.0.ffn": 4}),
}


@pytest.fixture(scope="module")
def states():
    """``state_dict()`` of each family's tiny classifier."""
    import torch
    import transformers

    transformers.logging.set_verbosity_error()
    torch.manual_seed(0)
    return {name: family.build(transformers).state_dict() for name, family in FAMILIES.items()}


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("group_by", ["layer", "module", "matrix"])
def test_group_counts_match_hand_counts(states, family, group_by):
    names = list(states[family])
    expected = FAMILIES[family]
    assert len(names) == expected.tensors
    groups = ParameterSpace(group_by=group_by).groups(names)
    assert len(groups) == getattr(expected, group_by), sorted(groups)
    if group_by == "module":
        sizes = {g: len(members) for g, members in groups.items()}
        assert {g: sizes[g] for g in expected.block_modules} == expected.block_modules


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_has_its_head_recognised(states, family):
    heads = [n for n in states[family] if is_head(n)]
    assert len(heads) == FAMILIES[family].head
    layer_groups = ParameterSpace(group_by="layer").groups(states[family])
    assert layer_groups["head"] == heads
    assert set(ParameterSpace("no-head").select(states[family])) == set(states[family]) - set(heads)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("group_by", ["layer", "module", "matrix"])
def test_tied_tensors_share_a_group(states, family, group_by):
    """One storage under several names (T5/BART's token table) must get one coefficient: the
    working model writes each name, and the last write would win."""
    by_storage: dict[int, set[str]] = {}
    for name, tensor in states[family].items():
        by_storage.setdefault(tensor.data_ptr(), set()).add(group_of(name, group_by))
    assert all(len(groups) == 1 for groups in by_storage.values())


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("group_by", ["layer", "module"])
def test_groups_do_not_depend_on_case(states, family, group_by):
    for name in states[family]:
        if is_head(name):
            continue
        group = group_of(name, group_by)
        assert group == group.lower()
        assert group_of(name.lower(), group_by) == group_of(name.upper(), group_by) == group


def test_encoder_and_decoder_blocks_stay_apart(states):
    groups = ParameterSpace(group_by="layer").groups(states["t5"])
    assert groups["layer.1"] == [n for n in states["t5"] if ".encoder.block.1." in n]
    assert groups["decoder.layer.1"] == [n for n in states["t5"] if ".decoder.block.1." in n]


@pytest.mark.parametrize(
    ("name", "module"),
    [
        # T5: each sub-layer's own pre-norm goes with it; the index says which sub-layer it is.
        ("transformer.encoder.block.1.layer.0.layer_norm.weight", "layer.1.attention"),
        ("transformer.encoder.block.1.layer.1.layer_norm.weight", "layer.1.ffn"),
        ("transformer.encoder.block.1.layer.1.DenseReluDense.wi.weight", "layer.1.ffn"),
        ("transformer.decoder.block.1.layer.0.SelfAttention.q.weight", "decoder.layer.1.attention"),
        (
            "transformer.decoder.block.1.layer.1.EncDecAttention.o.weight",
            "decoder.layer.1.cross_attention",
        ),
        (
            "transformer.decoder.block.1.layer.1.layer_norm.weight",
            "decoder.layer.1.cross_attention",
        ),
        ("transformer.decoder.block.1.layer.2.layer_norm.weight", "decoder.layer.1.ffn"),
        # BART: post-norms named after their sub-layer; final_layer_norm closes the FFN.
        ("model.decoder.layers.1.encoder_attn_layer_norm.bias", "decoder.layer.1.cross_attention"),
        ("model.decoder.layers.1.self_attn_layer_norm.bias", "decoder.layer.1.attention"),
        ("model.encoder.layers.1.final_layer_norm.bias", "layer.1.ffn"),
        # Pre-norm decoders: the norm before a sub-layer belongs to it.
        ("transformer.h.1.ln_1.weight", "layer.1.attention"),
        ("transformer.h.1.ln_2.weight", "layer.1.ffn"),
        ("model.layers.1.input_layernorm.weight", "layer.1.attention"),
        ("model.layers.1.post_attention_layernorm.weight", "layer.1.ffn"),
        ("distilbert.transformer.layer.1.sa_layer_norm.weight", "layer.1.attention"),
        ("distilbert.transformer.layer.1.output_layer_norm.weight", "layer.1.ffn"),
        # Outside the blocks.
        ("transformer.decoder.final_layer_norm.weight", "decoder.final_norm"),
        ("transformer.encoder.final_layer_norm.weight", "final_norm"),
        ("model.norm.weight", "final_norm"),
        ("transformer.ln_f.bias", "final_norm"),
        ("deberta.encoder.LayerNorm.weight", "rel_embeddings"),
        ("electra.embeddings_project.weight", "embeddings"),
        ("model.decoder.embed_positions.weight", "embeddings"),
    ],
)
def test_sub_layers_of_each_family(name, module):
    assert group_of(name, "module") == module


def test_qin_t5_base_division_counts():
    """Qin et al. (2022, App. B): T5-base (12 encoder + 12 decoder blocks, T5.1.1 gated FFN, the
    LM-adapted checkpoint) splits into M = 28 layer, 64 module and 282 matrix groups for
    fine-tuning; their code (thunlp/Mode-Connectivity-PLM, T5_model/
    modeling_t5_layer_weight_find_finetune.py) asserts 284 state-dict keys."""
    import transformers

    transformers.logging.set_verbosity_error()
    config = transformers.T5Config(
        d_model=8, d_kv=4, d_ff=16, num_heads=2, num_layers=12, num_decoder_layers=12,
        feed_forward_proj="gated-gelu", vocab_size=V,
    )  # fmt: skip
    names = list(transformers.T5ForConditionalGeneration(config).state_dict())
    assert len(names) == 284
    counts = {
        g: len(ParameterSpace(group_by=g).groups(names)) for g in ("layer", "module", "matrix")
    }
    assert counts == {"layer": 28, "module": 64, "matrix": 282}
