"""Zoos: sets of named checkpoints of one architecture, with tags.

A zoo comes from a YAML or JSON manifest, or from a directory glob. Paths in a manifest are
relative to the manifest's folder. Example::

    base: ../pretrained          # optional: the pretrained model the zoo was finetuned from
                                 # (else the 'base' tag every model carries; see zoo_base)
    config: ../pretrained        # optional: reference config for bare weight files
    models:
      - name: rt-seed0
        path: rt-seed0/step-200
        tags: {dataset: rotten_tomatoes, head_seed: 0, data_seed: 0, method: full, step: 200}

A model's ``path`` may be a peft LoRA adapter folder; its base model is its entry's
``adapter_base:`` (a folder, or a built-in name such as ``minilm``), else the manifest's
top-level ``adapter_base:``, else the local ``base_model_name_or_path`` of its
``adapter_config.json`` (:mod:`.peft_anchor`).

A zoo holds descriptors only; tensors are read on demand.
"""

from __future__ import annotations

import glob as globlib
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from weightscape.errors import WeightscapeError
from weightscape.models.checkpoint import Checkpoint
from weightscape.outputs import write_text
from weightscape.settings import problem_lines


class ModelEntry(BaseModel):
    """One model in a zoo manifest."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str
    path: str
    config: str | None = None
    tags: dict[str, Any] = Field(default_factory=dict)
    adapter_base: str | None = None  # the base model folder of a peft adapter folder


class ZooManifest(BaseModel):
    """A zoo manifest file, validated once."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    base: str | None = None
    config: str | None = None
    tokenizer: str | None = None
    adapter_base: str | None = None  # the default base of the zoo's peft adapter folders
    models: list[ModelEntry]


class Zoo:
    """Named checkpoints of one architecture, optionally with the base they came from.

    The base a command uses is :func:`weightscape.models.zoo_base.resolve_base`'s, which checks
    ``base`` against the models' ``base`` tags.
    """

    def __init__(
        self,
        checkpoints: list[Checkpoint],
        base: Checkpoint | None = None,
        tokenizer: Path | None = None,
        root: Path | None = None,
    ) -> None:
        names = [c.name for c in checkpoints]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise WeightscapeError(
                f"The zoo names these models more than once: "
                f"{', '.join(duplicates)}. Give each model a unique name."
            )
        self.checkpoints = checkpoints
        self.base = base
        self.tokenizer = tokenizer
        self.root = root  # the manifest's folder: relative 'base' tags start there (None: cwd)

    def __len__(self) -> int:
        return len(self.checkpoints)

    def __iter__(self):
        return iter(self.checkpoints)

    def names(self) -> list[str]:
        """Model names in zoo order."""
        return [c.name for c in self.checkpoints]

    def __getitem__(self, name: str) -> Checkpoint:
        for checkpoint in self.checkpoints:
            if checkpoint.name == name:
                return checkpoint
        raise WeightscapeError(
            f"The zoo has no model named '{name}'. Models: {', '.join(self.names())}."
        )

    @classmethod
    def from_manifest(cls, path: str | Path) -> Zoo:
        """Read a YAML or JSON manifest; every problem in it is reported together."""
        path = Path(path)
        if not path.is_file():
            raise WeightscapeError(f"Zoo manifest '{path}' does not exist.")
        text = path.read_text()
        try:
            if path.suffix == ".json":
                raw = json.loads(text)
            else:
                import yaml

                raw = yaml.safe_load(text)
        except Exception as err:  # yaml and json raise many error types for bad syntax
            raise WeightscapeError(f"Cannot parse zoo manifest '{path}': {err}") from err
        try:
            manifest = ZooManifest.model_validate(raw)
        except ValidationError as err:
            problems = " ".join(problem_lines(err))
            raise WeightscapeError(f"Zoo manifest '{path}' is invalid: {problems}") from err
        root = path.parent

        def resolve(p: str | None) -> Path | None:
            return None if p is None else (root / p).expanduser()

        checkpoints, problems = [], []
        for i, m in enumerate(manifest.models):
            try:
                checkpoints.append(
                    Checkpoint.from_path(
                        resolve(m.path),
                        name=m.name,
                        config=resolve(m.config or manifest.config),
                        tags=m.tags,
                        adapter_base=_adapter_base(m, manifest, resolve),
                    )
                )
            except WeightscapeError as err:
                problems.append(f"models.{i} ('{m.name}'): {err}")
        base = None
        if manifest.base:
            try:
                base = Checkpoint.from_path(
                    resolve(manifest.base), name="base", config=resolve(manifest.config)
                )
            except WeightscapeError as err:
                problems.append(f"base: {err}")
        if problems:
            raise WeightscapeError(
                f"Zoo manifest '{path}' names checkpoints that cannot be "
                "read:\n  " + "\n  ".join(problems)
            )
        return cls(checkpoints, base=base, tokenizer=resolve(manifest.tokenizer), root=root)

    @classmethod
    def from_glob(
        cls, pattern: str, *, config: str | Path | None = None, base: str | Path | None = None
    ) -> Zoo:
        """All checkpoints matching a glob pattern, named by their paths."""
        paths = sorted(globlib.glob(pattern))
        if not paths:
            raise WeightscapeError(f"No checkpoints match '{pattern}'.")
        root = Path(globlib.escape(pattern.split("*")[0]) or ".")
        checkpoints = [
            Checkpoint.from_path(p, name=_relative_name(Path(p), root), config=config)
            for p in paths
        ]
        base_ckpt = Checkpoint.from_path(base, name="base", config=config) if base else None
        return cls(checkpoints, base=base_ckpt)

    def manifest(self, root: Path) -> dict[str, Any]:
        """This zoo as a manifest dict with paths relative to ``root``."""

        def rel(p: Path) -> str:
            try:
                return str(p.resolve().relative_to(root.resolve()))
            except ValueError:
                return str(p.resolve())

        out: dict[str, Any] = {}
        if self.base is not None:
            out["base"] = rel(self.base.path)
        out["models"] = [
            {"name": c.name, "path": rel(c.path), "tags": dict(c.tags)}
            | ({} if c.adapter_base is None else {"adapter_base": rel(c.adapter_base)})
            for c in self.checkpoints
        ]
        return out


