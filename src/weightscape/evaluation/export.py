"""Save a combination of anchors as a checkpoint on disk: the one place a point becomes a model.

Every other component evaluates points in the working model without writing them out. Some
studies need a point as a model of its own: Gueta et al. (2023, §7) finetune from the centroid of
models trained on other datasets. :func:`save_combination` writes sum_i c_i * theta_i with the
same :class:`~weightscape.evaluation.working_model.WorkingModel` the engine uses, so a saved point
holds exactly the weights the engine evaluates for those coefficients.

The export is a Hugging Face model directory (``model.safetensors``, ``config.json``, the
reference's tokenizer files and tuning sidecar) plus ``weightscape_combination.json``, which
records what it holds: the anchors' content hashes, the coefficients, the parameter space and the
reference. The provenance file is written last and the folder is moved into place whole, so a
folder with it is a finished export; asking again for the same combination reuses it.
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
from weightscape.evaluation.working_model import WorkingModel, resolve_device
from weightscape.models.checkpoint import Checkpoint
from weightscape.models.fingerprint import TOKENIZER_FILES
from weightscape.models.space import ParameterSpace, is_head
from weightscape.models.tuning_spec import SIDECAR
from weightscape.outputs import write_text

PROVENANCE = "weightscape_combination.json"


def save_combination(
    anchors: Sequence[Checkpoint],
    coefficients: Sequence[float],
    out_dir: str | Path,
    *,
    space: ParameterSpace | None = None,
    reference: int = 0,
    ignore_heads: bool = False,
    device: str = "cpu",
    tokenizer: str | Path | None = None,
) -> Checkpoint:
    """Write sum_i c_i * anchor_i as a model directory ``out_dir`` and return it as a checkpoint.

    The centroid of n models is ``coefficients = [1/n] * n``. Tensors outside ``space`` (and,
    with ``ignore_heads``, the classification head) come from ``anchors[reference]``, as does the
    config, so the export has the reference's architecture and label count.

    Args:
        anchors: The checkpoints to combine, all of one architecture.
        coefficients: One weight per anchor.
        out_dir: The model directory to create. If it holds a finished export of the same
            combination (same anchors' content, coefficients, space, reference), it is reused.
        space: Which tensors are mixed (default: all).
        reference: Index of the anchor that supplies the config and every unmixed tensor.
        ignore_heads: Take the head from the reference and do not check its shape, so that models
            finetuned on datasets with other label counts can be averaged.
        device: Where the combination is computed (``auto``, ``cpu``, ``cuda``, ...).
        tokenizer: Folder of the tokenizer files to copy (default: the reference's).

    Raises:
        WeightscapeError: On a bad coefficient vector or reference, anchors that do not match
            (heads of other label counts included, unless ``ignore_heads``), or an ``out_dir``
            that holds something else.
    """
    space = space or ParameterSpace()
    _check_inputs(anchors, coefficients, reference)
    out_dir = Path(out_dir)
    wanted = _provenance(anchors, coefficients, space, reference, ignore_heads)
    if out_dir.exists():
        if _identity(read_provenance(out_dir)) == _identity(wanted):
            return Checkpoint.from_path(out_dir, name=out_dir.name)
        raise WeightscapeError(
            f"'{out_dir}' already exists and holds no export of this combination "
            f"({len(anchors)} anchors, coefficients {list(wanted['coefficients'])}). Use another "
            "folder or delete it."
        )
    partial = out_dir.with_name(f".{out_dir.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)  # left by a process killed mid-export
    _write_model(anchors, coefficients, partial, space, reference, ignore_heads, device)
    source = Path(tokenizer) if tokenizer is not None else tokenizer_dir(anchors[reference])
    copies = [(source, name) for name in TOKENIZER_FILES]
    copies.append((anchors[reference].config_dir(), SIDECAR))  # how to rebuild LoRA/adapters
    for folder, name in copies:
        if (folder / name).is_file():
            shutil.copy(folder / name, partial / name)
    write_text((partial / PROVENANCE), json.dumps(wanted, indent=1))
    partial.replace(out_dir)
    return Checkpoint.from_path(out_dir, name=out_dir.name)


def read_provenance(folder: str | Path) -> dict[str, Any] | None:
    """What an export in ``folder`` holds (its ``weightscape_combination.json``), or None."""
    path = Path(folder) / PROVENANCE
    if not path.is_file() or not (Path(folder) / "config.json").is_file():
        return None
    return json.loads(path.read_text())


def _check_inputs(anchors: Sequence[Checkpoint], coefficients: Sequence[float], reference: int):
    if not anchors:
        raise WeightscapeError("save_combination needs at least one anchor checkpoint.")
    if len(coefficients) != len(anchors) or not all(math.isfinite(c) for c in coefficients):
        raise WeightscapeError(
            f"The 'coefficients' parameter of save_combination must be {len(anchors)} finite "
            f"numbers, one per anchor. Got {list(coefficients)!r} instead."
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
        "coefficients": [float(c) for c in coefficients],
        "space": space.spec(),
        "reference": anchors[reference].content_hash(),
        "ignore_heads": bool(ignore_heads),
    }
    return json.loads(json.dumps(spec))


def _identity(provenance: dict[str, Any] | None) -> dict[str, Any] | None:
    """The provenance without the anchors' names: renaming a model changes no weights."""
    if provenance is None:
        return None
    return {k: v for k, v in provenance.items() if k != "names"}


def _write_model(anchors, coefficients, folder: Path, space, reference, ignore_heads, device):
    working = WorkingModel(anchors[reference], device=resolve_device(device))
    try:
        anchor_set = working.anchors(anchors, ignore=is_head if ignore_heads else None)
    except WeightscapeError as err:
        if ignore_heads:
            raise
        raise WeightscapeError(
            f"{err}\nModels finetuned on datasets with other label counts differ only in their "
            "heads: pass ignore_heads=True to take the head from the reference anchor."
        ) from err
    working.write(anchor_set, list(coefficients), space, reference)
    working.model.save_pretrained(str(folder))  # safetensors and config.json
