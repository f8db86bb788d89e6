"""How a tuned checkpoint's extra modules are built: the ``weightscape_tuning.json`` sidecar.

A model tuned with LoRA or bottleneck adapters is saved whole: the frozen base weights, the added
tensors and the head, in one ``model.safetensors`` beside ``config.json``. ``config.json`` alone
rebuilds only the plain model, so a sidecar says how to wrap it::

    {"method": "lora", "r": 8, "alpha": 16.0, "dropout": 0.0, "target_modules": ["query", "value"]}
    {"method": "adapter", "bottleneck": 64, "nonlinearity": "gelu"}

Training and :func:`~weightscape.models.architecture.build_model` both wrap a model with
:func:`apply_tuning`, so the trained model's state-dict names and the working model's are the same
by construction. The wrapped model stays the plain Hugging Face model, mutated in place (peft's
``inject_adapter_in_model``, not a ``PeftModel``): its tensor names carry no
``base_model.model.`` prefix, so heads are still ``classifier.*``. LoRA names follow peft with its
default adapter name: ``...query.base_layer.weight``, ``...query.lora_A.default.weight``,
``...query.lora_B.default.weight``. Adapter names are ``...attention.output.adapter.down.weight``
and the like (:mod:`weightscape.models.adapters`); base tensors keep their names.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from weightscape.errors import WeightscapeError

if TYPE_CHECKING:
    import torch

SIDECAR = "weightscape_tuning.json"
LORA_ADAPTER_NAME = "default"  # peft's default; part of every LoRA tensor name


@dataclass(frozen=True)
class LoraSpec:
    """LoRA (Hu et al., 2022) through peft: ``W x + (alpha / r) B A x`` on the target modules."""

    r: int = 8
    alpha: float = 16.0
    dropout: float = 0.0
    target_modules: tuple[str, ...] = ("query", "value")
    method: str = "lora"


@dataclass(frozen=True)
class AdapterSpec:
    """Bottleneck adapters (Houlsby et al., 2019) after attention and feed-forward outputs."""

    bottleneck: int = 64
    nonlinearity: str = "gelu"
    method: str = "adapter"


TuningSpec = LoraSpec | AdapterSpec
_SPECS: dict[str, type] = {"lora": LoraSpec, "adapter": AdapterSpec}


def spec_to_json(spec: TuningSpec) -> dict[str, Any]:
    """The sidecar's content for ``spec``, ``method`` first."""
    fields = asdict(spec)
    method = fields.pop("method")
    if "target_modules" in fields:
        fields["target_modules"] = list(fields["target_modules"])
    return {"method": method, **fields}


def spec_from_json(data: Any, source: str = "the tuning sidecar") -> TuningSpec:
    """Parse a sidecar's content; every problem is reported together."""
    if not isinstance(data, dict) or data.get("method") not in _SPECS:
        method = data.get("method") if isinstance(data, dict) else None
        raise WeightscapeError(
            f"{source} must be a JSON object with 'method' one of {', '.join(_SPECS)}. "
            f"Got method {method!r}."
        )
    cls = _SPECS[data["method"]]
    fields = {k: v for k, v in data.items() if k != "method"}
    known = set(cls.__dataclass_fields__) - {"method"}
    problems = [f"unknown key '{k}'" for k in fields if k not in known]
    if "target_modules" in fields:
        fields["target_modules"] = tuple(fields["target_modules"] or ())
    spec = cls(**{k: v for k, v in fields.items() if k in known})
    problems += _problems(spec)
    if problems:
        raise WeightscapeError(f"{source} is invalid: {'; '.join(problems)}.")
    return spec


def _problems(spec: TuningSpec) -> list[str]:
    if isinstance(spec, LoraSpec):
        checks = [
            (isinstance(spec.r, int) and spec.r >= 1, f"'r' must be an int >= 1, got {spec.r!r}"),
            (_number(spec.alpha) and spec.alpha > 0, f"'alpha' must be > 0, got {spec.alpha!r}"),
            (
                _number(spec.dropout) and 0 <= spec.dropout < 1,
                f"'dropout' must lie in [0, 1), got {spec.dropout!r}",
            ),
            (
                bool(spec.target_modules) and all(isinstance(m, str) for m in spec.target_modules),
                "'target_modules' must be a non-empty list of module names",
            ),
        ]
    else:
        checks = [
            (
                isinstance(spec.bottleneck, int) and spec.bottleneck >= 1,
                f"'bottleneck' must be an int >= 1, got {spec.bottleneck!r}",
            )
        ]
    return [message for ok, message in checks if not ok]


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def read_tuning_spec(folder: str | Path) -> TuningSpec | None:
    """The spec in ``folder``'s sidecar, or None for a plainly finetuned model."""
    path = Path(folder) / SIDECAR
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise WeightscapeError(f"Cannot read the tuning sidecar '{path}': {err}") from err
    return spec_from_json(data, source=f"The tuning sidecar '{path}'")


def write_tuning_spec(folder: str | Path, spec: TuningSpec) -> Path:
    """Write ``spec`` as ``folder``'s sidecar; returns its path."""
    path = Path(folder) / SIDECAR
    path.write_text(json.dumps(spec_to_json(spec), indent=1) + "\n")
    return path


def apply_tuning(model: torch.nn.Module, spec: TuningSpec) -> torch.nn.Module:
    """Add the spec's modules to ``model`` in place (newly initialised) and return it.

    Raises:
        WeightscapeError: If the model has none of the modules the spec targets.
    """
    if isinstance(spec, AdapterSpec):
        from weightscape.models.adapters import insert_adapters

        insert_adapters(model, spec.bottleneck, spec.nonlinearity)
        return model
    from peft import LoraConfig, inject_adapter_in_model

    config = LoraConfig(
        r=spec.r,
        lora_alpha=spec.alpha,
        lora_dropout=spec.dropout,
        target_modules=list(spec.target_modules),
        bias="none",
    )
    try:
        return inject_adapter_in_model(config, model, adapter_name=LORA_ADAPTER_NAME)
    except ValueError as err:
        raise WeightscapeError(
            f"Cannot add LoRA to {type(model).__name__} with target modules "
            f"{list(spec.target_modules)}: {err}"
        ) from err
