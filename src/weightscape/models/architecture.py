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
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from weightscape.errors import WeightscapeError
from weightscape.logs import quiet_libraries
from weightscape.models.aliases import AnchorView, tied_groups, unused_names, view_of
from weightscape.models.checkpoint import Checkpoint, TensorReader, nonfinite_tensors
from weightscape.models.peft_anchor import tuning_spec_of
from weightscape.models.tuning_spec import apply_tuning

if TYPE_CHECKING:
    import torch

MAX_LISTED = 40  # per checkpoint; a completely different architecture would list hundreds

# config.architectures suffix -> the language-model objective its head computes.
LM_HEADS = {"ForCausalLM": "causal-lm", "LMHeadModel": "causal-lm", "ForMaskedLM": "masked-lm"}


def quiet_transformers() -> AbstractContextManager[None]:
    """A scope (``with``, or a decorator) in which transformers prints no load reports, advice or
    progress bars; its settings are restored after, so a host process keeps its own
    (:func:`weightscape.logs.quiet_libraries`). Nothing goes online either way: every load passes
    ``local_files_only=True``."""
    return quiet_libraries("transformers")


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


def lm_objective(architectures: Iterable[str] | None) -> str | None:
    """``"causal-lm"`` or ``"masked-lm"`` for a language model's ``config.architectures``, else
    None (a classifier, a bare encoder, or no architectures named).

    >>> lm_objective(["LlamaForCausalLM"]), lm_objective(["BertForMaskedLM"])
    ('causal-lm', 'masked-lm')
    >>> lm_objective(["GPT2LMHeadModel"]), lm_objective(["BertForSequenceClassification"])
    ('causal-lm', None)
    """
    for name in architectures or ():
        for suffix, objective in LM_HEADS.items():
            if str(name).endswith(suffix):
                return objective
    return None


def checkpoint_architectures(checkpoint: Checkpoint) -> tuple[str, ...]:
    """``config.architectures`` of a checkpoint's ``config.json`` (empty when it names none or
    cannot be read; :func:`build_model` reports an unreadable config)."""
    import json

    try:
        config = json.loads((checkpoint.config_dir() / "config.json").read_text())
        return tuple(str(a) for a in config.get("architectures") or ())
    except (OSError, ValueError, AttributeError):
        return ()


def not_a_language_model(checkpoint: Checkpoint, architectures: Iterable[str] | None) -> str:
    """The message for a text task on a checkpoint that is no language model."""
    named = ", ".join(architectures or ()) or "none named in config.json"
    return (
        f"Checkpoint '{checkpoint.name}' ({checkpoint.path}) is not a language model "
        f"(architectures: {named}), so it cannot score a text task (text:PATH), which needs a "
        "causal or masked language model's own head (*ForCausalLM, *LMHeadModel, *ForMaskedLM "
        "in config.json's architectures). Give language-model checkpoints, or a classification "
        "task."
    )


@quiet_transformers()
def read_config(checkpoint: Checkpoint) -> Any:
    """The checkpoint's transformers config, read from its ``config.json`` (never the hub, never
    remote code)."""
    from transformers import AutoConfig

    config_dir = checkpoint.config_dir()
    try:
        return AutoConfig.from_pretrained(
            str(config_dir), local_files_only=True, trust_remote_code=False
        )
    except Exception as err:  # an untrusted config.json: any failure to read it is its fault
        raise_if_remote_code(config_dir, err)
        raise WeightscapeError(
            f"Cannot read the model config in '{config_dir}' ({type(err).__name__}: {err}). Fix "
            "config.json, or give the config the checkpoint was saved with (--config)."
        ) from None


@quiet_transformers()
def build_model(
    checkpoint: Checkpoint,
    num_labels: int | None = None,
    *,
    task_kind: str = "classification",
    dtype: torch.dtype | None = None,
) -> torch.nn.Module:
    """A model with the checkpoint's architecture (weights not loaded), in eval mode.

    The class follows the task kind: a sequence classifier for a classification task; for a
    text task (language-model loss) the checkpoint's own language-model class, chosen by
    ``config.architectures`` (``*ForCausalLM``/``*LMHeadModel``: a causal LM, ``*ForMaskedLM``:
    a masked LM; :func:`lm_objective`).

    This is the one full model a path walk builds; anchors' tensors are written into it in place.
    A checkpoint tuned with LoRA or adapters has a ``weightscape_tuning.json`` sidecar beside its
    ``config.json``, or is a peft adapter folder (:mod:`.peft_anchor`: the LoRA of its
    ``adapter_config.json``); the model is then wrapped the same way as in training
    (:func:`~weightscape.models.tuning_spec.apply_tuning`), so its tensor names match the
    checkpoint's. ``dtype`` builds the model directly in that dtype (None: the config's own).
    """
    from transformers import (
        AutoModelForCausalLM,
        AutoModelForMaskedLM,
        AutoModelForSequenceClassification,
    )

    config_dir = checkpoint.config_dir()
    config = read_config(checkpoint)
    if num_labels is not None and config.num_labels != num_labels:
        config.num_labels = num_labels
    auto = AutoModelForSequenceClassification
    if task_kind == "text":
        objective = lm_objective(config.architectures)
        if objective is None:
            raise WeightscapeError(not_a_language_model(checkpoint, config.architectures))
        auto = AutoModelForCausalLM if objective == "causal-lm" else AutoModelForMaskedLM
    try:
        model = auto.from_config(
            config, trust_remote_code=False, **({} if dtype is None else {"dtype": dtype})
        )
    except Exception as err:  # an untrusted config that transformers cannot build a model from
        raise WeightscapeError(
            f"The model config in '{config_dir}' does not describe a model transformers can "
            f"build: {err}. Fix config.json (or give the config the checkpoint was saved with)."
        ) from None
    spec = tuning_spec_of(checkpoint)  # a sidecar's, or a peft adapter's LoRA
    if spec is not None:
        model = apply_tuning(model, spec)
    return model.eval()


