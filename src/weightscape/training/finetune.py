"""Finetune a sequence classifier from a pretrained checkpoint, building a zoo.

Seeds are kept apart because they are the factors connectivity studies vary one at a time:
``head_seed`` initialises the new classification head, ``module_seed`` the modules LoRA or
adapters add (it follows ``head_seed`` unless given), ``init_noise_seed`` draws optional Gaussian
noise added to the pretrained weights (``init_noise_std``), and ``data_seed`` orders the training
data (and drives dropout); ``data_half`` trains on one of two disjoint, seeded halves of the data
and ``train_size`` on a seeded subsample (Gueta et al. 2023 cluster models by data size). Free
``tags`` (a task family, say) go into the zoo entry beside the tags every run gets.
Methods (:mod:`weightscape.training.tuning`): full finetuning, BitFit (biases and the head), LoRA
and bottleneck adapters (the added modules and the head).

Checkpoints are saved as safetensors model directories at chosen steps, each with an entry in the
output's ``zoo.yaml``. A LoRA or adapter checkpoint holds the whole model (frozen base, added
tensors, head) plus a ``weightscape_tuning.json`` sidecar from which the engine rebuilds the same
architecture (:mod:`weightscape.models.tuning_spec`).

With ``dynamics_examples`` set, the run also records its training dynamics (the true label's
probability on a seeded subset of its training examples every ``dynamics_every`` steps and at the
end) into ``OUT/NAME/dynamics.npz``, for dataset cartography (:mod:`.dynamics`).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from weightscape.data import Task, subset
from weightscape.errors import WeightscapeError
from weightscape.models.checkpoint import Checkpoint
from weightscape.models.space import is_head
from weightscape.models.tuning_spec import AdapterSpec, LoraSpec, TuningSpec, write_tuning_spec
from weightscape.models.zoo import append_to_manifest
from weightscape.training.batches import training_batches
from weightscape.training.dynamics import start_recording
from weightscape.training.tuning import METHODS, MethodName
from weightscape.validation import check_folder_name

if TYPE_CHECKING:
    import torch

__all__ = ["METHODS", "FinetuneConfig", "finetune", "half_of", "initial_model"]

# Tags every run's zoo entry gets from its config; free ``tags`` may not reuse these names.
RESERVED_TAGS = frozenset(
    (
        "dataset",
        "method",
        "head_seed",
        "data_seed",
        "lr",
        "batch_size",
        "steps",
        "base",
        "run",
        "step",
        "module_seed",
        "lora_r",
        "lora_alpha",
        "adapter_bottleneck",
        "init_noise_std",
        "init_noise_seed",
        "data_half",
        "data_half_seed",
        "train_size",
        "train_size_seed",
    )
)


class FinetuneConfig(BaseModel):
    """Hyperparameters of one finetuning run.

    ``lora_*`` options apply to ``method: lora`` and ``adapter_*`` to ``method: adapter``; the
    others ignore them (so one sweep can vary the method over shared settings).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str
    base: str = "minilm"
    method: MethodName = "full"
    steps: int = Field(100, ge=1)
    batch_size: int = Field(32, ge=1)
    lr: float = Field(5e-5, gt=0)
    warmup_ratio: float = Field(0.1, ge=0, lt=1)
    weight_decay: float = Field(0.01, ge=0)
    max_length: int = Field(64, ge=8)
    head_seed: int = 0
    data_seed: int = 0
    module_seed: int | None = None
    init_noise_std: float = Field(0.0, ge=0)
    init_noise_seed: int = 0
    data_half: Literal[0, 1] | None = None
    data_half_seed: int = 0
    train_size: int | None = Field(None, ge=1)
    train_size_seed: int = 0
    tags: dict[str, str | int | float] = Field(default_factory=dict)
    lora_r: int = Field(8, ge=1)
    lora_alpha: float = Field(16.0, gt=0)
    lora_dropout: float = Field(0.0, ge=0, lt=1)
    lora_target_modules: tuple[str, ...] = Field(("query", "value"), min_length=1)
    adapter_bottleneck: int = Field(64, ge=1)
    save_steps: tuple[int, ...] = ()
    # Training dynamics (dataset cartography): track this many training examples (None: off),
    # recording every K steps and at the last (None: K = max(1, steps // 10)).
    dynamics_examples: int | None = Field(None, ge=1)
    dynamics_every: int | None = Field(None, ge=1)

    @field_validator("name")
    @classmethod
    def _one_folder(cls, name: str) -> str:
        # Every route (CLI flag, zoo file, Python) builds this config, so this check covers all.
        return check_folder_name(name)

    @field_validator("tags")
    @classmethod
    def _own_names(cls, tags: dict[str, str | int | float]) -> dict[str, str | int | float]:
        clashes = sorted(set(tags) & RESERVED_TAGS)
        if clashes:
            raise ValueError(
                f"{clashes} are tags weightscape sets itself; give your own tags other names"
            )
        return tags

    @field_validator("save_steps")
    @classmethod
    def _positive(cls, steps: tuple[int, ...]) -> tuple[int, ...]:
        if any(s < 1 for s in steps):
            raise ValueError("save steps must be >= 1")
        return tuple(sorted(set(steps)))

    def tuning_spec(self) -> TuningSpec | None:
        """The modules this run adds to the model (None for full finetuning and BitFit)."""
        if self.method == "lora":
            return LoraSpec(
                r=self.lora_r,
                alpha=self.lora_alpha,
                dropout=self.lora_dropout,
                target_modules=self.lora_target_modules,
            )
        if self.method == "adapter":
            return AdapterSpec(bottleneck=self.adapter_bottleneck)
        return None

    def effective_module_seed(self) -> int:
        """The seed of the added modules: ``module_seed``, else ``head_seed``."""
        return self.head_seed if self.module_seed is None else self.module_seed


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
    params = mark_trainable(model, config.method)
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
            saved.append(_save(model, tokenizer, config, dataset, out_dir, step))
    if recorder is not None:  # before the log, which marks a run finished
        recorder.save(out_dir / config.name)
    _write_log(out_dir / config.name / "train_log.json", config, log, time.perf_counter() - start)
    return saved


