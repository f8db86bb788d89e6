"""How a tuned checkpoint's extra modules are built: the ``weightscape_tuning.json`` sidecar.

A model tuned with bottleneck adapters (and a LoRA model before weightscape saved LoRA runs as
standard peft adapter folders, :mod:`weightscape.models.peft_anchor`) is saved whole: the frozen
base weights, the added tensors and the head, in one ``model.safetensors`` beside
``config.json``. ``config.json`` alone rebuilds only the plain model, so a sidecar holds the
method's spec (:mod:`weightscape.models.tuning`) and says how to wrap it::

    {"method": "lora", "r": 8, "alpha": 16.0, "dropout": 0.0, "target_modules": ["query", "value"]}
    {"method": "adapter", "bottleneck": 64, "nonlinearity": "gelu"}

Training and :func:`~weightscape.models.architecture.build_model` both wrap a model with
:func:`apply_tuning` (the spec's ``add_modules``), so the trained model's state-dict names and the
working model's are the same by construction. Methods that add nothing (full, BitFit) write no
sidecar. The sidecar's bytes are part of a checkpoint's fingerprint, so their format is fixed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from weightscape.errors import WeightscapeError
from weightscape.models.tuning import SPECS, TuningSpec
from weightscape.models.tuning.adapter import AdapterSpec
from weightscape.models.tuning.lora import LORA_ADAPTER_NAME, LoraSpec
from weightscape.outputs import write_text
from weightscape.settings import problem_lines

if TYPE_CHECKING:
    import torch

__all__ = [
    "LORA_ADAPTER_NAME",
    "SIDECAR",
    "AdapterSpec",
    "LoraSpec",
    "TuningSpec",
    "apply_tuning",
    "read_tuning_spec",
    "spec_from_json",
    "spec_to_json",
    "write_tuning_spec",
]

SIDECAR = "weightscape_tuning.json"


def _sidecar_methods() -> list[str]:
    return [method for method, spec in SPECS.items() if spec.adds_modules()]


def spec_to_json(spec: TuningSpec) -> dict[str, Any]:
    """The sidecar's content for ``spec``, ``method`` first; start options (an init scheme) only
    where they differ from their default, so default sidecars keep their earlier bytes."""
    options = spec.options()
    fields = type(spec).model_fields
    for name in spec.start_options:
        if getattr(spec, name) == fields[name].default:
            del options[name]
    return {"method": spec.method, **options}


def spec_from_json(data: Any, source: str = "the tuning sidecar") -> TuningSpec:
    """Parse a sidecar's content; every problem is reported together."""
    methods = _sidecar_methods()
    if not isinstance(data, dict) or data.get("method") not in methods:
        method = data.get("method") if isinstance(data, dict) else None
        raise WeightscapeError(
            f"{source} must be a JSON object with 'method' one of {', '.join(methods)}. "
            f"Got method {method!r}."
        )
    try:
        return SPECS[data["method"]].model_validate(data)
    except ValidationError as err:
        raise WeightscapeError(f"{source} is invalid: {' '.join(problem_lines(err))}") from None


def read_tuning_spec(folder: str | Path) -> TuningSpec | None:
    """The spec in ``folder``'s sidecar, the LoRA of a peft adapter folder
    (``adapter_config.json``, :mod:`weightscape.models.peft_anchor`), or None for a model built
    without added modules."""
    from weightscape.models.peft_anchor import is_adapter_folder, lora_spec

    path = Path(folder) / SIDECAR
    if not path.is_file():
        return lora_spec(folder) if is_adapter_folder(folder) else None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise WeightscapeError(f"Cannot read the tuning sidecar '{path}': {err}") from err
    return spec_from_json(data, source=f"The tuning sidecar '{path}'")


def write_tuning_spec(folder: str | Path, spec: TuningSpec) -> Path:
    """Write ``spec`` as ``folder``'s sidecar; returns its path."""
    path = Path(folder) / SIDECAR
    write_text(path, json.dumps(spec_to_json(spec), indent=1) + "\n")
    return path


def apply_tuning(model: torch.nn.Module, spec: TuningSpec) -> torch.nn.Module:
    """Add the spec's modules to ``model`` in place (newly initialised) and return it.

    Raises:
        WeightscapeError: If the model has none of the modules the spec targets.
    """
    return spec.add_modules(model)
