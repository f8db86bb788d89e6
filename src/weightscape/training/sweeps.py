"""Zoo files: many finetuning runs described once, trained into one zoo, resumably.

A zoo file gives a name prefix, optionally the task, the settings every run shares (``base:``,
any :class:`~weightscape.training.finetune.FinetuneConfig` option), and what varies: ``sweep:``
lists values per factor and takes their cross product; ``runs:`` lists explicit runs (each a set
of overrides, optionally named). With both, every run is crossed with the sweep. Example::

    name: rt
    task: {name: rotten_tomatoes, split: train}
    base: {base: minilm, steps: 200, batch_size: 32}
    runs:
      - {method: full, lr: 2.0e-5}
      - {method: lora, lr: 1.0e-3}
    sweep:
      head_seed: [0, 1, 2]
      data_half: [0, 1]

gives 12 runs named like ``rt-lora-lr0.001-head2-half1``. The file is validated once and every
problem in it is reported together. :func:`run_sweep` skips runs already finished in the output
folder, so an interrupted sweep resumes where it stopped.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, field_validator

from weightscape.data import Task
from weightscape.errors import WeightscapeError, unknown_name_error
from weightscape.settings import problem_lines
from weightscape.training.finetune_config import FinetuneConfig, flat_fields
from weightscape.validation import check_folder_name

# The factors a sweep varies, in the order they appear in run names, with their name labels.
AXES = {
    "method": "",
    "lr": "lr",
    "batch_size": "bs",
    "steps": "steps",
    "data_seed": "data",
    "head_seed": "head",
    "module_seed": "module",
    "init_noise_seed": "noise",
    "data_half": "half",
    "train_size": "n",
}
_FROZEN = ConfigDict(frozen=True, extra="forbid")


# FinetuneConfig's options as zoo files spell them: the tuning method flat (``method: lora``,
# ``lora_r: 4``), in the flat config's order (run names list their options in this order).
_OPTIONS = flat_fields()


def _constrained(option: str) -> Any:
    """The type of one FinetuneConfig option with its constraints (ge, gt, validators...)."""
    annotation, info = _OPTIONS[option]
    if not info.metadata:
        return annotation
    return Annotated[(annotation, *info.metadata)]


def _values_of(option: str) -> Any:
    """A non-empty tuple of values of one FinetuneConfig option."""
    return Annotated[tuple[_constrained(option), ...], Field(min_length=1)]


# Derived from FinetuneConfig so that the two cannot drift apart.
SweepAxes = create_model(
    "SweepAxes",
    __config__=_FROZEN,
    __doc__="Values per factor; the runs are their cross product.",
    **{axis: (_values_of(axis) | None, None) for axis in AXES},
)
RunOverrides = create_model(
    "RunOverrides",
    __config__=_FROZEN,
    __doc__="One explicit run: FinetuneConfig options that differ from ``base``.",
    **{option: (_constrained(option) | None, None) for option in _OPTIONS},
)


class TaskSpec(BaseModel):
    """The training data, as the CLI's task options describe it."""

    model_config = _FROZEN
    name: str
    text_columns: tuple[str, ...] | None = None
    label_column: str | None = None
    split: str = Field("train", pattern="^(train|validation|test|all)$")
    split_seed: int = 0
    subset: int | None = Field(None, ge=1)
    subset_seed: int = 0

    def load(self) -> Task:
        """Load, split and subset the task."""
        from weightscape.data import load_task, split, subset

        options: dict[str, Any] = {}
        if self.text_columns:
            options["text_columns"] = self.text_columns
        if self.label_column:
            options["label_column"] = self.label_column
        task = load_task(self.name, **options)
        if self.split != "all":
            task = split(task, seed=self.split_seed)[self.split]
        return task if self.subset is None else subset(task, self.subset, seed=self.subset_seed)


class ZooFile(BaseModel):
    """A zoo file, validated once."""

    model_config = _FROZEN
    name: str

    @field_validator("name")
    @classmethod
    def _folder_name(cls, name: str) -> str:
        return check_folder_name(name)  # the prefix of run names, the same rule as theirs

    task: TaskSpec | None = None
    base: RunOverrides = Field(default_factory=RunOverrides)
    sweep: SweepAxes = Field(default_factory=SweepAxes)
    runs: tuple[RunOverrides, ...] = ()