def initial_model(config: FinetuneConfig, train: Task) -> tuple[torch.nn.Module, Any]:
    """The model a run starts from, and its tokenizer: the pretrained base with a new head,
    init noise when asked, and the method's new modules, each drawn from its own seed."""
    from weightscape.models.tuning_spec import apply_tuning
    from weightscape.training.tuning import add_init_noise, init_new_modules

    model, tokenizer = _load_base(config, train)
    add_init_noise(model, config.init_noise_std, config.init_noise_seed)
    spec = config.tuning_spec()
    if spec is not None:
        model = apply_tuning(model, spec)
        init_new_modules(model, config.effective_module_seed())
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


def _load_base(config: FinetuneConfig, train: Task):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from weightscape.models.architecture import quiet_transformers, raise_if_remote_code
    from weightscape.models.pretrained import resolve_model_path

    quiet_transformers()
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


def _save(
    model, tokenizer, config: FinetuneConfig, dataset: str, out_dir: Path, step: int
) -> Checkpoint:
    folder = out_dir / config.name / f"step-{step}"
    # The full state dict (a tuned model's base, added tensors and head) under the names the
    # working model will have: the model is the plain HF model with modules injected in place.
    model.save_pretrained(str(folder))  # safetensors
    tokenizer.save_pretrained(str(folder))
    spec = config.tuning_spec()
    if spec is not None:
        write_tuning_spec(folder, spec)
    name = config.name if step == config.steps else f"{config.name}@{step}"
    tags = {**_tags(config, dataset, out_dir), "step": step}
    append_to_manifest(
        out_dir / "zoo.yaml", {"name": name, "path": str(folder.relative_to(out_dir)), "tags": tags}
    )
    return Checkpoint.from_path(folder, name=name, tags=tags)


def _tags(config: FinetuneConfig, dataset: str, out_dir: Path) -> dict[str, Any]:
    """The zoo tags of a run: the factors a study groups or colours models by.

    The ``base`` tag is a built-in name as given, or a path relative to ``out_dir`` (the
    manifest's folder, where ``resolve_base`` looks first), so the zoo reads from any directory.
    """
    import os

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
    if config.tuning_spec() is not None:
        tags["module_seed"] = config.effective_module_seed()
    if config.method == "lora":
        tags.update(lora_r=config.lora_r, lora_alpha=config.lora_alpha)
    if config.method == "adapter":
        tags["adapter_bottleneck"] = config.adapter_bottleneck
    if config.init_noise_std > 0:
        tags.update(init_noise_std=config.init_noise_std, init_noise_seed=config.init_noise_seed)
    if config.data_half is not None:
        tags.update(data_half=config.data_half, data_half_seed=config.data_half_seed)
    if config.train_size is not None:
        tags.update(train_size=config.train_size, train_size_seed=config.train_size_seed)
    return {**tags, **config.tags}


def _write_log(path: Path, config: FinetuneConfig, log: list[dict], seconds: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps({"config": config.model_dump(), "seconds": seconds, "log": log}, indent=1)
    )
