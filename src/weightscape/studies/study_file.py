"""Study files: a whole analysis as data, validated at once, then run step by step.

A study file names its output folder, optionally a zoo manifest, settings shared by its steps,
and an ordered list of steps, each one study with its config::

    # weightscape run examples/studies/basins.yaml
    name: nli-basins
    out: weightscape-out/nli-basins
    evaluation: {task: mnli_like, split: validation, subset: 512}
    steps:
      - finetune: {zoo_file: ../zoos/nli_seeds.yaml, out: zoo}
      - grid: {points: 11}
      - basins: {diagnostic: [hans_like_lexical_overlap_non_entailing]}

Later steps use earlier steps' outputs: a ``finetune`` step's ``zoo.yaml`` becomes the ``zoo`` of
every later step that takes one (until another finetune step), the last ``grid`` step's folder
the ``grid`` of ``basins``; every step writes into ``OUT/NN-STEP`` (or ``OUT/<its out>``), and
all steps share one results store, ``OUT/results.sqlite``, so nothing is evaluated twice and a
killed run resumes.
``evaluation`` settings apply to every evaluating step whose config has them (not to training
steps such as ``finetune``, whose module sets ``SHARES_EVALUATION = False``); a step's own value
wins.
Relative input paths (zoo, zoo_file, grid, config, tokenizer, task files) are relative to the
study file's folder. Every problem in the file is reported together, each by its YAML path
(``steps[2].grid.points``), before anything runs; ``key=value`` overrides
(``steps.0.grid.points=26``) are applied first.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from weightscape.errors import WeightscapeError, unknown_name_error
from weightscape.settings import problem_lines

# Step names whose study module is named otherwise.
MODULE_OF = {"pretrain": "pretraining", "mean-path": "mean_path", "run-distance": "run_distance"}
INPUT_PATHS = ("zoo", "zoo_file", "grid", "config", "tokenizer", "from_run", "adapter_base")
TASK_FIELDS = ("task", "source_task", "target_task", "task_a", "task_b")


class StudyFile(BaseModel):
    """The top level of a study file."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str = Field(description="the study's name (reports and plans show it)")
    out: Path = Field(Path("weightscape-out/study"), description="output folder of every step")
    zoo: Path | None = Field(None, description="zoo manifest the steps start from")
    evaluation: dict[str, Any] = Field(
        default_factory=dict, description="settings shared by every step that takes them"
    )
    steps: list[dict[str, dict[str, Any] | None]] = Field(min_length=1)


@dataclass
class Step:
    """One validated step: its study name, module and config."""

    name: str
    module: Any
    config: Any


@dataclass
class Study:
    """A validated study file."""

    name: str
    path: Path
    out: Path
    steps: list[Step] = field(default_factory=list)


def step_names() -> list[str]:
    """The studies a step can name: every module of :mod:`weightscape.studies` with a
    ``Config`` and a ``run`` (a new study module is a new step, with nothing to register),
    except those that say ``STUDY_STEP = False`` (``show`` reads a store; it is no step)."""
    import weightscape.studies as package

    step_of = {v: k for k, v in MODULE_OF.items()}
    names = []
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"weightscape.studies.{info.name}")
        if not getattr(module, "STUDY_STEP", True):
            continue
        if hasattr(module, "Config") and callable(getattr(module, "run", None)):
            names.append(step_of.get(info.name, info.name))
    return sorted(names)


def study_module(name: str) -> Any:
    """The study module of step ``name``."""
    return importlib.import_module(f"weightscape.studies.{MODULE_OF.get(name, name)}")


