"""Finetune a sequence classifier from a pretrained checkpoint, building a zoo.

Seeds are kept apart because they are the factors connectivity studies vary one at a time:
``head_seed`` initialises the new classification head, ``module_seed`` the modules LoRA or
adapters add (it follows ``head_seed`` unless given), ``init_noise_seed`` draws optional Gaussian
noise added to the pretrained weights (``init_noise_std``), and ``data_seed`` orders the training
data (and drives dropout); ``data_half`` trains on one of two disjoint, seeded halves of the data
and ``train_size`` on a seeded subsample (Gueta et al. 2023 cluster models by data size). Free
``tags`` (a task family, say) go into the zoo entry beside the tags every run gets.
Tuning methods are plug-ins (:mod:`weightscape.models.tuning`; ``FinetuneConfig.tuning``): full
finetuning, BitFit (biases and the head), LoRA and bottleneck adapters (the added modules and the
head).

Checkpoints are saved as safetensors model directories at chosen steps, each with an entry in the
output's ``zoo.yaml``. A LoRA checkpoint is a standard peft adapter folder (``adapter_config.json``,
``adapter_model.safetensors``: the LoRA matrices and the head) over the pretrained base, which
``PeftModel.from_pretrained`` loads (:mod:`weightscape.models.peft_anchor`; with init noise, over
the run's own base saved in ``OUT/NAME/base``); its zoo entry names that base (``adapter_base``).
A bottleneck-adapter checkpoint holds the whole model (frozen base, added tensors, head) plus a
``weightscape_tuning.json`` sidecar from which the engine rebuilds the same architecture
(:mod:`weightscape.models.tuning_spec`).

With ``dynamics_examples`` set, the run also records its training dynamics (the true label's
probability on a seeded subset of its training examples every ``dynamics_every`` steps and at the
end) into ``OUT/NAME/dynamics.npz``, for dataset cartography (:mod:`.dynamics`).
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from weightscape.data import Task, subset
from weightscape.errors import WeightscapeError
from weightscape.logs import quiet_libraries
from weightscape.models.checkpoint import Checkpoint
from weightscape.models.pretrained import BUILTIN_MODELS
from weightscape.models.space import is_head
from weightscape.models.tuning import METHODS
from weightscape.models.tuning_spec import LoraSpec, write_tuning_spec
from weightscape.models.zoo import append_to_manifest
from weightscape.outputs import write_json
from weightscape.training.batches import training_batches
from weightscape.training.dynamics import start_recording
from weightscape.training.finetune_config import RESERVED_TAGS, FinetuneConfig

if TYPE_CHECKING:
    import torch

__all__ = ["METHODS", "RESERVED_TAGS", "FinetuneConfig", "finetune", "half_of", "initial_model"]


def finetune(
    config: FinetuneConfig,
    train: Task,
    out_dir: str | Path,
    *,
    progress: bool = False,
    device: str = "cpu",
) -> list[Checkpoint]:
    """Train one model and save checkpoints at ``save_steps`` and at the last step.

    ``device`` (``cpu``, ``auto``, ``cuda``...) is where training runs; it is not part of the
    config (a run's recipe), though GPU and CPU arithmetic round differently.

    Returns:
        The saved checkpoints, in step order; each is also recorded in ``out_dir/zoo.yaml``.
    """
    import torch
    from tqdm.auto import tqdm
    from transformers import get_linear_schedule_with_warmup

    from weightscape.training.tuning import mark_trainable

    out_dir = Path(out_dir)
    dataset = train.name
    if config.data_half is not None:
        train = half_of(train, config.data_half, seed=config.data_half_seed)
    if config.train_size is not None:
        train = subset(train, config.train_size, seed=config.train_size_seed)
    from weightscape.evaluation.working_model import resolve_device

    model, tokenizer = initial_model(config, train)
    model.to(resolve_device(device))
    params = mark_trainable(model, config.tuning)
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    schedule = get_linear_schedule_with_warmup(
        optimizer, math.ceil(config.warmup_ratio * config.steps), config.steps
    )
    torch.manual_seed(config.data_seed)  # dropout follows the data seed, not the head seed
    batches = training_batches(
        tokenizer,
        train,
        batch_size=config.batch_size,
        max_length=config.max_length,
        seed=config.data_seed,
    )
    save_at = {s for s in config.save_steps if s <= config.steps} | {config.steps}
    recorder = start_recording(
        tokenizer,
        train,
        examples=config.dynamics_examples,
        every=config.dynamics_every,
        total_steps=config.steps,
        max_length=config.max_length,
        device=model.device,
    )
    saved, log = [], []
    adapter_base = _adapter_base(model, config, out_dir)  # LoRA runs: what the adapters apply to
    model.train()
    start = time.perf_counter()
    for step in tqdm(range(1, config.steps + 1), desc=config.name, disable=not progress):
        inputs, labels = next(batches)
        inputs = {k: v.to(model.device) for k, v in inputs.items()}
        loss = torch.nn.functional.cross_entropy(model(**inputs).logits, labels.to(model.device))
        loss.backward()
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        log.append({"step": step, "loss": loss.item()})
        if recorder is not None:
            recorder.after_step(model, step)
        if step in save_at:
            saved.append(_save(model, tokenizer, config, dataset, out_dir, step, adapter_base))
    if recorder is not None:  # before the log, which marks a run finished
        recorder.save(out_dir / config.name)
    _write_log(out_dir / config.name / "train_log.json", config, log, time.perf_counter() - start)
    return saved


def initial_model(config: FinetuneConfig, train: Task) -> tuple[torch.nn.Module, Any]:
    """The model a run starts from, and its tokenizer: the pretrained base with a new head,
    init noise when asked, and the method's new modules, each drawn from its own seed."""
    from weightscape.training.tuning import add_init_noise, init_new_modules

    model, tokenizer = _load_base(config, train)
    add_init_noise(model, config.init_noise_std, config.init_noise_seed)
    if config.tuning.adds_modules():
        model = config.tuning.add_modules(model)
        init_new_modules(model, config.tuning, config.effective_module_seed())
    return model, tokenizer


def half_of(task: Task, half: int, seed: int = 0) -> Task:
    """One of two disjoint halves of ``task`` (a seeded permutation), rows in original order.

    >>> from weightscape.data import make_task
    >>> task = make_task("toy", [f"t{i}" for i in range(5)], [0, 1, 0, 1, 0], ("a", "b"))
    >>> [len(half_of(task, h)) for h in (0, 1)]
    [2, 3]
    """
    if half not in (0, 1):
        raise WeightscapeError(f"The 'half' parameter of half_of must be 0 or 1. Got {half!r}.")
    order = np.random.default_rng(seed).permutation(len(task))
    rows = order[: len(task) // 2] if half == 0 else order[len(task) // 2 :]
    return task.select(np.sort(rows), name=f"{task.name}:half{half}")


@quiet_libraries("transformers")  # no load report for the re-initialised head
def _load_base(config: FinetuneConfig, train: Task):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from weightscape.models.architecture import raise_if_remote_code
    from weightscape.models.pretrained import resolve_model_path

    base = resolve_model_path(config.base)
    torch.manual_seed(config.head_seed)  # any module the base lacks is initialised from this
    try:
        # A base with a head for another label count gets a new head: the head is
        # re-initialised from head_seed below in any case.
        model = AutoModelForSequenceClassification.from_pretrained(
            str(base),
            num_labels=train.num_labels,
            local_files_only=True,
            ignore_mismatched_sizes=True,
            trust_remote_code=False,
        )
        tokenizer = AutoTokenizer.from_pretrained(
            str(base), local_files_only=True, trust_remote_code=False
        )
    except (OSError, ValueError, RuntimeError) as err:
        raise_if_remote_code(base, err)
        raise WeightscapeError(f"Cannot load the base model from '{base}': {err}") from err
    model.config.id2label = dict(enumerate(train.label_names))
    model.config.label2id = {name: i for i, name in enumerate(train.label_names)}
    generator = torch.Generator().manual_seed(config.head_seed)
    std = getattr(model.config, "initializer_range", 0.02)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if is_head(name):
                if name.endswith("bias"):
                    param.zero_()
                else:
                    param.normal_(0.0, std, generator=generator)
    return model, tokenizer


def _adapter_base(model, config: FinetuneConfig, out_dir: Path) -> Path | None:
    """The base model folder a LoRA run's peft adapters apply to (None for other methods).

    The pretrained base itself, unless init noise moved the frozen weights: then the run's own
    base, saved once in ``OUT/NAME/base`` (a plain model folder), since an adapter over the
    pretrained base would compute another function.
    """
    from weightscape.models.pretrained import resolve_model_path

    if not isinstance(config.tuning, LoraSpec):
        return None
    if config.init_noise_std == 0:
        return resolve_model_path(config.base).resolve()
    from transformers import AutoModelForSequenceClassification

    from weightscape.models.peft_anchor import plain_state

    folder = out_dir / config.name / "base"
    plain = AutoModelForSequenceClassification.from_config(model.config, trust_remote_code=False)
    plain.load_state_dict(plain_state(model), strict=True)
    plain.save_pretrained(str(folder))
    return folder.resolve()


def _save(
    model,
    tokenizer,
    config: FinetuneConfig,
    dataset: str,
    out_dir: Path,
    step: int,
    adapter_base: Path | None = None,
) -> Checkpoint:
    folder = out_dir / config.name / f"step-{step}"
    entry: dict[str, Any] = {}
    if adapter_base is not None:  # LoRA: a standard peft adapter folder (peft_anchor)
        from weightscape.models.peft_anchor import save_adapter

        save_adapter(model, config.tuning, folder, adapter_base)
        # A built-in base by its name, any other by its path from the zoo file (portable).
        portable = config.base in BUILTIN_MODELS and config.init_noise_std == 0
        entry["adapter_base"] = (
            config.base if portable else os.path.relpath(adapter_base, Path(out_dir).resolve())
        )
    else:
        # The full state dict (an adapter-tuned model's base, added tensors and head) under the
        # names the working model will have: modules are injected in place.
        model.save_pretrained(str(folder))  # safetensors
        if config.tuning.adds_modules():
            write_tuning_spec(folder, config.tuning)
    tokenizer.save_pretrained(str(folder))
    name = config.name if step == config.steps else f"{config.name}@{step}"
    tags = {**_tags(config, dataset, out_dir), "step": step}
    path = str(folder.relative_to(out_dir))
    append_to_manifest(out_dir / "zoo.yaml", {"name": name, "path": path, **entry, "tags": tags})
    return Checkpoint.from_path(folder, name=name, tags=tags, adapter_base=adapter_base)


def _tags(config: FinetuneConfig, dataset: str, out_dir: Path) -> dict[str, Any]:
    """The zoo tags of a run: the factors a study groups or colours models by.

    The ``base`` tag is a built-in name as given, or a path relative to ``out_dir`` (the
    manifest's folder, where ``resolve_base`` looks first), so the zoo reads from any directory.
    """
    from weightscape.models.pretrained import BUILTIN_MODELS, resolve_model_path

    base = config.base
    if base not in BUILTIN_MODELS:
        base = os.path.relpath(resolve_model_path(base).resolve(), Path(out_dir).resolve())
    tags: dict[str, Any] = {
        "dataset": dataset,
        "method": config.method,
        "head_seed": config.head_seed,
        "data_seed": config.data_seed,
        "lr": config.lr,
        "batch_size": config.batch_size,
        "steps": config.steps,
        "base": base,
        "run": config.name,
    }
    if config.tuning.adds_modules():
        tags["module_seed"] = config.effective_module_seed()
    tags.update(config.tuning.tags())
    if config.init_noise_std > 0:
        tags.update(init_noise_std=config.init_noise_std, init_noise_seed=config.init_noise_seed)
    if config.data_half is not None:
        tags.update(data_half=config.data_half, data_half_seed=config.data_half_seed)
    if config.train_size is not None:
        tags.update(train_size=config.train_size, train_size_seed=config.train_size_seed)
    return {**tags, **config.tags}


def _write_log(path: Path, config: FinetuneConfig, log: list[dict], seconds: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, {"config": config.model_dump(), "seconds": seconds, "log": log})
