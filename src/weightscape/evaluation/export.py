"""Save a combination of anchors as a checkpoint on disk: the one place a point becomes a model.

Every other component evaluates points in the working model without writing them out. Some
studies need a point as a model of its own: Gueta et al. (2023, §7) finetune from the centroid of
models trained on other datasets. :func:`save_combination` writes sum_i c_i * theta_i with the
same :class:`~weightscape.evaluation.working_model.WorkingModel` the engine uses, so a saved point
holds exactly the weights the engine evaluates for those coefficients.

The export is a Hugging Face model directory (``model.safetensors``, ``config.json``, the
reference's tokenizer files and tuning sidecar) plus ``weightscape_combination.json``, which
records what it holds: the anchors' content hashes, the coefficients, the parameter space, the
reference and the weights' dtype. The provenance file is written last and the folder is moved
into place whole, so a folder with it is a finished export; asking again for the same combination
reuses it.

A point of LoRA anchors (peft adapter folders, weightscape's LoRA runs) is written in one of two
``format``s: ``model`` merges each LoRA layer into its base weight (``W + (alpha/r) B A``, peft's
own delta) and saves the plain model, which ``from_pretrained`` loads with no missing or
unexpected keys; ``peft`` saves the point's LoRA matrices and head as a peft adapter folder over
the reference anchor's base (``adapter_config.json`` + ``adapter_model.safetensors``), which
``PeftModel.from_pretrained`` loads. A peft export holds exactly the engine's tensors; a merged one
differs from the engine's LoRA forward by float rounding only (~1e-6 on logits).
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from weightscape.errors import WeightscapeError
from weightscape.evaluation.engine import tokenizer_dir
from weightscape.evaluation.grouped import GroupedPoint
from weightscape.evaluation.working_model import WorkingModel, resolve_device, working_dtype
from weightscape.models.aliases import classifier_anchor
from weightscape.models.architecture import checkpoint_architectures, lm_objective
from weightscape.models.checkpoint import Checkpoint
from weightscape.models.fingerprint import TOKENIZER_FILES
from weightscape.models.peft_anchor import ADAPTER_CONFIG, tuning_spec_of
from weightscape.models.space import ParameterSpace, is_head
from weightscape.models.tuning.lora import LoraSpec
from weightscape.models.tuning_spec import SIDECAR
from weightscape.outputs import write_text

PROVENANCE = "weightscape_combination.json"
FORMATS = ("model", "peft")


def save_combination(
    anchors: Sequence[Checkpoint],
    coefficients: Sequence[float] | GroupedPoint,
    out_dir: str | Path,
    *,
    space: ParameterSpace | None = None,
    reference: int = 0,
    ignore_heads: bool = False,
    device: str = "cpu",
    tokenizer: str | Path | None = None,
    dtype: str = "float32",
    format: str = "model",
) -> Checkpoint:
    """Write sum_i c_i * anchor_i as a model directory ``out_dir`` and return it as a checkpoint.

    The centroid of n models is ``coefficients = [1/n] * n``. Tensors outside ``space`` (and,
    with ``ignore_heads``, the classification head) come from ``anchors[reference]``, as does the
    config, so the export has the reference's architecture and label count.

    Args:
        anchors: The checkpoints to combine, all of one architecture.
        coefficients: One weight per anchor, or a :class:`GroupedPoint` (one vector per
            parameter group: a learned per-layer mix).
        out_dir: The model directory to create. If it holds a finished export of the same
            combination (same anchors' content, coefficients, space, reference), it is reused.
        space: Which tensors are mixed (default: all).
        reference: Index of the anchor that supplies the config and every unmixed tensor.
        ignore_heads: Take the head from the reference and do not check its shape, so that models
            finetuned on datasets with other label counts can be averaged.
        device: Where the combination is computed (``auto``, ``cpu``, ``cuda``, ...).
        tokenizer: Folder of the tokenizer files to copy (default: the reference's).
        dtype: The dtype of the saved weights, as in evaluation (``--dtype``): float32,
            bfloat16, float16, or ``anchors`` (theirs, when they agree). The mix is computed
            in float32 and cast once, exactly as the engine evaluates it.
        format: ``model`` (a Hugging Face model folder; LoRA layers merged) or ``peft`` (a peft
            adapter folder; LoRA anchors that are peft adapter folders only).

    Raises:
        WeightscapeError: On a bad coefficient vector or reference, anchors that do not match
            (heads of other label counts included, unless ``ignore_heads``), or an ``out_dir``
            that holds something else.
    """
    space = space or ParameterSpace()
    _check_inputs(anchors, coefficients, reference)
    out_dir = Path(out_dir)
    torch_dtype = working_dtype(dtype, anchors)
    wanted = _provenance(anchors, coefficients, space, reference, ignore_heads)
    wanted["dtype"] = str(torch_dtype).removeprefix("torch.")
    if _check_format(format, anchors[reference]) != "model":
        wanted["format"] = format
    if out_dir.exists():
        if _identity(read_provenance(out_dir)) == _identity(wanted):
            return _exported(out_dir, anchors[reference], format)
        raise WeightscapeError(
            f"'{out_dir}' already exists and holds no export of this combination "
            f"({len(anchors)} anchors, coefficients {wanted['coefficients']}). Use another "
            "folder or delete it."
        )
    partial = out_dir.with_name(f".{out_dir.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)  # left by a process killed mid-export
    plain = _write_model(
        anchors, coefficients, partial, space, reference, ignore_heads, device, torch_dtype, format
    )
    source = Path(tokenizer) if tokenizer is not None else tokenizer_dir(anchors[reference])
    copies = [(source, name) for name in TOKENIZER_FILES]
    if not plain:
        copies.append((anchors[reference].config_dir(), SIDECAR))  # how to rebuild adapters
    for folder, name in copies:
        if (folder / name).is_file():
            shutil.copy(folder / name, partial / name)
    write_text((partial / PROVENANCE), json.dumps(wanted, indent=1))
    partial.replace(out_dir)
    return _exported(out_dir, anchors[reference], format)


def _exported(out_dir: Path, reference: Checkpoint, format: str) -> Checkpoint:
    base = reference.adapter_base if format == "peft" else None
    return Checkpoint.from_path(out_dir, name=out_dir.name, adapter_base=base)


def _check_format(format: str, reference: Checkpoint) -> str:
    if format not in FORMATS:
        raise WeightscapeError(
            f"The 'format' parameter of save_combination must be one of {', '.join(FORMATS)}. "
            f"Got {format!r} instead."
        )
    if format == "peft" and reference.adapter_base is None:
        raise WeightscapeError(
            f"A peft export needs LoRA anchors that are peft adapter folders; the reference "
            f"anchor '{reference.name}' ({reference.path}) is not one (no adapter_config.json). "
            "Export it as a model (format 'model')."
        )
    return format


def read_provenance(folder: str | Path) -> dict[str, Any] | None:
    """What an export in ``folder`` holds (its ``weightscape_combination.json``), or None."""
    path = Path(folder) / PROVENANCE
    if not path.is_file() or not any(
        (Path(folder) / name).is_file() for name in ("config.json", ADAPTER_CONFIG)
    ):
        return None
    return json.loads(path.read_text())


def _check_inputs(anchors: Sequence[Checkpoint], coefficients, reference: int):
    if not anchors:
        raise WeightscapeError("save_combination needs at least one anchor checkpoint.")
    grouped = isinstance(coefficients, GroupedPoint)
    vectors = [v for _, v in coefficients.coefficients] if grouped else [coefficients]
    if any(len(v) != len(anchors) or not all(math.isfinite(c) for c in v) for v in vectors):
        raise WeightscapeError(
            f"The 'coefficients' parameter of save_combination must be {len(anchors)} finite "
            f"numbers, one per anchor. Got {_coefficients_json(coefficients)!r} instead."
        )
    if not 0 <= reference < len(anchors):
        raise WeightscapeError(
            f"The 'reference' parameter of save_combination must lie in [0, {len(anchors)}). "
            f"Got {reference} instead."
        )


def _provenance(anchors, coefficients, space, reference, ignore_heads) -> dict[str, Any]:
    """What identifies an export (JSON round-tripped, so it compares equal to a read-back)."""
    spec = {
        "names": [a.name for a in anchors],
        "hashes": [a.content_hash() for a in anchors],
        "coefficients": _coefficients_json(coefficients),
        "space": space.spec(),
        "reference": anchors[reference].content_hash(),
        "ignore_heads": bool(ignore_heads),
    }
    return json.loads(json.dumps(spec))


def _coefficients_json(coefficients) -> list[float] | dict[str, Any]:
    """One weight per anchor, or a grouped point's grouping and vector per group."""
    if isinstance(coefficients, GroupedPoint):
        groups = {g: [float(c) for c in v] for g, v in coefficients.coefficients}
        return {"group_by": coefficients.group_by, "groups": groups}
    return [float(c) for c in coefficients]


def _identity(provenance: dict[str, Any] | None) -> dict[str, Any] | None:
    """The provenance without the anchors' names: renaming a model changes no weights."""
    if provenance is None:
        return None
    return {k: v for k, v in provenance.items() if k != "names"}


def _write_model(
    anchors, coefficients, folder: Path, space, reference, ignore_heads, device, dtype, format
) -> bool:
    """Write the point into ``folder``; returns whether it is a plain model (no sidecar)."""
    # As the engine: the model is the classifier's even when the reference is a bare base,
    # whose head is then the classifier's (weightscape.models.aliases).
    # A language model is exported as its own LM class (config.architectures).
    is_lm = lm_objective(checkpoint_architectures(anchors[reference])) is not None
    built_from = reference if is_lm else classifier_anchor(anchors, reference)
    working = WorkingModel(
        anchors[built_from],
        device=resolve_device(device),
        dtype=dtype,
        task_kind="text" if is_lm else "classification",
    )
    try:
        anchor_set = working.anchors(
            anchors, ignore=is_head if ignore_heads else None, head_from=built_from
        )
    except WeightscapeError as err:
        if ignore_heads:
            raise
        raise WeightscapeError(
            f"{err}\nModels finetuned on datasets with other label counts differ only in their "
            "heads: pass ignore_heads=True to take the head from the reference anchor."
        ) from err
    grouped = isinstance(coefficients, GroupedPoint)
    working.write(anchor_set, coefficients if grouped else list(coefficients), space, reference)
    if format == "peft":
        _save_peft(working, anchor_set, anchors[reference], reference, folder)
        return True
    if isinstance(tuning_spec_of(anchors[reference]), LoraSpec):
        _save_merged(working.model, folder)
        return True
    working.model.save_pretrained(str(folder))  # safetensors and config.json
    return False


def _save_merged(model, folder: Path) -> None:
    """Save a LoRA working model as the plain model with every LoRA layer merged."""
    from transformers import AutoModelForSequenceClassification
    from transformers.initialization import no_init_weights

    from weightscape.models.peft_anchor import merged_state

    dtype = next(model.parameters()).dtype  # the export's dtype, as the working model's
    with no_init_weights():  # every weight is loaded below
        plain = AutoModelForSequenceClassification.from_config(
            model.config, trust_remote_code=False, dtype=dtype
        )
    plain.load_state_dict(merged_state(model), strict=True)  # no missing or unexpected keys
    plain.save_pretrained(str(folder))


def _save_peft(working, anchor_set, reference: Checkpoint, index: int, folder: Path) -> None:
    """Save the point's LoRA matrices and head as a peft adapter over the reference's base.

    Refused when the point moved a frozen base weight (a space that mixes them, with
    coefficients that do not reproduce them): an adapter over the base could not hold it.
    """
    from safetensors.torch import save_file

    from weightscape.models.peft_anchor import (
        ADAPTER_WEIGHTS,
        adapter_config_for,
        adapter_state,
        working_to_plain,
    )

    base = anchor_set.readers[index]
    moved = [
        name
        for name, tensor in working.state.items()
        if working_to_plain(name) is not None
        and not is_head(name)
        and not torch_equal(tensor, base.get(name))
    ]
    if moved:
        raise WeightscapeError(
            f"This point changes {len(moved)} frozen base weights (e.g. {moved[0]}), which a "
            "peft adapter over the base cannot hold: mix only the adapters and heads (parameter "
            "space 'tuned'), or export the point as a model (format 'model')."
        )
    state = adapter_state(working.model)
    heads = sorted({name.split(".")[0] for name in working.state if is_head(name)})
    folder.mkdir(parents=True, exist_ok=True)
    save_file(state, str(folder / ADAPTER_WEIGHTS[0]), metadata={"format": "pt"})
    config = adapter_config_for(reference, heads)
    write_text(folder / ADAPTER_CONFIG, json.dumps(config, indent=2, sort_keys=True) + "\n")
    if (reference.path / "config.json").is_file():  # the task's labels, for the engine
        shutil.copy(reference.path / "config.json", folder / "config.json")


def torch_equal(a, b) -> bool:
    """Whether two tensors hold the same values (``b`` moved to ``a``'s device and dtype)."""
    import torch

    return bool(torch.equal(a, b.to(a.device, a.dtype)))
