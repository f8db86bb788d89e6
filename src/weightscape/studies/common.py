"""Field groups that many studies share, as frozen pydantic models: the one source of truth.

Each study's ``Config`` inherits the groups it needs (a task, evaluation settings, a parameter
space, the generalised loss, anchors). CLI flags are generated from these fields
(:mod:`weightscape.cli.flags`) and study files are validated by them, so a default is the same
from Python, the shell and YAML. Fields carry their constraints and descriptions; cross-field
rules live in validators whose messages name the flags.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)

SPLITS = ("train", "validation", "test", "all")
Split = Literal["train", "validation", "test", "all"]


def _device(device: str) -> str:
    if not (device in ("auto", "cpu", "mps") or device.split(":")[0] == "cuda"):
        raise ValueError("must be auto, cpu, cuda or cuda:N")
    return device


Device = Annotated[str, AfterValidator(_device)]
"""Where a study computes: ``auto`` (the GPU when present), ``cpu``, ``cuda``, ``cuda:N``."""


def resolve_checkpoints(
    anchors, zoo: Path | None, config: Path | None, adapter_base: Path | None = None
) -> list[Any]:
    """Checkpoints by path, or by name in the ``zoo`` manifest (a path that exists wins).

    ``adapter_base`` is the base model of the anchors that are peft adapter folders
    (``--adapter-base``); a flag that no anchor uses is refused rather than ignored.
    """
    from weightscape.errors import WeightscapeError
    from weightscape.models.checkpoint import Checkpoint
    from weightscape.models.peft_anchor import is_adapter_folder
    from weightscape.models.zoo import Zoo

    manifest = Zoo.from_manifest(zoo) if zoo is not None else None
    by_path = [manifest is None or Path(a).exists() for a in anchors]
    adapters = [use and is_adapter_folder(a) for a, use in zip(anchors, by_path, strict=True)]
    if adapter_base is not None and not any(adapters):
        raise WeightscapeError(
            f"--adapter-base '{adapter_base}' was given, but none of the checkpoints "
            f"({', '.join(map(str, anchors))}) is a peft adapter folder (adapter_config.json). "
            "Drop --adapter-base, or give the adapter folders."
        )
    return [
        Checkpoint.from_path(a, config=config, adapter_base=adapter_base if adapter else None)
        if use
        else manifest[a]
        for a, use, adapter in zip(anchors, by_path, adapters, strict=True)
    ]


def check_output(path: Path, folder: bool = True) -> Path:
    """``path`` if results can be written there, else a ValueError saying why.

    An output folder that exists must be a folder, an output file (a store) must not be one;
    the nearest existing parent must be writable (nothing is created here).
    """
    path = Path(path)
    if path.exists() and path.is_dir() != folder:
        kind = "a file" if folder else "a folder"
        raise ValueError(f"'{path}' exists and is {kind}; give another path")
    parent = path if path.is_dir() else path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not os.access(parent, os.W_OK):
        raise ValueError(f"cannot write in '{parent}'; give a writable path")
    return path


def positional(description: str, **kwargs: Any) -> Any:
    """A field given on the command line without a flag (``weightscape interpolate A B``)."""
    return Field(description=description, json_schema_extra={"positional": True}, **kwargs)


def repeated(description: str, **kwargs: Any) -> Any:
    """A list field given by repeating its flag (``--include a --include b``)."""
    return Field(description=description, json_schema_extra={"repeat": True}, **kwargs)


class StudyConfig(BaseModel):
    """Base of every study's settings: frozen, unknown keys refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    @field_validator("out", "store", check_fields=False)
    @classmethod
    def _writable_output(cls, path: Path | None, info: ValidationInfo) -> Path | None:
        """Refuse an output that cannot be written before any work is done (a file where a
        folder must go, or a place this process may not write)."""
        if path is None:
            return None
        return check_output(path, folder=info.field_name == "out")

    @classmethod
    def flag_of(cls, field: str) -> str:
        """How a field is written on the command line (``batch_size`` -> ``--batch-size``)."""
        extra = cls.model_fields[field].json_schema_extra or {}
        if isinstance(extra, dict) and extra.get("positional"):
            return field.upper()
        return "--" + field.replace("_", "-")


