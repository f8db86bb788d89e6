"""Finetune a sequence classifier from a pretrained checkpoint, building a zoo.

Two seeds are kept apart because they are the factors connectivity studies vary one at a time:
``head_seed`` initialises the new classification head (and any other newly initialised module),
``data_seed`` orders the training data (and drives dropout). Full finetuning and BitFit (only
biases and the head train, Ben Zaken et al. 2022) are supported. Checkpoints are saved as
safetensors model directories at chosen steps, each with an entry in the output's ``zoo.yaml``.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from weightscape.data import Task
from weightscape.errors import WeightscapeError
from weightscape.models.checkpoint import Checkpoint
from weightscape.models.space import is_head
from weightscape.models.zoo import append_to_manifest

METHODS = ("full", "bitfit")


class FinetuneConfig(BaseModel):
    """Hyperparameters of one finetuning run."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str
    base: str = "minilm"
    method: Literal["full", "bitfit"] = "full"
    steps: int = Field(100, ge=1)
    batch_size: int = Field(32, ge=1)
    lr: float = Field(5e-5, gt=0)
    warmup_ratio: float = Field(0.1, ge=0, lt=1)
    weight_decay: float = Field(0.01, ge=0)
    max_length: int = Field(64, ge=8)
    head_seed: int = 0
    data_seed: int = 0
    save_steps: tuple[int, ...] = ()

    @field_validator("save_steps")
    @classmethod
    def _positive(cls, steps: tuple[int, ...]) -> tuple[int, ...]:
        if any(s < 1 for s in steps):
            raise ValueError("save steps must be >= 1")
        return tuple(sorted(set(steps)))


def finetune(
    config: FinetuneConfig, train: Task, out_dir: str | Path, *, progress: bool = False
) -> list[Checkpoint]:
    """Train one model and save checkpoints at ``save_steps`` and at the last step.

    Returns:
        The saved checkpoints, in step order; each is also recorded in ``out_dir/zoo.yaml``.
    """
    import torch
    from tqdm.auto import tqdm
    from transformers import get_linear_schedule_with_warmup

    out_dir = Path(out_dir)
    model, tokenizer = _load_base(config, train)
    params = _trainable(model, config.method)
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    schedule = get_linear_schedule_with_warmup(
        optimizer, math.ceil(config.warmup_ratio * config.steps), config.steps
    )
    torch.manual_seed(config.data_seed)  # dropout follows the data seed, not the head seed
    batches = _batches(tokenizer, train, config)
    save_at = {s for s in config.save_steps if s <= config.steps} | {config.steps}
    saved, log = [], []
    model.train()
    start = time.perf_counter()
    for step in tqdm(range(1, config.steps + 1), desc=config.name, disable=not progress):
        inputs, labels = next(batches)
        loss = torch.nn.functional.cross_entropy(model(**inputs).logits, labels)
        loss.backward()
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        log.append({"step": step, "loss": loss.item()})
        if step in save_at:
            saved.append(_save(model, tokenizer, config, train, out_dir, step))
    _write_log(out_dir / config.name / "train_log.json", config, log, time.perf_counter() - start)
    return saved


def _load_base(config: FinetuneConfig, train: Task):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from weightscape.models.architecture import quiet_transformers
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
        )
        tokenizer = AutoTokenizer.from_pretrained(str(base), local_files_only=True)
    except (OSError, ValueError, RuntimeError) as err:
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


def _trainable(model, method: str) -> list:
    params = []
    for name, param in model.named_parameters():
        train = method == "full" or name.endswith("bias") or is_head(name)
        param.requires_grad_(train)
        if train:
            params.append(param)
    return params


def _batches(tokenizer, train: Task, config: FinetuneConfig):
    """Endless stream of padded batches in a data-seeded order, reshuffled every epoch."""
    import torch

    texts_b = list(train.text_b) if train.text_b is not None else None
    encoded = tokenizer(list(train.text_a), texts_b, truncation=True, max_length=config.max_length)
    rng = np.random.default_rng(config.data_seed)
    labels = torch.tensor(np.asarray(train.labels), dtype=torch.long)
    while True:
        order = rng.permutation(len(train))
        for start in range(0, max(len(order) - config.batch_size + 1, 1), config.batch_size):
            idx = order[start : start + config.batch_size]
            features = [{k: encoded[k][i] for k in encoded} for i in idx]
            yield tokenizer.pad(features, return_tensors="pt"), labels[idx]


def _save(
    model, tokenizer, config: FinetuneConfig, train: Task, out_dir: Path, step: int
) -> Checkpoint:
    folder = out_dir / config.name / f"step-{step}"
    model.save_pretrained(str(folder))  # safetensors
    tokenizer.save_pretrained(str(folder))
    name = config.name if step == config.steps else f"{config.name}@{step}"
    tags = {
        "dataset": train.name,
        "method": config.method,
        "head_seed": config.head_seed,
        "data_seed": config.data_seed,
        "lr": config.lr,
        "batch_size": config.batch_size,
        "steps": config.steps,
        "step": step,
        "base": config.base,
        "run": config.name,
    }
    append_to_manifest(
        out_dir / "zoo.yaml", {"name": name, "path": str(folder.relative_to(out_dir)), "tags": tags}
    )
    return Checkpoint.from_path(folder, name=name, tags=tags)


def _write_log(path: Path, config: FinetuneConfig, log: list[dict], seconds: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps({"config": config.model_dump(), "seconds": seconds, "log": log}, indent=1)
    )
