"""Standard peft LoRA adapter folders as anchors, and as what a LoRA point is written back to.

A peft folder (``adapter_config.json`` + ``adapter_model.safetensors``, as
``PeftModel.save_pretrained`` writes it) holds only the LoRA matrices and the head peft saved
through ``modules_to_save``; the frozen weights live in a base model folder. weightscape presents
the pair as ONE checkpoint whose tensors carry the names of its own LoRA working model (peft's
``inject_adapter_in_model``, :mod:`weightscape.models.tuning.lora`), so the engine, the ``tuned``
parameter space and the store treat it exactly as a LoRA checkpoint weightscape trained itself:

- base tensor ``X.weight`` of a module LoRA wraps is served as ``X.base_layer.weight`` (every
  other base tensor under its own name; a bare encoder's names gain the task model's prefix,
  ``bert.``, read off the adapter's names);
- adapter tensor ``base_model.model.X.lora_A.weight`` is served as ``X.lora_A.default.weight``;
- a head saved by ``modules_to_save`` (``base_model.model.classifier.weight``) replaces the base's.

The LoRA spec (``r``, ``alpha``, ``dropout``, ``target_modules``) comes from
``adapter_config.json``; configurations weightscape does not rebuild exactly (DoRA, rsLoRA, LoRA
biases, per-layer ranks, ...) are refused naming the field. The architecture is the adapter
folder's own ``config.json`` when it has one (weightscape's LoRA runs write the task's labels
there), else the base's.

**What a point is.** Points mix LoRA ``A`` and ``B`` (and the head) as saved, each matrix with the
point's coefficients: the midpoint of two adapters applies ``(B1 + B2)/2 (A1 + A2)/2``, which is
NOT the mix of their low-rank deltas ``(B1 A1 + B2 A2)/2``. t = 0 and t = 1 are exact (the
anchors' own tensors, copied).

**The base is never guessed.** It is the one given (a zoo entry's ``adapter_base:``, a manifest's
``adapter_base:``, ``Checkpoint.from_path(adapter_base=...)``), else ``base_model_name_or_path``
from ``adapter_config.json`` when that is an existing local folder; otherwise loading fails with
an error that says how to give it: a wrong base would give silently wrong numbers.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from weightscape.errors import WeightscapeError
from weightscape.models.tuning.base import TuningSpec
from weightscape.models.tuning.lora import LORA_ADAPTER_NAME, LoraSpec
from weightscape.models.tuning_spec import read_tuning_spec

if TYPE_CHECKING:
    import torch

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")
PEFT_PREFIX = "base_model.model."
# Settings that change what a LoRA layer computes and that weightscape's LoRA does not rebuild:
# each must be off (false, null, empty) in adapter_config.json.
UNSUPPORTED = (
    "use_dora",
    "use_rslora",
    "lora_bias",
    "fan_in_fan_out",
    "rank_pattern",
    "alpha_pattern",
    "layers_to_transform",
    "layers_pattern",
    "exclude_modules",
    "layer_replication",
    "target_parameters",
    "trainable_token_indices",
    "alora_invocation_tokens",
    "use_qalora",
    "use_bdlora",
    "arrow_config",
    "kasa_config",
    "monteclora_config",
    "velora_config",
    "megatron_config",
)
TASK_TYPES = (None, "SEQ_CLS")
# ``...lora_A.weight`` (peft's saved name) <-> ``...lora_A.default.weight`` (the working model's).
_LORA_PART = re.compile(r"(?:^|\.)(lora_(?:embedding_)?[AB])(?=\.|$)")
_LORA_PART_NAMED = re.compile(
    rf"(?:^|\.)(lora_(?:embedding_)?[AB])\.{re.escape(LORA_ADAPTER_NAME)}(?=\.|$)"
)


def is_adapter_folder(path: str | Path) -> bool:
    """Whether ``path`` is a peft adapter folder (it holds ``adapter_config.json``)."""
    return Path(path).is_dir() and (Path(path) / ADAPTER_CONFIG).is_file()


def read_adapter_config(folder: str | Path) -> dict[str, Any]:
    """``folder``'s ``adapter_config.json``, checked to be a LoRA weightscape rebuilds exactly.

    Raises:
        WeightscapeError: Naming the folder and the field: an unreadable file, a peft type other
            than LORA, or a setting weightscape does not support (DoRA, rsLoRA, ``bias`` other
            than ``none``, per-layer ranks, ...).
    """
    path = Path(folder) / ADAPTER_CONFIG
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise WeightscapeError(f"Cannot read the peft adapter config '{path}': {err}") from err
    if not isinstance(config, dict):
        raise WeightscapeError(f"The peft adapter config '{path}' is not a JSON object.")
    problems = []
    if config.get("peft_type") != "LORA":
        problems.append(f"peft_type is {config.get('peft_type')!r} (only LORA is supported)")
    if config.get("bias", "none") != "none":
        problems.append(f"bias is {config.get('bias')!r} (only 'none' is supported)")
    if config.get("task_type") not in TASK_TYPES:
        problems.append(f"task_type is {config.get('task_type')!r} (SEQ_CLS or null)")
    target = config.get("target_modules")
    if not isinstance(target, list) or not target:
        problems.append(f"target_modules is {target!r} (a list of module names is supported)")
    problems += [
        f"{key} is {config[key]!r} (not supported: it must be off)"
        for key in UNSUPPORTED
        if config.get(key)
    ]
    if problems:
        raise WeightscapeError(
            f"The peft adapter '{folder}' cannot be an anchor: {'; '.join(problems)}. weightscape "
            "reads plain LoRA adapters; merge this one into a full model with peft first "
            "(merge_and_unload, then save_pretrained)."
        )
    return config


def lora_spec(folder: str | Path) -> LoraSpec:
    """The LoRA spec that rebuilds the working model of the adapter in ``folder``."""
    config = read_adapter_config(folder)
    try:
        return LoraSpec(
            r=config["r"],
            alpha=config["lora_alpha"],
            dropout=config.get("lora_dropout", 0.0),
            target_modules=tuple(config["target_modules"]),
        )
    except (KeyError, ValueError) as err:
        raise WeightscapeError(
            f"The peft adapter config '{Path(folder) / ADAPTER_CONFIG}' has no valid r, "
            f"lora_alpha or lora_dropout: {err}"
        ) from None


def adapter_weights(folder: str | Path) -> Path:
    """The adapter's weight file (``adapter_model.safetensors``, else ``adapter_model.bin``)."""
    for name in ADAPTER_WEIGHTS:
        if (Path(folder) / name).is_file():
            return Path(folder) / name
    raise WeightscapeError(
        f"The peft adapter folder '{folder}' holds no weights: expected {ADAPTER_WEIGHTS[0]}."
    )