class TableFields(StudyConfig):
    """A task and how to read it when it is a table file; how it is split."""

    task: str = Field(
        "rotten_tomatoes",
        description="built-in dataset name, or a CSV/TSV/JSONL/parquet file or saved datasets "
        "folder, or text:PATH (documents of a text file, one per line, or of a JSONL file or "
        "datasets folder's text column) scored by the anchors' language-model loss",
    )
    text_columns: tuple[str, ...] | None = Field(
        None, min_length=1, max_length=2, description="input column(s) of a file task"
    )
    label_column: str | None = Field(None, description="label column of a file task")
    split_seed: int = Field(0, description="seed of the 8:1:1 split")

    def table_options(self) -> dict[str, Any]:
        """Options for a table file task (none for built-in tasks)."""
        options: dict[str, Any] = {}
        if self.label_column:
            options["label_column"] = self.label_column
        if self.text_columns:
            options["text_columns"] = self.text_columns
        return options

    def task_splits(self) -> dict[str, Any]:
        """The task's seeded 8:1:1 splits by name."""
        from weightscape.data import load_task, split

        return split(load_task(self.task, **self.table_options()), seed=self.split_seed)


class TaskFields(TableFields):
    """The examples a study evaluates on: a task, its split and a seeded subset."""

    split: Split = Field("test", description="which seeded 8:1:1 split to use")
    subset: int | None = Field(
        None, ge=1, description="evaluate on this many random examples of the split (e.g. 512)"
    )
    subset_seed: int = Field(0, description="seed of the subset")

    def load_task(self):
        """Load, split and subset the task these fields describe."""
        from weightscape.data import load_task, split, subset

        task = load_task(self.task, **self.table_options())
        if self.split != "all":
            task = split(task, seed=self.split_seed)[self.split]
        if self.subset is not None:
            task = subset(task, self.subset, seed=self.subset_seed)
        return task


class EvalFields(StudyConfig):
    """How points are evaluated and where their results are stored."""

    batch_size: int = Field(64, ge=1, description="evaluation batch size")
    max_length: int = Field(128, ge=2, description="truncate evaluated inputs to N tokens")
    device: Device = Field("auto", description="auto (GPU if present), cpu, cuda, cuda:N")
    label_map: str | None = Field(
        None,
        description="map model classes to the task's, e.g. mnli_to_hans (3-class NLI models on "
        "2-class diagnostics)",
    )
    model_labels: tuple[str, ...] | None = Field(
        None,
        min_length=1,
        description="the class each output column of the model means, in column order, for "
        "checkpoints whose config.json names no labels; default: read from id2label and matched "
        "to the task's labels by name",
    )
    dtype: Literal["float32", "bfloat16", "float16", "anchors"] = Field(
        "float32",
        description="dtype the points are evaluated in: float32 whatever the anchors hold, "
        "bfloat16, float16, or anchors (the anchors' own dtype when they all agree); each "
        "combination is computed in float32 and cast once",
    )
    mask_seed: int = Field(
        0,
        ge=0,
        description="seed of the fixed mask (15% of each document's tokens) when a masked "
        "language model scores a text task",
    )
    store: Path | None = Field(
        None, description="results store (SQLite); default: OUT/results.sqlite"
    )
    progress: bool = Field(True, description="show progress bars")

    @field_validator("label_map")
    @classmethod
    def _label_map(cls, name: str | None) -> str | None:
        from weightscape.errors import WeightscapeError
        from weightscape.evaluation.label_maps import get_label_map

        if name is not None:
            try:
                get_label_map(name)  # lists the valid names; a retired one names its successors
            except WeightscapeError as err:
                raise ValueError(str(err)) from None
        return name

    def eval_settings(self):
        """The engine's :class:`~weightscape.evaluation.evaluator.EvalSettings`."""
        from weightscape.evaluation.evaluator import EvalSettings

        return EvalSettings(
            batch_size=self.batch_size,
            max_length=self.max_length,
            label_map=self.label_map,
            model_labels=self.model_labels,
            dtype=self.dtype,
            mask_seed=self.mask_seed,
        )

    def results_store(self, out: Path):
        """The results store: ``store`` when given, else ``out/results.sqlite``."""
        from weightscape.runtime.store import ResultStore

        return ResultStore(self.store or Path(out) / "results.sqlite")


