"""Parameter spaces: which tensors take part in a combination, and how they group.

A point in weight space mixes only the tensors its parameter space selects; every other tensor is
copied from a reference anchor. Qin et al. (2022) interpolate everything but task-specific heads in
some settings and only the tuned parameters (adapters, biases) in others; their learned
combinations mix per layer, per module and per matrix. Those are the presets and groupings here.

The ``tuned`` preset is for models tuned with LoRA or bottleneck adapters: the tensors the method
added (names with a ``lora_`` or ``adapter`` component) plus the classification head, i.e. exactly
what such training changes. The head is included because it trains alongside the added modules:
without it, t=1 on a path would pair the second model's adapters with the first model's head. The
frozen base is left out: runs from one base share it bit for bit, so mixing it would be a no-op;
runs with different init noise differ in it, and then it comes from the reference anchor.

Groups follow Qin et al.'s division of T5 (App. B: 28 layer, 64 module and 282 matrix groups for
T5-base's 12 encoder and 12 decoder blocks), and hold for BERT-likes, DeBERTa, DistilBERT, BART
and decoder-only classifiers (GPT-2, Llama); tests/test_space_families.py counts them by hand.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from pydantic import field_validator

from weightscape.errors import WeightscapeError, unknown_name_error
from weightscape.settings import Settings

# Prefixes of task-specific output heads in Hugging Face task models: the modules the task class
# adds beside its base model (BERT, DeBERTa and DistilBERT `classifier`, RoBERTa and ELECTRA
# `classifier.dense`/`out_proj`, BART and T5 `classification_head`, GPT-2 and Llama `score`,
# DistilBERT `pre_classifier`, DeBERTa's top-level `pooler` (a ContextPooler drawn anew for the
# task, unlike BERT's pretrained `bert.pooler`), XLNet `sequence_summary` and `logits_proj`).
HEAD_PATTERNS = (
    r"^classifier\.",
    r"^classification_head\.",
    r"^score\.",
    r"^pre_classifier\.",
    r"^pooler\.",
    r"^sequence_summary\.",
    r"^logits_proj\.",
    r"^qa_outputs\.",
    r"^lm_head\.",
    r"^cls\.",
)
PRESETS = ("all", "no-head", "biases", "tuned")
# A component of the names of tensors added by LoRA (peft) or by our bottleneck adapters.
_TUNED = re.compile(r"(?:^|\.)(?:lora_[^.]*|adapter)\.")
GROUPINGS = ("layer", "module", "matrix")
# The repeated blocks of a stack: BERT-likes `encoder.layer.N`, DistilBERT `transformer.layer.N`,
# GPT-2 `h.N`, BART and Llama `layers.N`, T5 `block.N` (whose sub-layers are `layer.K`: the
# leftmost match is the block). Names are matched in lower case throughout (T5 `SelfAttention`).
_LAYER = re.compile(r"(?:^|\.)(?:layer|layers|h|block|blocks)\.(\d+)\.")
_DECODER = re.compile(r"(?:^|\.)decoder\.")
# Sub-layers of a block, first match wins. A norm goes with the residual branch it sits on:
# Llama's `post_attention_layernorm` is the pre-norm of the MLP, GPT-2 `ln_1`, Llama
# `input_layernorm` and DistilBERT `sa_layer_norm` belong to self-attention.
_ATTENTION = (
    ("cross_attention", re.compile(r"encdecattention|encoder_attn|crossattention|cross_attn")),
    ("ffn", re.compile(r"post_attention_layernorm")),
    (
        "attention",
        re.compile(r"attention|attn|sa_layer_norm|input_layernorm|(?:^|\.)ln_1\."),
    ),
)
# T5 `block.N.layer.K`: K is self-attention (0), then cross-attention (1, decoder only), then the
# feed-forward sub-layer; this places each sub-layer's own `layer_norm`.
_T5_SUBLAYER = re.compile(r"^layer\.(\d+)\.")
_T5_KINDS = {False: ("attention", "ffn"), True: ("attention", "cross_attention", "ffn")}
# Groups outside the blocks, first match wins, on the name without its base-model prefix.
# DeBERTa-v2's relative-position table and its norm (`encoder.rel_embeddings`,
# `encoder.LayerNorm`) serve every layer's attention. `embeddings` is every input-embedding tensor
# of every stack: in encoder-decoders `shared`, `encoder.embed_tokens` and `decoder.embed_tokens`
# are one tied tensor, which must get one coefficient. A final norm closes a stack.
_OUTSIDE = (
    ("rel_embeddings", re.compile(r"(?:^|\.)rel_embeddings\.|^encoder\.layernorm\.")),
    ("embeddings", re.compile(r"embed|(?:^|\.)(?:wte|wpe|shared)\.")),
    (
        "final_norm",
        re.compile(r"(?:^|\.)(?:final_layer_norm|layer_norm|layernorm|ln_f|norm)\.[^.]+$"),
    ),
)
# One token table under several names (tied): one matrix group, named without the stack.
_TOKEN_TABLE = re.compile(r"^((?:.*\.)?)(?:(?:encoder|decoder)\.embed_tokens|shared)$")
# Names under which Hugging Face task models nest their base model.
_BASE_PREFIXES = (
    "bert",
    "roberta",
    "distilbert",
    "deberta",
    "electra",
    "albert",
    "xlm_roberta",
    "longformer",
    "mpnet",
    "xlnet",
    "model",
    "transformer",
)


def is_head(name: str) -> bool:
    """Whether ``name`` belongs to a task-specific output head."""
    return any(re.search(p, name) for p in HEAD_PATTERNS)


def is_tuning_module(name: str) -> bool:
    """Whether ``name`` is a tensor added by LoRA or a bottleneck adapter.

    >>> is_tuning_module("bert.encoder.layer.0.attention.self.query.lora_A.default.weight")
    True
    >>> is_tuning_module("bert.encoder.layer.0.output.adapter.up.bias")
    True
    >>> is_tuning_module("bert.encoder.layer.0.attention.self.query.base_layer.weight")
    False
    """
    return _TUNED.search(name) is not None


class ParameterSpace(Settings):
    """A selection of tensors and a grouping of them.

    Attributes:
        preset: ``all`` tensors, ``no-head`` (all but the classification head), ``biases``, or
            ``tuned`` (tensors added by LoRA or adapters, plus the head).
        include: Regular expressions; when given, only names matching one of them take part.
        exclude: Regular expressions; names matching one of them never take part.
        group_by: ``layer`` (one group per transformer block, encoder and decoder blocks apart,
            plus embeddings, pooler, final norms, head), ``module`` (self-attention,
            cross-attention and feed-forward sub-layers of each block apart) or ``matrix`` (each
            weight matrix with its bias); see :func:`group_of`.
    """

    preset: str = "all"
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    group_by: str = "matrix"

    def __init__(self, preset: str = "all", **fields: object) -> None:
        super().__init__(preset=preset, **fields)  # ParameterSpace("no-head") reads naturally

    @field_validator("preset")
    @classmethod
    def _known_preset(cls, preset: str) -> str:
        if preset not in PRESETS:
            raise unknown_name_error("parameter space", preset, PRESETS)
        return preset

    @field_validator("group_by")
    @classmethod
    def _known_grouping(cls, group_by: str) -> str:
        if group_by not in GROUPINGS:
            raise unknown_name_error("grouping", group_by, GROUPINGS)
        return group_by

    @field_validator("include", "exclude")
    @classmethod
    def _patterns(cls, patterns: tuple[str, ...]) -> tuple[str, ...]:
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as err:
                raise WeightscapeError(
                    f"The parameter-space pattern '{pattern}' is not a valid regular expression "
                    f"({err})."
                ) from err
        return patterns

    def takes_part(self, name: str) -> bool:
        """Whether the tensor called ``name`` is mixed (True) or copied from the reference."""
        if self.preset == "no-head" and is_head(name):
            return False
        if self.preset == "biases" and not name.endswith("bias"):
            return False
        if self.preset == "tuned" and not (is_tuning_module(name) or is_head(name)):
            return False
        if self.include and not any(re.search(p, name) for p in self.include):
            return False
        return not any(re.search(p, name) for p in self.exclude)

    def select(self, names: Iterable[str]) -> list[str]:
        """The names that take part, in their given order; errors if none does."""
        names = list(names)
        chosen = [n for n in names if self.takes_part(n)]
        if self.preset == "tuned" and not any(map(is_tuning_module, chosen)):
            raise WeightscapeError(
                f"The parameter space {self.describe()} selects tensors added by LoRA or "
                f"adapters, and none of the model's {len(names)} tensors is one: the model was "
                "not tuned with --method lora or adapter. Choose the preset all, no-head or "
                "biases."
            )
        if not chosen:
            raise WeightscapeError(
                f"The parameter space {self.describe()} selects none of the model's "
                f"{len(names)} tensors. Loosen --include/--exclude or choose another preset."
            )
        return chosen

    def groups(self, names: Sequence[str]) -> dict[str, list[str]]:
        """Selected names grouped by ``group_by``, groups in first-seen order."""
        grouped: dict[str, list[str]] = {}
        for name in self.select(names):
            grouped.setdefault(group_of(name, self.group_by), []).append(name)
        return grouped

    def describe(self) -> str:
        """A short human-readable description, also used in store keys."""
        parts = [self.preset]
        parts += [f"+{p}" for p in self.include]
        parts += [f"-{p}" for p in self.exclude]
        return " ".join(parts)

    def spec(self) -> dict[str, object]:
        """A JSON-able description that identifies the selection (not the grouping)."""
        return {"preset": self.preset, "include": list(self.include), "exclude": list(self.exclude)}


def group_of(name: str, group_by: str) -> str:
    """The group a tensor belongs to under a grouping.

    ``layer``: one group per block (``layer.N``; a decoder's blocks in an encoder-decoder are
    ``decoder.layer.N``, so encoder and decoder block N stay apart), plus ``embeddings``,
    ``pooler``, ``rel_embeddings``, ``final_norm`` (``decoder.final_norm``) and ``head`` where a
    model has them. ``module``: each block split into ``attention``, ``cross_attention``
    (decoders) and ``ffn``, each with its own norm, as Qin et al. (2022, App. B) divide T5.
    ``matrix``: each weight with its bias, named by module path (a tied token table under one
    name). Layer and module groups are lower case and do not depend on the case of ``name``.

    >>> group_of("bert.encoder.layer.3.attention.self.query.weight", "layer")
    'layer.3'
    >>> group_of("bert.encoder.layer.3.attention.self.query.weight", "module")
    'layer.3.attention'
    >>> group_of("bert.encoder.layer.3.intermediate.dense.bias", "module")
    'layer.3.ffn'
    >>> group_of("bert.encoder.layer.3.intermediate.dense.bias", "matrix")
    'bert.encoder.layer.3.intermediate.dense'
    >>> group_of("classifier.weight", "layer")
    'head'
    >>> group_of("bert.pooler.dense.weight", "module")
    'pooler'
    >>> group_of("transformer.decoder.block.3.layer.1.EncDecAttention.q.weight", "module")
    'decoder.layer.3.cross_attention'
    >>> group_of("transformer.encoder.block.3.layer.0.layer_norm.weight", "module")
    'layer.3.attention'
    >>> group_of("transformer.decoder.embed_tokens.weight", "matrix")
    'transformer.embed_tokens'
    """
    if group_by == "matrix":
        module = name.rsplit(".", 1)[0] if "." in name else name
        table = _TOKEN_TABLE.match(module)
        return f"{table.group(1)}embed_tokens" if table else module
    if is_head(name):
        return "head"
    lower = name.lower()
    match = _LAYER.search(lower)
    if match is None:
        return _outside_blocks(lower)
    decoder = _DECODER.search(lower[: match.start() + 1]) is not None
    layer = f"{'decoder.' if decoder else ''}layer.{match.group(1)}"
    if group_by == "layer":
        return layer
    return f"{layer}.{_sublayer(lower[match.end() :], decoder)}"


def _sublayer(rest: str, decoder: bool) -> str:
    """``attention``, ``cross_attention`` or ``ffn`` for the lower-case name inside a block."""
    for kind, pattern in _ATTENTION:
        if pattern.search(rest):
            return kind
    t5 = _T5_SUBLAYER.match(rest)
    if t5 is not None:
        kinds = _T5_KINDS[decoder]
        return kinds[min(int(t5.group(1)), len(kinds) - 1)]
    return "ffn"


def _outside_blocks(lower: str) -> str:
    """The group of a lower-case name outside every block and head."""
    parts = lower.split(".")
    if len(parts) > 2 and parts[0] in _BASE_PREFIXES:
        parts = parts[1:]
    path = ".".join(parts)
    stack = "decoder." if parts[0] == "decoder" and len(parts) > 2 else ""
    for group, pattern in _OUTSIDE:
        if pattern.search(path):
            return group if group == "embeddings" else f"{stack}{group}"
    return parts[0]
