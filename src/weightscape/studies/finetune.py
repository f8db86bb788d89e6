"""Finetune one classifier, or every run of a zoo file, into a zoo: the ``finetune`` command.

The run fields are :class:`~weightscape.training.finetune_config.FinetuneConfig`'s, derived from
it (:func:`~weightscape.training.finetune_config.flat_fields`), so every option is a flag with the
config's default and constraints; the tuning method is spelled flat, ``--method lora --lora-r 4``
(every registered method's options are ``--<method>-<option>`` flags,
:mod:`weightscape.models.tuning`), and :func:`run` builds the FinetuneConfig, which folds them into
its ``tuning`` spec. A zoo file (``--zoo-file``, :mod:`weightscape.training.sweeps`) describes many
runs instead; the task fields apply when it names no task. Checkpoints go to ``OUT/NAME/step-K``
and their entries to ``OUT/zoo.yaml``, which later study steps take as their ``zoo``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

from pydantic import Field, ValidationError, create_model, field_validator, model_validator

from weightscape.settings import problem_lines
from weightscape.studies.common import Device, Split, StudyConfig, TaskFields

# FinetuneConfig's module is pydantic-only (no torch, numpy or data): validation stays instant.
from weightscape.training.finetune_config import FinetuneConfig, RunName, flat_fields, flat_options


def _run_fields() -> dict[str, Any]:
    fields = flat_fields()
    _, info = fields["name"]
    fields["name"] = (
        RunName | None,
        Field(None, description=f"{info.description}; required unless --zoo-file is given"),
    )
    return fields


RunFields = create_model(
    "RunFields",
    __base__=StudyConfig,
    __doc__="FinetuneConfig's fields, the tuning method spelled flat (--method, --lora-r...).",
    **_run_fields(),
)
RUN_FIELDS: tuple[str, ...] = tuple(RunFields.model_fields)


# A study file's shared ``evaluation:`` block is not applied to training steps.
SHARES_EVALUATION = False


class Config(TaskFields, RunFields):
    """One finetuning run (``name`` and its settings), or a zoo file's runs."""

    split: Split = Field("train", description="which seeded 8:1:1 split to train on")
    zoo_file: Path | None = Field(
        None,
        description="YAML file describing many runs (a sweep); trains them all into OUT, skipping "
        "finished ones. It replaces the run options; the task options apply when it names no "
        "task (see examples/zoos/sweep_seeds.yaml)",
    )
    out: Path = Field(
        Path("weightscape-out/zoo"),
        description="zoo folder; checkpoints go to OUT/NAME/step-K, entries to OUT/zoo.yaml",
    )
    device: Device = Field(
        "cpu", description="where to train: cpu, auto (GPU if present), cuda, cuda:N"
    )
    progress: bool = Field(True, description="show progress bars")

    @field_validator("tags", mode="before")
    @classmethod
    def _tag_list(cls, tags: Any) -> Any:
        """``family=nli,size=small`` (a flag) as a dict; numbers stay numbers."""
        if isinstance(tags, str):
            tags = [item for item in tags.split(",") if item.strip()]
        if not isinstance(tags, list | tuple):
            return tags
        pairs = {}
        for item in tags:
            key, sep, value = str(item).partition("=")
            if not sep or not key.strip():
                raise ValueError(f"give tags as key=value,key=value; '{item}' is not key=value")
            pairs[key.strip()] = _number_or_text(value.strip())
        return pairs

    @model_validator(mode="after")
    def _one_source(self) -> Config:
        given = [name for name in RUN_FIELDS if name in self.model_fields_set]
        if self.zoo_file is not None:
            if given:
                flags = ", ".join(self.flag_of(name) for name in given)
                raise ValueError(
                    f"--zoo-file describes the runs and their settings; do not also give {flags} "
                    "(put them in the file's base: section)"
                )
            return self
        if self.name is None:
            raise ValueError("give --name for one run, or --zoo-file for many")
        owners = flat_options()
        other = [n for n in given if n in owners and owners[n][0] != self.method]
        if other:
            flags = ", ".join(self.flag_of(name) for name in other)
            methods = ", ".join(sorted({owners[name][0] for name in other}))
            raise ValueError(
                f"{flags} only appl{'ies' if len(other) == 1 else 'y'} to --method {methods}; "
                f"this run uses --method {self.method}"
            )
        try:  # the run's own rules across fields (save steps within the steps, ...)
            self.finetune_config()
        except ValidationError as err:
            names = {name: self.flag_of(name) for name in RUN_FIELDS}
            raise ValueError(
                "; ".join(p.rstrip(".") for p in problem_lines(err, names=names))
            ) from None
        return self

    def finetune_config(self) -> FinetuneConfig:
        """The run's :class:`FinetuneConfig` (the flat method options fold into ``tuning``)."""
        return FinetuneConfig.model_validate({name: getattr(self, name) for name in RUN_FIELDS})


def _number_or_text(value: str) -> str | int | float:
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


class FinetuneRun(NamedTuple):
    """What :func:`run` did.

    Attributes:
        saved: The checkpoints one run saved (empty for a zoo file), in step order.
        trained: Runs trained now.
        skipped: A zoo file's runs already finished in ``out`` (not trained again).
        manifest: The zoo manifest the checkpoints were recorded in.
    """

    saved: tuple[Any, ...]
    trained: tuple[str, ...]
    skipped: tuple[str, ...]
    manifest: Path


def run(config: Config) -> FinetuneRun:
    """Train the run (or the zoo file's unfinished runs) into ``config.out``."""
    manifest = config.out / "zoo.yaml"
    if config.zoo_file is not None:
        from weightscape.training.sweeps import expand, load_zoo_file, run_sweep

        zoo_file = load_zoo_file(config.zoo_file)
        task = zoo_file.task.load() if zoo_file.task is not None else config.load_task()
        report = run_sweep(
            expand(zoo_file), task, config.out, progress=config.progress, device=config.device
        )
        return FinetuneRun((), tuple(report.trained), tuple(report.skipped), manifest)
    from weightscape.training.finetune import finetune

    run_config = config.finetune_config()
    saved = finetune(
        run_config, config.load_task(), config.out, progress=config.progress, device=config.device
    )
    return FinetuneRun(tuple(saved), (run_config.name,), (), manifest)