def check_compatible(
    model: torch.nn.Module,
    readers: list[TensorReader],
    ignore: Callable[[str], bool] | None = None,
) -> list[AnchorView]:
    """Each checkpoint seen under the model's tensor names; raise one error listing every tensor
    any checkpoint lacks, adds, shapes differently or stores with another kind of dtype.

    Names are resolved by :mod:`weightscape.models.aliases`: a checkpoint holding one name of a
    tied group (T5's ``shared`` for ``encoder.embed_tokens``) serves the group, and a bare base
    (no task head) is read under the classifier's names and takes its head from the classifier.

    A tensor floating in the model must be floating in the checkpoint and an integer one integer
    (a header claiming I32 for F32 bytes would otherwise be read as huge integers and mixed);
    float16 or bfloat16 anchors for a float32 model are fine.

    Tensors for which ``ignore(name)`` is true are not checked: a generalised loss replaces the
    classification head, so models finetuned on tasks with other label counts can share one
    encoder architecture.
    """
    full_state = model.state_dict()
    state = {name: t for name, t in full_state.items() if ignore is None or not ignore(name)}
    non_persistent = {name for name, _ in model.named_buffers()} - set(full_state)
    groups = tied_groups(model)
    prefix = getattr(model, "base_model_prefix", "") or ""
    views, problems = [], []
    for reader in readers:
        view = view_of(reader, list(full_state), groups, prefix)
        views.append(view)
        lines = _mismatches(state, view, non_persistent, prefix, ignore)
        lines += _dtype_mismatches(state, view)
        if lines:
            problems.append(_section(reader.checkpoint, lines))
    if problems:
        raise WeightscapeError(
            "Checkpoints do not match the architecture of the working model "
            f"({type(model).__name__}):\n  "
            + "\n  ".join(problems)
            + "\nAll anchors must be finetuned from the same architecture with the same label "
            "count (or be the bare pretrained model they were finetuned from); a dtype of the "
            "wrong kind means a corrupt or mislabelled file: re-save it."
        )
    return views


def _section(checkpoint: Checkpoint, lines: list[str]) -> str:
    """One checkpoint's part of a report: its name and path, then at most MAX_LISTED lines."""
    shown = lines[:MAX_LISTED]
    if len(lines) > MAX_LISTED:
        shown.append(f"... and {len(lines) - MAX_LISTED} more")
    return f"checkpoint '{checkpoint.name}' ({checkpoint.path}):\n" + "\n".join(
        f"    {line}" for line in shown
    )


def _dtype_mismatches(state: dict[str, torch.Tensor], view: AnchorView) -> list[str]:
    """``dtype of NAME: expected float32, got int32`` where floating and integer disagree."""
    reader, names = view.reader, view.names
    return [
        f"dtype of {name}: expected {str(t.dtype).removeprefix('torch.')}, "
        f"got {reader.dtype(names[name])}"
        for name, t in state.items()
        if name in names and reader.is_floating_point(names[name]) != t.is_floating_point()
    ]


def check_finite(
    readers: Sequence[TensorReader | AnchorView],
    names: Iterable[str],
    ignore: Callable[[str], bool] | None = None,
) -> None:
    """Raise one error listing every tensor in ``names`` that holds a NaN or an infinity, with
    its file, for every checkpoint at once (tensors for which ``ignore(name)`` is true excepted).

    ``names`` are the model's; an :class:`AnchorView` says what each is called in its checkpoint.
    A combination including one such weight is NaN wherever it is used, so walks refuse these
    anchors before evaluating or storing any point. Each file is scanned once per process.
    """
    wanted = {n for n in names if ignore is None or not ignore(n)}
    problems = []
    for reader in readers:
        mapped = getattr(reader, "names", None)
        local = wanted if mapped is None else {mapped[n] for n in wanted if n in mapped}
        bad = [f"{n} in {f}" for n, f in nonfinite_tensors(reader.checkpoint) if n in local]
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
    state: dict[str, torch.Tensor],
    view: AnchorView,
    non_persistent: set[str],
    prefix: str,
    ignore: Callable[[str], bool] | None = None,
) -> list[str]:
    reader, names = view.reader, view.names
    lines = [
        f"missing {name} {list(t.shape)}"
        for name, t in state.items()
        if name not in names and name not in view.borrowed
    ]
    lines += [
        f"unexpected {name} {list(reader.shape(name))}"
        for name in unused_names(view, non_persistent, prefix)
        if ignore is None or not ignore(name)
    ]
    for name, t in state.items():
        if name in names and reader.shape(names[name]) != tuple(t.shape):
            got = list(reader.shape(names[name]))
            lines.append(f"shape of {name}: expected {list(t.shape)}, got {got}")
    return lines