def resolve_adapter_base(folder: str | Path, given: str | Path | None = None) -> Path:
    """The base model folder the adapter in ``folder`` applies to.

    ``given`` wins; else ``base_model_name_or_path`` from ``adapter_config.json`` when it is an
    existing local folder (resolved as peft resolves it: from the current directory).

    Raises:
        WeightscapeError: When neither names an existing folder (a hub id is never downloaded).
    """
    named = read_adapter_config(folder).get("base_model_name_or_path")  # checked either way
    if given is not None:
        base = Path(given).expanduser()
        if not base.is_dir():
            raise WeightscapeError(
                f"The adapter base '{given}' given for the peft adapter '{folder}' is not a "
                "folder. Give the folder of the model the adapter was trained on."
            )
        return base
    if named and Path(named).expanduser().is_dir():
        return Path(named).expanduser()
    raise WeightscapeError(
        f"The peft adapter '{folder}' needs its base model, and base_model_name_or_path in its "
        f"{ADAPTER_CONFIG} ({named!r}) is not a local folder. Give the base model's folder: "
        "'adapter_base:' in the zoo entry (or at the top of the zoo file), --adapter-base on "
        "the command line, or adapter_base= in Python. weightscape never guesses a base: a "
        "wrong one gives silently wrong numbers."
    )


