"""Build a model from a checkpoint's config, and check checkpoints against it.

Only configs are read here (no remote code, no hub). The compatibility check runs before any
evaluation and reports every mismatched tensor by name, shape and dtype, for every checkpoint at
once.

Checkpoints are untrusted input: every ``Auto*`` call in weightscape passes
``trust_remote_code=False``, so a folder whose config maps to its own Python files (``auto_map``)
is refused (:func:`raise_if_remote_code`) instead of transformers asking whether to import them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from weightscape.errors import WeightscapeError
from weightscape.models.checkpoint import Checkpoint, TensorReader, nonfinite_tensors
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


def raise_if_remote_code(folder: str | os.PathLike[str], err: Exception) -> None:
    """Raise the refusal for ``folder`` if ``err`` is transformers declining to run its code.

    With ``trust_remote_code=False`` transformers raises a ValueError (never a prompt) for a
    folder whose ``config.json`` or ``tokenizer_config.json`` maps to classes in its own Python
    files; any other error is left to the caller.
    """
    if isinstance(err, ValueError) and "trust_remote_code" in str(err):
        raise WeightscapeError(
            f"The checkpoint '{folder}' asks to run its own Python code (auto_map in its "
            "config.json or tokenizer_config.json), and weightscape never runs code from a "
            "checkpoint. Convert it to a standard transformers architecture (one whose "
            "model_type transformers knows) with code you trust, and save it without auto_map."
        ) from err


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
        config = AutoConfig.from_pretrained(
            str(config_dir), local_files_only=True, trust_remote_code=False
        )
    except Exception as err:  # an untrusted config.json: any failure to read it is its fault
        raise_if_remote_code(config_dir, err)
        raise WeightscapeError(
            f"Cannot read the model config in '{config_dir}' ({type(err).__name__}: {err}). Fix "
            "config.json, or give the config the checkpoint was saved with (--config)."
        ) from None
    if num_labels is not None and config.num_labels != num_labels:
        config.num_labels = num_labels
    try:
        model = AutoModelForSequenceClassification.from_config(config, trust_remote_code=False)
    except Exception as err:  # an untrusted config that transformers cannot build a model from
        raise WeightscapeError(
            f"The model config in '{config_dir}' does not describe a model transformers can "
            f"build: {err}. Fix config.json (or give the config the checkpoint was saved with)."
        ) from None
    spec = read_tuning_spec(config_dir)
    if spec is not None:
        model = apply_tuning(model, spec)
    return model.eval()


def check_compatible(
    model: torch.nn.Module,
    readers: list[TensorReader],
    ignore: Callable[[str], bool] | None = None,
) -> None:
    """Raise one error listing every tensor any checkpoint lacks, adds, shapes differently or
    stores with another kind of dtype.

    A tensor floating in the model must be floating in the checkpoint and an integer one integer
    (a header claiming I32 for F32 bytes would otherwise be read as huge integers and mixed);
    float16 or bfloat16 anchors for a float32 model are fine.

    Tensors for which ``ignore(name)`` is true are not checked: a generalised loss replaces the
    classification head, so models finetuned on tasks with other label counts can share one
    encoder architecture.
    """
    state = {
        name: tensor
        for name, tensor in model.state_dict().items()
        if ignore is None or not ignore(name)
    }
    expected = {name: tuple(t.shape) for name, t in state.items()}
    non_persistent = {name for name, _ in model.named_buffers()} - set(expected)
    problems: list[str] = []
    for reader in readers:
        lines = _mismatches(expected, reader, non_persistent, ignore)
        lines += _dtype_mismatches(state, reader)
        if lines:
            problems.append(_section(reader.checkpoint, lines))
    if problems:
        raise WeightscapeError(
            "Checkpoints do not match the architecture of the working model "
            f"({type(model).__name__}):\n  "
            + "\n  ".join(problems)
            + "\nAll anchors must be finetuned from the same architecture with the same label "
            "count; a dtype of the wrong kind means a corrupt or mislabelled file: re-save it."
        )


def _section(checkpoint: Checkpoint, lines: list[str]) -> str:
    """One checkpoint's part of a report: its name and path, then at most MAX_LISTED lines."""
    shown = lines[:MAX_LISTED]
    if len(lines) > MAX_LISTED:
        shown.append(f"... and {len(lines) - MAX_LISTED} more")
    return f"checkpoint '{checkpoint.name}' ({checkpoint.path}):\n" + "\n".join(
        f"    {line}" for line in shown
    )


def _dtype_mismatches(state: dict[str, torch.Tensor], reader: TensorReader) -> list[str]:
    """``dtype of NAME: expected float32, got int32`` where floating and integer disagree."""
    return [
        f"dtype of {name}: expected {str(t.dtype).removeprefix('torch.')}, got {reader.dtype(name)}"
        for name, t in state.items()
        if name in reader and reader.is_floating_point(name) != t.is_floating_point()
    ]


def check_finite(
    readers: list[TensorReader],
    names: Iterable[str],
    ignore: Callable[[str], bool] | None = None,
) -> None:
    """Raise one error listing every tensor in ``names`` that holds a NaN or an infinity, with
    its file, for every checkpoint at once (tensors for which ``ignore(name)`` is true excepted).

    A combination including one such weight is NaN wherever it is used, so walks refuse these
    anchors before evaluating or storing any point. Each file is scanned once per process.
    """
    wanted = {n for n in names if ignore is None or not ignore(n)}
    problems = []
    for reader in readers:
        bad = [f"{n} in {f}" for n, f in nonfinite_tensors(reader.checkpoint) if n in wanted]
        if bad:
            problems.append(_section(reader.checkpoint, bad))
    if problems:
        raise WeightscapeError(
            "Checkpoints hold weights that are not finite (NaN or infinity):\n  "
            + "\n  ".join(problems)
            + "\nEvery combination with such a weight is NaN. Use an earlier checkpoint of the "
            "run, or retrain it (a lower learning rate often avoids divergence)."
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