def load_zoo_file(path: str | Path) -> ZooFile:
    """Read and validate a zoo file; raises one error listing every problem."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise WeightscapeError(f"Zoo file '{path}' does not exist.")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise WeightscapeError(f"Cannot parse zoo file '{path}': {err}") from err
    try:
        zoo_file = ZooFile.model_validate(raw)
        expand(zoo_file)  # names and whole configs are checked too
    except ValidationError as err:
        raise WeightscapeError(f"Zoo file '{path}' is invalid:\n  {_problems(err)}") from err
    except WeightscapeError as err:
        raise WeightscapeError(f"Zoo file '{path}' is invalid:\n  {err}") from err
    return zoo_file


def _problems(err: ValidationError) -> str:
    return "\n  ".join(problem_lines(err, unknown=_unknown_key))


def _unknown_key(loc: tuple) -> str:
    """'sweeep: unknown key. Did you mean 'sweep'? Valid: ...' for the section it is in."""
    section = {"base": RunOverrides, "runs": RunOverrides, "sweep": SweepAxes, "task": TaskSpec}
    model = section.get(str(loc[0]), ZooFile) if len(loc) > 1 else ZooFile
    return str(unknown_name_error("key", str(loc[-1]), model.model_fields))


def expand(zoo_file: ZooFile) -> list[FinetuneConfig]:
    """The named runs a zoo file describes: each explicit run crossed with the sweep."""
    base = zoo_file.base.model_dump(exclude_none=True, exclude={"name"})
    axes = {a: v for a, v in zoo_file.sweep.model_dump().items() if v is not None}
    configs, problems = [], []
    if zoo_file.base.name is not None:
        problems.append("base.name: give the runs' name prefix as the top-level 'name'")
    for i, run in enumerate(zoo_file.runs or (RunOverrides(),)):
        overrides = run.model_dump(exclude_none=True)
        prefix = overrides.pop("name", None) or _name(zoo_file.name, overrides)
        for combo in itertools.product(*axes.values()):
            varied = dict(zip(axes, combo, strict=True))
            name = _name(prefix, varied)
            try:
                configs.append(
                    FinetuneConfig.model_validate({**base, **overrides, **varied, "name": name})
                )
            except ValidationError as err:
                problems.append(f"run '{name}' (runs.{i}): {_problems(err)}")
    names = [c.name for c in configs]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        problems.append(f"runs share names: {', '.join(repeated)}; give each a 'name'")
    if problems:
        raise WeightscapeError("\n  ".join(problems))
    return configs


def _name(prefix: str, values: dict[str, Any]) -> str:
    """``prefix`` plus a label per varied factor: the method, and ``key+value`` for numbers.

    >>> _name("rt", {"method": "lora", "lr": 0.001, "head_seed": 2, "lora_r": 4})
    'rt-lora-lr0.001-head2-lora_r4'
    """
    labels = []
    for key, value in values.items():
        if key == "method":
            labels.append(value)
        elif isinstance(value, float):
            labels.append(f"{AXES.get(key, key)}{value:g}")
        elif isinstance(value, int):  # paths and lists do not make names; name such runs
            labels.append(f"{AXES.get(key, key)}{value}")
    return "-".join([prefix, *labels])


@dataclass
class SweepReport:
    """What :func:`run_sweep` did: run names trained now and skipped as already finished."""

    trained: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def run_sweep(
    configs: list[FinetuneConfig],
    train: Task,
    out_dir: str | Path,
    *,
    progress: bool = False,
    device: str = "cpu",
) -> SweepReport:
    """Train every run into ``out_dir`` (one ``zoo.yaml``), skipping finished ones.

    A run is finished when its final checkpoint and its training log exist (the log is written
    last). A finished run whose logged config differs from the requested one is an error, not a
    skip: the folder would otherwise hold a model the file no longer describes.
    """
    from weightscape.training.finetune import finetune

    out_dir = Path(out_dir)
    report = SweepReport()
    for config in configs:
        if _finished(config, out_dir):
            report.skipped.append(config.name)
            continue
        finetune(config, train, out_dir, progress=progress, device=device)
        report.trained.append(config.name)
    return report


def _finished(config: FinetuneConfig, out_dir: Path) -> bool:
    run_dir = out_dir / config.name
    log = run_dir / "train_log.json"
    last = run_dir / f"step-{config.steps}"
    weights = ("model.safetensors", "adapter_model.safetensors")  # LoRA runs: peft folders
    if not (log.is_file() and any((last / name).is_file() for name in weights)):
        return False
    logged = _logged_settings(json.loads(log.read_text()).get("config"))
    wanted = config.flat()
    if logged != wanted:
        keys = sorted(set(wanted) | set(logged or {}))
        changed = [k for k in keys if logged is None or logged.get(k) != wanted.get(k)]
        raise WeightscapeError(
            f"Run '{config.name}' in '{out_dir}' was trained with other settings "
            f"({', '.join(changed)} differ). Use another --out, rename the run, or delete "
            f"'{run_dir}' to retrain it."
        )
    return True


def _logged_settings(logged: Any) -> dict[str, Any] | None:
    """A training log's config in flat form, None if it is not one.

    The log is read as a config is: an option missing from it (a run logged before the option
    existed) was trained with its default, and the flat tuning keys of older logs (``method``,
    ``lora_r``...) mean the ``tuning`` they fold into.
    """
    if not isinstance(logged, dict):
        return None
    try:
        return FinetuneConfig.model_validate(logged).flat()
    except ValidationError:
        return None
