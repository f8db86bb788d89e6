"""Build a model from a checkpoint's config, and check checkpoints against it.

Only configs are read here (no remote code, no hub). The compatibility check runs before any
evaluation and reports every mismatched tensor by name and shape, for every checkpoint at once.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from weightscape.errors import WeightscapeError
from weightscape.models.checkpoint import Checkpoint, TensorReader
from weightscape.models.tuning_spec import apply_tuning, read_tuning_spec

if TYPE_CHECKING:
    import torch

MAX_LISTED = 40  # per checkpoint; a completely different architecture would list hundreds


def quiet_transformers() -> None:
    """Keep transformers offline and quiet: no hub retries, no load reports."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()


def build_model(checkpoint: Checkpoint, num_labels: int | None = None) -> torch.nn.Module:
    """A sequence classifier with the checkpoint's architecture (weights not loaded), in eval mode.

    This is the one full model a path walk builds; anchors' tensors are written into it in place.
    A checkpoint tuned with LoRA or adapters has a ``weightscape_tuning.json`` sidecar beside its
    ``config.json``; the model is then wrapped the same way as in training
    (:func:`~weightscape.models.tuning_spec.apply_tuning`), so its tensor names match the
    checkpoint's.
    """
    quiet_transformers()
    from transformers import AutoConfig, AutoModelForSequenceClassification

    config_dir = checkpoint.config_dir()
    try:
        config = AutoConfig.from_pretrained(str(config_dir), local_files_only=True)
    except (ValueError, OSError, KeyError) as err:
        raise WeightscapeError(f"Cannot read the model config in '{config_dir}': {err}") from err
    if num_labels is not None and config.num_labels != num_labels:
        config.num_labels = num_labels
    model = AutoModelForSequenceClassification.from_config(config)
    spec = read_tuning_spec(config_dir)
    if spec is not None:
        model = apply_tuning(model, spec)
    return model.eval()


def check_compatible(
    model: torch.nn.Module,
    readers: list[TensorReader],
    ignore: Callable[[str], bool] | None = None,
) -> None:
    """Raise one error listing every tensor any checkpoint lacks, adds or shapes differently.

    Tensors for which ``ignore(name)`` is true are not checked: a generalised loss replaces the
    classification head, so models finetuned on tasks with other label counts can share one
    encoder architecture.
    """
    expected = {
        name: tuple(t.shape)
        for name, t in model.state_dict().items()
        if ignore is None or not ignore(name)
    }
    non_persistent = {name for name, _ in model.named_buffers()} - set(expected)
    problems: list[str] = []
    for reader in readers:
        lines = _mismatches(expected, reader, non_persistent, ignore)
        if lines:
            shown = lines[:MAX_LISTED]
            if len(lines) > MAX_LISTED:
                shown.append(f"... and {len(lines) - MAX_LISTED} more")
            problems.append(
                f"checkpoint '{reader.checkpoint.name}' ({reader.checkpoint.path}):\n"
                + "\n".join(f"    {line}" for line in shown)
            )
    if problems:
        raise WeightscapeError(
            "Checkpoints do not match the architecture of the working model "
            f"({type(model).__name__}):\n  "
            + "\n  ".join(problems)
            + "\nAll anchors must be finetuned from the same architecture with the same label "
            "count."
        )


def _mismatches(
    expected: dict[str, tuple[int, ...]],
    reader: TensorReader,
    non_persistent: set[str],
    ignore: Callable[[str], bool] | None = None,
) -> list[str]:
    have = {n for n in reader.keys() if ignore is None or not ignore(n)}  # noqa: SIM118
    lines = [
        f"missing {name} {list(shape)}" for name, shape in expected.items() if name not in have
    ]
    lines += [
        f"unexpected {name} {list(reader.shape(name))}"
        for name in sorted(have)
        if name not in expected and name not in non_persistent
    ]
    for name, shape in expected.items():
        if name in have and reader.shape(name) != shape:
            lines.append(f"shape of {name}: expected {list(shape)}, got {list(reader.shape(name))}")
    return lines