def working_name(saved: str) -> str:
    """The working model's name for a tensor saved in a peft adapter file.

    >>> working_name("base_model.model.bert.encoder.layer.0.attention.self.query.lora_A.weight")
    'bert.encoder.layer.0.attention.self.query.lora_A.default.weight'
    >>> working_name("base_model.model.classifier.bias")
    'classifier.bias'
    """
    name = saved.removeprefix(PEFT_PREFIX)
    return _LORA_PART.sub(lambda m: m.group(0) + f".{LORA_ADAPTER_NAME}", name)


def saved_name(working: str) -> str:
    """The name peft saves a working model's LoRA or head tensor under (:func:`working_name`'s
    inverse).

    >>> saved_name("bert.encoder.layer.0.attention.self.query.lora_B.default.weight")
    'base_model.model.bert.encoder.layer.0.attention.self.query.lora_B.weight'
    """
    name = _LORA_PART_NAMED.sub(lambda m: m.group(0).rsplit(".", 1)[0], working)
    return PEFT_PREFIX + name


def presented_names(adapter_keys: list[str], base_keys: list[str]) -> dict[str, str]:
    """Working-model name -> stored name, for a base's and an adapter's tensors read as one
    checkpoint (names in the module docstring). A head the adapter saved hides the base's."""
    adapter = {working_name(k): k for k in adapter_keys}
    wrapped = {_module_of(n) for n in adapter if _LORA_PART_NAMED.search(n)}
    prefix = _base_prefix(wrapped, set(base_keys))
    names: dict[str, str] = {}
    for stored in base_keys:
        name = prefix + stored
        module, _, leaf = name.rpartition(".")
        if module in wrapped:
            name = f"{module}.base_layer.{leaf}"
        names[name] = stored
    names.update(adapter)
    return names


def _module_of(lora_name: str) -> str:
    """``X`` of ``X.lora_A.default.weight``."""
    return lora_name[: _LORA_PART_NAMED.search(lora_name).start()]


def _base_prefix(wrapped: set[str], base_keys: set[str]) -> str:
    """``""`` when the base's names are the task model's; ``bert.`` (say) for a bare encoder
    saved without its task model's prefix, read off a module the adapter wraps."""
    for module in sorted(wrapped):
        if f"{module}.weight" in base_keys:
            return ""
        head, _, rest = module.partition(".")
        if rest and f"{rest}.weight" in base_keys:
            return f"{head}."
    return ""


def working_to_plain(name: str) -> str | None:
    """The plain (unwrapped) model's name for a working-model tensor; None for LoRA tensors.

    >>> working_to_plain("bert.encoder.layer.0.attention.self.query.base_layer.weight")
    'bert.encoder.layer.0.attention.self.query.weight'
    >>> working_to_plain("bert.encoder.layer.0.attention.self.query.lora_A.default.weight") is None
    True
    """
    if _LORA_PART_NAMED.search(name):
        return None
    return name.replace(".base_layer.", ".")