def apply_overrides(raw: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Apply ``a.b.0.c=value`` overrides (values parsed as YAML) to the raw study dict.

    >>> apply_overrides({"steps": [{"grid": {"points": 11}}]}, ["steps.0.grid.points=26"])
    {'steps': [{'grid': {'points': 26}}]}
    """
    import yaml

    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise WeightscapeError(
                f"Override '{item}' is not of the form key=value (e.g. steps.0.grid.points=26)."
            )
        *parents, last = key.split(".")
        node: Any = raw
        try:
            for part in parents:
                node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
            if isinstance(node, list):
                node[int(last)] = yaml.safe_load(text)
            else:
                node[last] = yaml.safe_load(text)
        except (IndexError, ValueError, TypeError, AttributeError) as err:
            raise WeightscapeError(
                f"Override '{item}': '{key}' does not name a place in the study file ({err})."
            ) from None
    return raw


def load_study(path: str | Path, overrides: Sequence[str] = ()) -> Study:
    """Read, override and validate a study file; every problem is reported together.

    Raises:
        WeightscapeError: Listing each problem with its YAML path.
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        raise WeightscapeError(f"Study file '{path}' does not exist.")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise WeightscapeError(f"Cannot parse study file '{path}': {err}") from None
    if not isinstance(raw, dict):
        raise WeightscapeError(f"Study file '{path}' must be a mapping with 'name' and 'steps'.")
    raw = apply_overrides(raw, overrides)
    try:
        top = StudyFile.model_validate(raw)
    except ValidationError as err:
        raise _invalid(path, _lines(err, "")) from None
    study = Study(name=top.name, path=path, out=top.out)
    problems = _build_steps(study, top, path.parent)
    if problems:
        raise _invalid(path, problems)
    return study


def _invalid(path: Path, problems: list[str]) -> WeightscapeError:
    return WeightscapeError(
        f"Study file '{path}' has {len(problems)} problem(s); nothing was run:\n  "
        + "\n  ".join(problems)
    )


def _lines(err: ValidationError, prefix: str) -> list[str]:
    return problem_lines(err, prefix=prefix + "." if prefix else "")


def _build_steps(study: Study, top: StudyFile, root: Path) -> list[str]:
    problems: list[str] = []
    zoo = _input(top.zoo, root)
    grid: Path | None = None
    used: set[str] = set()
    names = step_names()
    for i, entry in enumerate(top.steps):
        where = f"steps[{i}]"
        if len(entry) != 1:
            problems.append(f"{where}: give exactly one study per step, e.g. '- grid: {{...}}'.")
            continue
        name, given = next(iter(entry.items()))
        if name not in names:
            problems.append(f"{where}: {unknown_name_error('study', name, names)}")
            continue
        module = study_module(name)
        fields = module.Config.model_fields
        # Evaluation settings are for steps that evaluate; a training step (finetune) has a
        # task and a max length of its own, which the shared block must not set.
        shared = getattr(module, "SHARES_EVALUATION", True)
        values = {k: v for k, v in top.evaluation.items() if shared and k in fields}
        used |= set(values)
        values = _inputs(values, root, fields)  # a task file next to the study, as in a step
        context = {
            "out": study.out / f"{i + 1:02d}-{name}",
            "store": study.out / "results.sqlite",
            "zoo": zoo,
            "grid": grid,
            "progress": False,
        }
        values.update({k: v for k, v in context.items() if k in fields and v is not None})
        values.update(_inputs(given or {}, root, fields))
        if isinstance((given or {}).get("out"), str) and not Path(given["out"]).is_absolute():
            values["out"] = study.out / given["out"]  # a step's own out lies in the study's
        if "models" in (given or {}):
            values.pop("zoo", None)  # a glob of models replaces the study's zoo
        try:
            config = module.Config.model_validate(values)
        except ValidationError as err:
            problems += _lines(err, f"{where}.{name}")
            continue
        study.steps.append(Step(name, module, config))
        if name == "finetune":
            zoo = Path(config.out) / "zoo.yaml"
        if name == "grid":
            grid = Path(config.out)
    for key in sorted(set(top.evaluation) - used):
        problems.append(f"evaluation.{key}: no step takes this setting.")
    return problems


def _input(value: Path | None, root: Path) -> Path | None:
    if value is None:
        return None
    return value if value.is_absolute() else root / value


def _inputs(given: dict[str, Any], root: Path, fields: dict[str, Any]) -> dict[str, Any]:
    """A step's own values with relative input paths made relative to the study file."""
    out = dict(given)
    for key in INPUT_PATHS:
        if isinstance(out.get(key), str) and not Path(out[key]).is_absolute():
            out[key] = str(root / out[key])
    for key in TASK_FIELDS:  # a task is a built-in name or a file: a file next to the study
        task = out.get(key)
        prefix = "text:" if isinstance(task, str) and task.startswith("text:") else ""
        path = task[len(prefix) :] if isinstance(task, str) else ""
        if key in fields and path and (root / path.split("::")[0]).exists():
            out[key] = prefix + str(root / path)  # text:PATH keeps its prefix, dir::split its split
    return out


def plan(study: Study) -> list[str]:
    """What ``run`` would do: each step, where it writes, and its estimated points."""
    lines = [f"study '{study.name}' ({study.path}): {len(study.steps)} step(s) into {study.out}"]
    for i, step in enumerate(study.steps, 1):
        estimate = getattr(step.config, "estimated_points", None)
        models = _models(step.config)
        points = estimate(models) if estimate is not None else None
        facts = [f"out {step.config.out}"] if "out" in type(step.config).model_fields else []
        if models is not None:
            facts.append(f"{models} models")
        if points is not None:
            facts.append(f"about {points} points")
        lines.append(f"  {i}. {step.name}: " + ", ".join(facts))
    return lines


def _models(config: Any) -> int | None:
    zoo = getattr(config, "zoo", None)
    if zoo is None or not Path(zoo).is_file():
        return None
    import yaml

    try:
        return len((yaml.safe_load(Path(zoo).read_text()) or {}).get("models", []))
    except (yaml.YAMLError, AttributeError):
        return None


def run_study(
    study: Study, render: Callable[[str, Any, Any], list[str]], command_line: str | None = None
) -> list[str]:
    """Run every step in order; ``render(step name, result, config)`` writes its outputs.

    Each step runs recorded (:mod:`weightscape.provenance`) and leaves ``run.json`` with its
    step number in its folder.

    Args:
        study: The validated study file.
        render: Writes a step's files; returns its terminal lines.
        command_line: What the user typed (default: ``weightscape run FILE``).

    Returns:
        The lines each step's rendering produced, under a heading per step.
    """
    from weightscape.outputs import writing
    from weightscape.provenance import RunRecord, summary_lines

    typed = command_line or f"weightscape run {study.path}"
    lines = []
    done: list[dict[str, Any]] = []
    for i, step in enumerate(study.steps, 1):
        lines.append(f"== step {i}/{len(study.steps)}: {step.name}")
        what = f"weightscape run {study.path} (step {i}: {step.name})"
        out = getattr(step.config, "out", None)
        facts = {"name": study.name, "file": str(study.path), "step": i}
        record = RunRecord(step.name, typed, step.config.model_dump(mode="json"), study=facts)
        with writing(out, what, record):  # marked until all is written
            lines += render(step.name, step.module.run(step.config), step.config)
        lines += summary_lines(record, out)
        done.append(_finished_step(i, step.name, out, study.out))
        _write_study_record(study, typed, done)
    return lines


STUDY_FILE = "study.json"
"""The study's own record in its ``out``: every finished step with its run record, in order
(steps that share a folder, such as several finetune steps into one zoo, each keep theirs)."""


def _finished_step(number: int, name: str, out: Path | None, top: Path) -> dict[str, Any]:
    import json

    from weightscape.provenance import RUN_FILE

    record = None
    if out is not None and (Path(out) / RUN_FILE).is_file():
        record = json.loads((Path(out) / RUN_FILE).read_text())
    folder = None
    if out is not None:
        folder = Path(out)
        folder = folder.relative_to(top) if folder.is_relative_to(top) else folder.resolve()
    return {"step": number, "name": name, "folder": str(folder), "run": record}


def _write_study_record(study: Study, typed: str, steps: list[dict[str, Any]]) -> None:
    from weightscape.outputs import write_json

    write_json(
        Path(study.out) / STUDY_FILE,
        {
            "schema": "weightscape.study/1",
            "name": study.name,
            "file": str(study.path),
            "command_line": typed,
            "steps": steps,
        },
    )
