"""Connectivity through pretraining (Qin et al. 2022, Figs. 6-7): the ``pretrain`` command.

Pretrain a small masked LM (:mod:`weightscape.training.pretrain`), then at each saved checkpoint
finetune two task-A copies and one task-B copy and walk the lines between them, and walk the
line between each pair of consecutive checkpoints scored by the masked-LM loss itself
(:mod:`weightscape.analyses.pretraining`). The defaults fit 2 CPU cores in well under an hour
(measured, docs/pretraining.md): the 2-layer, hidden-128 model with MiniLM's 30,522-word
vocabulary for 1,000 steps (batch 32 x 64 tokens) takes about 17 min on a quiet machine; then,
per checkpoint (steps 0, 100, 300, 1000), three finetuning runs of 300 steps at lr 1e-3 and three
11-point walks take 4.5 min for all four checkpoints. A larger setting for one GPU is in
docs/pretraining.md.

The pretraining fields are :class:`~weightscape.training.pretrain.PretrainConfig`'s (under the
flag names ``--hidden``, ``--layers``, ``--heads``, ``--intermediate``), and the per-checkpoint
ones :class:`~weightscape.analyses.pretraining.PretrainingStudy`'s (``--finetune-lr`` is its
``lr``); :func:`run` builds both from this config, and a test holds their defaults and bounds
equal.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator, model_validator

from weightscape.studies.common import Device, StudyConfig


class Config(StudyConfig):
    """A masked-LM pretraining run and the connectivity study at each of its checkpoints."""

    # pretraining (PretrainConfig)
    name: str = Field("mlm", description="run name: its folder under OUT/pretrain")
    steps: int = Field(1000, ge=1, description="pretraining steps")
    save_steps: tuple[int, ...] = Field(
        (0, 100, 300),
        description="steps to save and study, besides the last (0: the random init)",
    )
    hidden: int = Field(128, ge=8, description="hidden size")
    layers: int = Field(2, ge=1, description="transformer layers")
    heads: int = Field(2, ge=1, description="attention heads; must divide --hidden")
    intermediate: int | None = Field(None, ge=1, description="FFN size (none: 4 x --hidden)")
    max_length: int = Field(
        64, ge=8, description="tokens per text, in pretraining, finetuning and evaluation"
    )
    batch_size: int = Field(32, ge=1, description="pretraining batch size")
    lr: float = Field(1e-3, gt=0, description="pretraining peak learning rate")
    mask_probability: float = Field(
        0.15, gt=0, lt=1, description="share of tokens masked (80/10/10 mask/random/keep)"
    )
    seed: int = Field(0, description="seed of the init, the masking and the text subset")
    tokenizer: str | None = Field(
        None, description="tokenizer folder (none: MiniLM's, its tokenizer files only)"
    )
    text_source: str = Field(
        "bbc_news",
        description="raw text: bbc_news, wordnet, a text file (one text per line), or several "
        "joined by '+'",
    )
    texts: int = Field(6000, ge=0, description="texts drawn from the source (0: all)")
    # at each checkpoint (PretrainingStudy)
    task_a: str = Field("rotten_tomatoes", description="task of the two finetuned copies")
    task_b: str = Field("mnli_like", description="the other task of the cross-task path")
    finetune_steps: int = Field(300, ge=1, description="finetuning steps of each copy")
    finetune_lr: float = Field(1e-3, gt=0, description="finetuning learning rate")
    train_size: int = Field(2000, ge=0, description="finetuning rows per task (0: all)")
    eval_size: int = Field(256, ge=2, description="held-out rows each path point is evaluated on")
    probe_train: int = Field(
        256, ge=2, description="training rows the generalised loss's linear head is fitted on"
    )
    points: int = Field(11, ge=2, description="points along each path, both ends included")
    mlm_eval_size: int = Field(
        256,
        ge=0,
        description="documents the masked-LM loss along the line between consecutive "
        "pretraining checkpoints is evaluated on (held-out texts of the source; 0: off)",
    )
    device: Device = Field("cpu", description="auto (GPU if present), cpu, cuda, cuda:N")
    progress: bool = Field(True, description="show progress bars")
    out: Path = Field(Path("weightscape-out/pretrain"), description="output folder (reruns resume)")

    @field_validator("name")
    @classmethod
    def _one_folder(cls, name: str) -> str:
        from weightscape.validation import check_folder_name

        return check_folder_name(name)

    @field_validator("save_steps")
    @classmethod
    def _not_negative(cls, steps: tuple[int, ...]) -> tuple[int, ...]:
        if any(s < 0 for s in steps):
            raise ValueError("save steps must be >= 0 (0: the random initialisation)")
        return tuple(sorted(set(steps)))

    @model_validator(mode="after")
    def _heads_divide_hidden(self) -> Config:
        if self.hidden % self.heads:
            raise ValueError(
                f"--hidden ({self.hidden}) must be a multiple of --heads ({self.heads})"
            )
        return self

    def pretrain_config(self):
        """The :class:`~weightscape.training.pretrain.PretrainConfig` of the pretraining run."""
        from weightscape.training.pretrain import PretrainConfig

        tokenizer = {} if self.tokenizer is None else {"tokenizer": self.tokenizer}
        return PretrainConfig(
            name=self.name,
            hidden_size=self.hidden,
            num_layers=self.layers,
            num_heads=self.heads,
            intermediate_size=self.intermediate,
            max_length=self.max_length,
            steps=self.steps,
            batch_size=self.batch_size,
            lr=self.lr,
            mask_probability=self.mask_probability,
            seed=self.seed,
            save_steps=self.save_steps,
            **tokenizer,
        )

    def study(self):
        """The :class:`~weightscape.analyses.pretraining.PretrainingStudy` at each checkpoint."""
        from weightscape.analyses.pretraining import PretrainingStudy

        return PretrainingStudy(
            task_a=self.task_a,
            task_b=self.task_b,
            finetune_steps=self.finetune_steps,
            lr=self.finetune_lr,
            max_length=self.max_length,
            train_size=self.train_size or None,
            eval_size=self.eval_size,
            probe_train=self.probe_train,
            points=self.points,
            mlm_eval_size=self.mlm_eval_size,
        )

    def estimated_points(self, models: int | None = None) -> int:
        """Points evaluated: three walks at each studied checkpoint, and the masked-LM line
        between each pair of consecutive ones."""
        saved = {s for s in self.save_steps if s <= self.steps} | {self.steps}
        lines = len(saved) - 1 if self.mlm_eval_size else 0
        return 3 * self.points * len(saved) + self.points * lines


def run(config: Config) -> dict:
    """Pretrain (or read back a finished run), then study every saved checkpoint.

    Checkpoints go under ``config.out/pretrain``, finetuned runs under ``config.out/finetuned``
    and every point into ``config.out/results.sqlite``, so a rerun resumes.

    Returns:
        :func:`~weightscape.analyses.pretraining.pretrain_and_study`'s JSON-able result.
    """
    from weightscape.analyses.pretraining import pretrain_and_study

    return pretrain_and_study(
        config.pretrain_config(),
        config.study(),
        config.out,
        text_source=config.text_source,
        num_texts=config.texts or None,
        device=config.device,
        progress=config.progress,
    )
