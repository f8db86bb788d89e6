"""Masked-LM pretraining of a small BERT from scratch, saving checkpoints along the way.

Qin et al. (2022, §5) pretrain a model themselves and finetune its intermediate checkpoints to see
when mode connectivity appears. This trains a ``BertForMaskedLM`` built from a ``BertConfig``
(random init from ``seed``) on raw text (:func:`weightscape.data.raw_text.raw_texts`), masking with
``transformers.DataCollatorForLanguageModeling`` (15% of tokens; 80/10/10 mask/random/keep).

Checkpoints are Hugging Face folders (safetensors, config, tokenizer) at ``OUT/NAME/step-K`` with
entries in ``OUT/zoo.yaml``, as finetuning saves them, so each is a valid ``base`` of
:class:`~weightscape.training.finetune.FinetuneConfig`: the encoder loads, the classification
head and the pooler (which an MLM lacks) are initialised from the finetuning run's ``head_seed``.
The tokenizer is borrowed (by default MiniLM's WordPiece vocabulary; only its tokenizer files
are read, never its weights).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from weightscape.errors import WeightscapeError
from weightscape.logs import quiet_libraries
from weightscape.models.checkpoint import Checkpoint
from weightscape.models.zoo import append_to_manifest
from weightscape.outputs import write_json
from weightscape.validation import check_folder_name

__all__ = ["PretrainConfig", "default_tokenizer", "pretrain", "pretrained_checkpoints"]

LOG_FILE = "pretrain_log.json"


def default_tokenizer() -> str:
    """The folder of the built-in MiniLM model, whose tokenizer files pretraining borrows."""
    from weightscape.models.pretrained import resolve_model_path

    return str(resolve_model_path("minilm"))


class PretrainConfig(BaseModel):
    """Size and schedule of one masked-LM pretraining run."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str = "mlm"
    hidden_size: int = Field(128, ge=8)
    num_layers: int = Field(2, ge=1)
    num_heads: int = Field(2, ge=1)
    intermediate_size: int | None = Field(None, ge=1)  # None: 4 x hidden_size
    max_length: int = Field(64, ge=8)
    steps: int = Field(1000, ge=1)
    batch_size: int = Field(32, ge=1)
    lr: float = Field(1e-3, gt=0)
    warmup_ratio: float = Field(0.06, ge=0, lt=1)
    weight_decay: float = Field(0.01, ge=0)
    mask_probability: float = Field(0.15, gt=0, lt=1)
    seed: int = 0
    save_steps: tuple[int, ...] = (0, 100, 300)  # besides the last; 0: the random init
    tokenizer: str = Field(default_factory=default_tokenizer)

    @field_validator("name")
    @classmethod
    def _one_folder(cls, name: str) -> str:
        return check_folder_name(name)  # the run's folder inside the output folder

    @field_validator("save_steps")
    @classmethod
    def _positive(cls, steps: tuple[int, ...]) -> tuple[int, ...]:
        if any(s < 0 for s in steps):
            raise ValueError("save steps must be >= 0 (0: the random initialisation)")
        return tuple(sorted(set(steps)))

    @model_validator(mode="after")
    def _heads_divide_hidden(self) -> PretrainConfig:
        if self.hidden_size % self.num_heads:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must be a multiple of num_heads "
                f"({self.num_heads})"
            )
        return self

    def saved_steps(self) -> list[int]:
        """The steps a run saves: ``save_steps`` up to ``steps`` (0 is the random init), and the
        last step."""
        return sorted({s for s in self.save_steps if s <= self.steps} | {self.steps})

    def bert_config(self, vocab_size: int, pad_token_id: int) -> Any:
        """The ``transformers.BertConfig`` of the model."""
        from transformers import BertConfig

        return BertConfig(
            vocab_size=vocab_size,
            hidden_size=self.hidden_size,
            num_hidden_layers=self.num_layers,
            num_attention_heads=self.num_heads,
            intermediate_size=self.intermediate_size or 4 * self.hidden_size,
            max_position_embeddings=max(self.max_length, 64),
            pad_token_id=pad_token_id,
        )


