"""Anchors a region study adds to a zoo: the pretrained model and random directions about it.

Every point of a study is a combination of anchors (ARCHITECTURE.md), so the pretrained model
(the origin of task-vector space) and a random direction drawn about it become anchor
checkpoints too, written once under the study's folder and reused on reruns:

- :func:`pretrained_anchor` is the pretrained encoder under a task model's tensor names (a bare
  base model names ``embeddings.x`` what a classifier names ``bert.embeddings.x``), with that
  model's head, which a generalised loss replaces anyway;
- :func:`random_direction_anchor` is the pretrained anchor plus a random direction ``v`` (Gueta
  et al. 2023, §3.1): each weight matrix drawn i.i.d. Gaussian with Xavier's variance
  ``2 / (fan_in + fan_out)`` (``torch.nn.init.xavier_normal_``), each vector (biases, layer
  norms) with variance ``1 / n``, the whole of ``v`` then rescaled to a chosen norm (the
  group's mean task-vector norm), over the non-head tensors of the parameter space.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

from weightscape.analyses.weight_stats import base_view
from weightscape.errors import WeightscapeError
from weightscape.models.checkpoint import Checkpoint, TensorReader
from weightscape.models.space import ParameterSpace, is_head

__all__ = ["pretrained_anchor", "random_direction", "random_direction_anchor"]

PROVENANCE = "weightscape_anchor.json"


def pretrained_anchor(base: Checkpoint, like: Checkpoint, out_dir: str | Path) -> Checkpoint:
    """The pretrained ``base`` under the tensor names of task model ``like`` (its head kept).

    Raises:
        WeightscapeError: If ``base`` lacks an encoder tensor of ``like`` or shapes differ.
    """
    provenance = {"kind": "pretrained", "base": base.content_hash(), "like": like.content_hash()}
    folder = Path(out_dir) / f"pretrained-{provenance['base'][:12]}"
    cached = _reuse(folder, provenance, "pretrained")
    if cached is not None:
        return cached
    source, view = TensorReader(like), base_view(base)
    state = {}
    for name in source:
        tensor = source.get(name)
        if not is_head(name) and tensor.is_floating_point():
            if name not in view or view.shape(name) != tuple(tensor.shape):
                raise WeightscapeError(
                    f"The pretrained model '{base.name}' has no tensor matching '{name}' of "
                    f"'{like.name}' ({list(tensor.shape)}). Give the base these models were "
                    "finetuned from."
                )
            tensor = view.get(name).to(tensor.dtype)
        state[name] = tensor.contiguous()
    return _write(folder, state, like, provenance, "pretrained")


def random_direction(
    like: Checkpoint, norm: float, seed: int, space: ParameterSpace | None = None
) -> dict[str, torch.Tensor]:
    """A seeded random direction over ``like``'s non-head space tensors, of Euclidean ``norm``."""
    if not norm > 0:
        raise WeightscapeError(
            f"The 'norm' parameter of random_direction must be > 0. Got {norm!r} instead."
        )
    space = space or ParameterSpace()
    reader = TensorReader(like)
    generator = torch.Generator().manual_seed(seed)
    direction: dict[str, torch.Tensor] = {}
    for name in space.select(reader.keys()):
        tensor = reader.get(name)
        if is_head(name) or not tensor.is_floating_point():
            continue
        draw = torch.empty(tensor.shape, dtype=torch.float64)
        if draw.dim() >= 2:
            torch.nn.init.xavier_normal_(draw, generator=generator)
        else:
            draw.normal_(0.0, draw.numel() ** -0.5, generator=generator)
        direction[name] = draw
    if not direction:
        raise WeightscapeError(
            f"The parameter space {space.describe()} selects no weights of '{like.name}' outside "
            "the head, so there is no direction to draw."
        )
    total = torch.sqrt(sum((d * d).sum() for d in direction.values()))
    return {name: d * (norm / total) for name, d in direction.items()}


def random_direction_anchor(
    pretrained: Checkpoint,
    norm: float,
    seed: int,
    out_dir: str | Path,
    space: ParameterSpace | None = None,
) -> Checkpoint:
    """``pretrained`` plus :func:`random_direction` (written once, then reused)."""
    space = space or ParameterSpace()
    provenance = {
        "kind": "random",
        "pretrained": pretrained.content_hash(),
        "norm": float(norm).hex(),
        "seed": int(seed),
        "space": space.spec(),
    }
    folder = Path(out_dir) / f"random-s{seed}-{provenance['pretrained'][:8]}-{norm:.4g}"
    cached = _reuse(folder, provenance, folder.name)
    if cached is not None:
        return cached
    direction = random_direction(pretrained, norm, seed, space)
    reader = TensorReader(pretrained)
    state = {}
    for name in reader:
        tensor = reader.get(name)
        if name in direction:
            tensor = (tensor.to(torch.float64) + direction[name]).to(tensor.dtype)
        state[name] = tensor.contiguous()
    return _write(folder, state, pretrained, provenance, folder.name)


def _reuse(folder: Path, provenance: dict, name: str) -> Checkpoint | None:
    record = folder / PROVENANCE
    if record.is_file() and json.loads(record.read_text()) == provenance:
        return Checkpoint.from_path(folder, name=name)
    return None


def _write(
    folder: Path, state: dict[str, torch.Tensor], like: Checkpoint, provenance: dict, name: str
) -> Checkpoint:
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    (folder / PROVENANCE).unlink(missing_ok=True)  # written last: marks a finished anchor
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    config_dir = like.config_dir()
    for item in config_dir.iterdir():  # config and tokenizer files
        if (
            item.is_file()
            and item.suffix in (".json", ".txt", ".model")
            and item.name != PROVENANCE
        ) and not item.name.startswith("model.safetensors"):
            shutil.copy(item, folder / item.name)
    (folder / PROVENANCE).write_text(json.dumps(provenance))
    return Checkpoint.from_path(folder, name=name)