def _adapter_base(entry: ModelEntry, manifest: ZooManifest, resolve) -> Path | None:
    """An entry's adapter base: its own, else the manifest's for a peft adapter folder."""
    from weightscape.models.peft_anchor import is_adapter_folder
    from weightscape.models.pretrained import BUILTIN_MODELS, resolve_model_path

    given = entry.adapter_base
    if given is None and is_adapter_folder(resolve(entry.path)):
        given = manifest.adapter_base
    if given is None:
        return None
    return resolve_model_path(given) if given in BUILTIN_MODELS else resolve(given)


def _relative_name(path: Path, root: Path) -> str:
    try:
        rel = path.relative_to(root if root.is_dir() else root.parent)
    except ValueError:
        rel = path
    name = str(rel.with_suffix("") if path.is_file() else rel).strip("/")
    return name or path.name


def append_to_manifest(manifest: Path, entry: dict[str, Any]) -> None:
    """Add (or replace, by name) one model entry in a YAML manifest, creating it if needed.

    Many runs may write into one zoo at once (two ``finetune`` commands, a sweep on Ray): the
    read-modify-write happens under an exclusive lock on a sidecar lock file, and the new
    manifest is written to a name of this process's own and renamed over the old one, so no
    entry is lost and a reader never sees a half-written file.
    """
    import fcntl

    import yaml

    manifest = Path(manifest)
    manifest.parent.mkdir(parents=True, exist_ok=True)
    lock = manifest.with_name(f".{manifest.name}.lock")
    with lock.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file closes
        data: dict[str, Any] = {"models": []}
        if manifest.is_file():
            data = yaml.safe_load(manifest.read_text()) or {"models": []}
        models = [m for m in data.get("models", []) if m.get("name") != entry["name"]]
        models.append(entry)
        data["models"] = models
        write_text(manifest, yaml.safe_dump(data, sort_keys=False))