def pretrain(
    config: PretrainConfig,
    texts: list[str],
    out_dir: str | Path,
    *,
    device: str = "cpu",
    progress: bool = False,
) -> list[Checkpoint]:
    """Pretrain a masked LM on ``texts``; save checkpoints at ``config.saved_steps()``.

    Returns:
        The saved checkpoints in step order; each is also in ``out_dir/zoo.yaml``. The loss per
        step is in ``out_dir/NAME/pretrain_log.json``.

    Raises:
        WeightscapeError: For no texts, or a tokenizer that cannot be loaded.
    """
    import torch
    from tqdm.auto import tqdm
    from transformers import BertForMaskedLM, get_linear_schedule_with_warmup

    from weightscape.evaluation.working_model import resolve_device

    if not texts:
        raise WeightscapeError("pretrain needs at least one text; got an empty list.")
    out_dir = Path(out_dir)
    tokenizer = _load_tokenizer(config.tokenizer)
    torch.manual_seed(config.seed)  # the random init, then masking and dropout
    model = BertForMaskedLM(config.bert_config(len(tokenizer), tokenizer.pad_token_id))
    model.to(resolve_device(device))
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    schedule = get_linear_schedule_with_warmup(
        optimizer, math.ceil(config.warmup_ratio * config.steps), config.steps
    )
    batches = _mlm_batches(tokenizer, texts, config)
    save_at, saved, log = set(config.saved_steps()), [], []
    if 0 in save_at:
        saved.append(_save(model, tokenizer, config, out_dir, 0))
    model.train()
    start = time.perf_counter()
    for step in tqdm(range(1, config.steps + 1), desc=config.name, disable=not progress):
        inputs = {k: v.to(model.device) for k, v in next(batches).items()}
        loss = model(**inputs).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        log.append({"step": step, "loss": loss.item()})
        if step in save_at:
            saved.append(_save(model, tokenizer, config, out_dir, step))
    seconds = time.perf_counter() - start
    write_json(
        out_dir / config.name / LOG_FILE,
        {"config": config.model_dump(), "seconds": seconds, "log": log},
    )
    return saved


def pretrained_checkpoints(
    config: PretrainConfig, texts: list[str], out_dir: str | Path, **options: Any
) -> list[Checkpoint]:
    """The run's checkpoints: read back when ``out_dir`` holds this exact finished run, else
    trained with :func:`pretrain` (so a rerun study resumes instead of pretraining again)."""
    out_dir = Path(out_dir)
    run_dir = out_dir / config.name
    log = run_dir / LOG_FILE
    folders = [run_dir / f"step-{s}" for s in config.saved_steps()]
    if log.is_file() and all((f / "model.safetensors").is_file() for f in folders):
        logged = json.loads(log.read_text()).get("config")
        if logged == json.loads(json.dumps(config.model_dump())):
            return [
                Checkpoint.from_path(f, name=_entry_name(config, s), tags=_tags(config, s))
                for f, s in zip(folders, config.saved_steps(), strict=True)
            ]
    return pretrain(config, texts, out_dir, **options)


@quiet_libraries("transformers")
def _load_tokenizer(folder: str) -> Any:
    from transformers import AutoTokenizer

    from weightscape.models.architecture import raise_if_remote_code

    try:
        return AutoTokenizer.from_pretrained(folder, local_files_only=True, trust_remote_code=False)
    except (OSError, ValueError) as err:
        raise_if_remote_code(folder, err)
        raise WeightscapeError(f"Cannot load a tokenizer from '{folder}': {err}") from err


def _mlm_batches(tokenizer: Any, texts: list[str], config: PretrainConfig):
    """Endless masked batches: texts tokenised once, reshuffled each epoch with the seed."""
    import numpy as np
    from transformers import DataCollatorForLanguageModeling

    collator = DataCollatorForLanguageModeling(
        tokenizer, mlm=True, mlm_probability=config.mask_probability, return_tensors="pt"
    )
    encoded = tokenizer(list(texts), truncation=True, max_length=config.max_length)
    rows = [{"input_ids": ids} for ids in encoded["input_ids"]]
    rng = np.random.default_rng(config.seed)
    while True:
        order = rng.permutation(len(rows))
        for start in range(0, len(order), config.batch_size):
            yield collator([rows[i] for i in order[start : start + config.batch_size]])


def _entry_name(config: PretrainConfig, step: int) -> str:
    return config.name if step == config.steps else f"{config.name}@{step}"


def _tags(config: PretrainConfig, step: int) -> dict[str, Any]:
    return {
        "objective": "mlm",
        "run": config.name,
        "step": step,
        "steps": config.steps,
        "seed": config.seed,
        "hidden_size": config.hidden_size,
        "num_layers": config.num_layers,
    }


def _save(model, tokenizer, config: PretrainConfig, out_dir: Path, step: int) -> Checkpoint:
    folder = out_dir / config.name / f"step-{step}"
    model.save_pretrained(str(folder))  # safetensors + config.json
    tokenizer.save_pretrained(str(folder))
    name, tags = _entry_name(config, step), _tags(config, step)
    append_to_manifest(
        out_dir / "zoo.yaml", {"name": name, "path": str(folder.relative_to(out_dir)), "tags": tags}
    )
    return Checkpoint.from_path(folder, name=name, tags=tags)