def plain_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A LoRA working model's weights without its LoRA matrices, under the plain model's names
    (the model LoRA wraps: its frozen base and its head)."""
    return {
        plain: tensor.detach().clone().contiguous()
        for name, tensor in model.state_dict().items()
        if (plain := working_to_plain(name)) is not None
    }


def save_adapter(
    model: torch.nn.Module, spec: LoraSpec, folder: str | Path, base: str | Path
) -> None:
    """Save a LoRA working model as a standard peft adapter folder over ``base``.

    ``adapter_config.json`` is written by peft's own ``LoraConfig`` (the head modules in
    ``modules_to_save``); ``adapter_model.safetensors`` holds the LoRA matrices and the head under
    peft's names; ``config.json`` is the task model's (its labels), for the engine. With a
    ``config.json`` and no ``model.safetensors``, transformers' ``from_pretrained`` on the folder
    fails loudly instead of building a model with random weights.
    """
    from peft import LoraConfig
    from safetensors.torch import save_file

    from weightscape.models.space import is_head

    folder = Path(folder)
    heads = sorted({name.split(".")[0] for name in model.state_dict() if is_head(name)})
    config = LoraConfig(
        r=spec.r,
        lora_alpha=spec.alpha,
        lora_dropout=spec.dropout,
        target_modules=list(spec.target_modules),
        bias="none",
        task_type="SEQ_CLS",
        modules_to_save=heads or None,
        base_model_name_or_path=str(Path(base).resolve()),
        inference_mode=True,
    )
    folder.mkdir(parents=True, exist_ok=True)
    config.save_pretrained(str(folder))
    # peft writes target_modules from a set, in an order that changes between processes; the
    # spec's order keeps the file's bytes (its fingerprint) and the spec read back the same.
    written = json.loads((folder / ADAPTER_CONFIG).read_text())
    written["target_modules"] = list(spec.target_modules)
    (folder / ADAPTER_CONFIG).write_text(json.dumps(written, indent=2, sort_keys=True) + "\n")
    save_file(adapter_state(model), str(folder / ADAPTER_WEIGHTS[0]), metadata={"format": "pt"})
    model.config.architectures = [type(model).__name__]
    model.config.save_pretrained(str(folder))


def merged_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The plain model's state dict with every LoRA layer merged: ``W + (alpha/r) B A``.

    The delta is peft's own (``get_delta_weight``), computed in the weights' dtype; the result
    loads into the plain Hugging Face model with no missing or unexpected keys.
    """
    import torch

    deltas = {}
    for module_name, module in model.named_modules():
        if hasattr(module, "get_delta_weight") and LORA_ADAPTER_NAME in getattr(
            module, "lora_A", {}
        ):
            deltas[f"{module_name}.base_layer.weight"] = module.get_delta_weight(LORA_ADAPTER_NAME)
    with torch.no_grad():
        return {
            plain: (tensor + deltas[name] if name in deltas else tensor).detach().contiguous()
            for name, tensor in model.state_dict().items()
            if (plain := working_to_plain(name)) is not None
        }


def tuning_spec_of(checkpoint: Any) -> TuningSpec | None:
    """How the working model of ``checkpoint`` is wrapped: a peft adapter's LoRA (from its
    ``adapter_config.json``), else the tuning sidecar beside its config (None: not wrapped)."""
    if checkpoint.adapter_base is not None:
        return lora_spec(checkpoint.path)
    return read_tuning_spec(checkpoint.config_dir())


def adapter_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A LoRA working model's adapter as peft saves it: the LoRA matrices and the head, under
    peft's names (:func:`saved_name`)."""
    from weightscape.models.space import is_head

    return {
        saved_name(name): tensor.detach().clone().contiguous()
        for name, tensor in model.state_dict().items()
        if _LORA_PART_NAMED.search(name) or is_head(name)
    }


def adapter_config_for(reference: Any, heads: list[str]) -> dict[str, Any]:
    """The ``adapter_config.json`` of an adapter exported from a point whose reference anchor is
    the peft folder ``reference``: its own, with its base named by absolute path and the head
    modules (``heads``, top-level module names) in ``modules_to_save``."""
    config = dict(read_adapter_config(reference.path))
    config["base_model_name_or_path"] = str(Path(reference.adapter_base).resolve())
    config["modules_to_save"] = sorted(set(config.get("modules_to_save") or ()) | set(heads))
    config["inference_mode"] = True
    return config