class SpaceFields(StudyConfig):
    """Which tensors a combination mixes (the rest come from the reference anchor)."""

    space: Literal["all", "no-head", "biases", "tuned"] = Field(
        "all",
        description="all, no-head, biases or tuned (LoRA/adapter tensors and the head)",
    )
    include: tuple[str, ...] = repeated(
        "only mix tensors whose name matches this regex (repeatable)", default=()
    )
    exclude: tuple[str, ...] = repeated(
        "never mix tensors whose name matches this regex (repeatable)", default=()
    )

    def parameter_space(self):
        """The :class:`~weightscape.models.space.ParameterSpace` these fields describe."""
        from weightscape.models.space import ParameterSpace

        return ParameterSpace(preset=self.space, include=self.include, exclude=self.exclude)


class ProbeFields(TaskFields):
    """The generalised loss (Gueta et al. 2023): a fresh linear head per point."""

    probe_train: int | None = Field(
        None,
        ge=1,
        description="score every point by a linear head fitted on N examples of the task's train "
        "split over the point's frozen encoder; off by default",
    )
    probe_c: float = Field(1.0, gt=0, description="the probe's inverse L2 strength")

    def probe(self):
        """The :class:`~weightscape.evaluation.probe.Probe`, or None when ``probe_train`` is off.

        Raises:
            WeightscapeError: When the evaluated split is the one the probe trains on.
        """
        if self.probe_train is None:
            return None
        from weightscape.data import subset
        from weightscape.errors import WeightscapeError
        from weightscape.evaluation.probe import Probe, ProbeSettings

        if self.split in ("train", "all"):
            raise WeightscapeError(
                "--probe-train fits the probe on the train split, so evaluate on another split "
                f"(--split validation or test), not '{self.split}'."
            )
        return Probe(
            subset(self.task_splits()["train"], self.probe_train, seed=self.subset_seed),
            ProbeSettings(c=self.probe_c),
        )


class AnchorFields(StudyConfig):
    """Checkpoints given by path (or by name in a zoo manifest), and how to read them."""

    anchors: tuple[str, ...] = positional("checkpoint paths, or names in --zoo", min_length=1)
    zoo: Path | None = Field(None, description="zoo manifest that resolves anchor names")
    config: Path | None = Field(
        None, description="reference config folder for bare .safetensors/.bin files"
    )
    tokenizer: Path | None = Field(None, description="tokenizer folder (default: the anchor's)")
    adapter_base: Path | None = Field(
        None,
        description="base model folder of the anchors that are peft adapter folders, when "
        "their adapter_config.json names no local base",
    )

    def checkpoints(self):
        """The anchors as checkpoints: a path that exists wins over a name in ``zoo``."""
        return resolve_checkpoints(self.anchors, self.zoo, self.config, self.adapter_base)

    def tokenizer_folder(self) -> Path | None:
        """``tokenizer``, else the zoo's tokenizer, else None (each anchor's own)."""
        if self.tokenizer is not None or self.zoo is None:
            return self.tokenizer
        from weightscape.models.zoo import Zoo

        return Zoo.from_manifest(self.zoo).tokenizer


def engine_spec(config: Any, anchors: Any = None, tokenizer: Path | None = None):
    """The :class:`~weightscape.evaluation.engine.EngineSpec` a study's fields describe: its
    anchors (``config.checkpoints()`` unless given), task, space, evaluation settings, device,
    tokenizer and probe."""
    from weightscape.evaluation.engine import EngineSpec

    return EngineSpec(
        tuple(config.checkpoints() if anchors is None else anchors),
        config.load_task(),
        space=config.parameter_space(),
        settings=config.eval_settings(),
        device=config.device,
        tokenizer=tokenizer if tokenizer is not None else config.tokenizer_folder(),
        probe=config.probe(),
    )
