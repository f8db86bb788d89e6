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
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from pydantic import field_validator

from weightscape.errors import WeightscapeError, unknown_name_error
from weightscape.settings import Settings

# Prefixes of task-specific output heads in Hugging Face sequence classifiers.
HEAD_PATTERNS = (
    r"^classifier\.",
    r"^score\.",
    r"^pre_classifier\.",
    r"^qa_outputs\.",
    r"^lm_head\.",
    r"^cls\.",
)
PRESETS = ("all", "no-head", "biases", "tuned")
# A component of the names of tensors added by LoRA (peft) or by our bottleneck adapters.
_TUNED = re.compile(r"(?:^|\.)(?:lora_[^.]*|adapter)\.")
GROUPINGS = ("layer", "module", "matrix")
_LAYER = re.compile(r"(?:^|\.)(?:layer|layers|h|block|blocks)\.(\d+)\.")
_ATTENTION = re.compile(r"attention|attn|self_attn")
# Names under which Hugging Face task models nest their base model.
_BASE_PREFIXES = (
    "bert",
    "roberta",
    "distilbert",
    "deberta",
    "electra",
    "albert",
    "xlm_roberta",
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
        group_by: ``layer`` (one group per transformer layer, plus embeddings, pooler, head),
            ``module`` (attention and feed-forward blocks of each layer apart) or ``matrix`` (each
            weight matrix with its bias).
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
    """
    if group_by == "matrix":
        return name.rsplit(".", 1)[0] if "." in name else name
    if is_head(name):
        return "head"
    match = _LAYER.search(name)
    if match is None:
        parts = name.split(".")
        if len(parts) > 2 and parts[0] in _BASE_PREFIXES:
            parts = parts[1:]
        return parts[0]
    layer = f"layer.{match.group(1)}"
    if group_by == "layer":
        return layer
    rest = name[match.end() :]
    return f"{layer}.attention" if _ATTENTION.search(rest) else f"{layer}.ffn"
