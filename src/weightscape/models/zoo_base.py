"""The pretrained model a zoo was finetuned from, resolved one way for every command.

A zoo can say where its models came from in three ways: a ``--base`` flag, the manifest's
``base``, and each model's ``base`` tag (which ``weightscape finetune`` writes). Task vectors
measured from the wrong base look like real findings (cosines of 0.99 where the truth is 0), so
:func:`resolve_base` never guesses: what is given must agree with the tags, the tags must agree
with each other, and a tag that names nothing is an error that says what to fix.

A ``base`` tag is a built-in name (``minilm``), an absolute path, or a path relative to the
manifest's folder (what finetune writes) or, for zoos written before that, to the current
directory.

A zoo finetuned from several pretrained models on purpose (Gueta et al. 2023, App. B) is the one
case for several bases: :func:`resolve_model_bases` gives each model the base its own tag names,
asked for explicitly (``similarity --per-model-base``), never as a fallback.
"""

from __future__ import annotations

from pathlib import Path

from weightscape.errors import WeightscapeError
from weightscape.models.checkpoint import Checkpoint
from weightscape.models.pretrained import BUILTIN_MODELS, resolve_model_path
from weightscape.models.zoo import Zoo

__all__ = [
    "model_spec",
    "resolve_base",
    "resolve_base_tag",
    "resolve_model_base",
    "resolve_model_bases",
]

TAG = "base"


def resolve_base(zoo: Zoo, given: str | Path | None = None) -> Checkpoint:
    """The pretrained model ``zoo``'s task vectors start from.

    Args:
        zoo: The finetuned models; their ``base`` tags and the manifest's base are checked.
        given: A ``--base`` flag: a built-in name or a path. It must agree with the zoo's
            manifest base and with every ``base`` tag that names an existing model.

    Returns:
        The base, named ``base``: ``given``, else the manifest's base, else the folder every
        model's ``base`` tag names.

    Raises:
        WeightscapeError: The sources disagree, a model has no tag to go by, or a tag names
            neither a built-in model nor an existing path.
    """
    tagged = _models_by_tag(zoo)
    if given is not None:
        path = resolve_model_path(given).resolve()
        if zoo.base is not None and zoo.base.path.resolve() != path:
            raise WeightscapeError(
                f"--base '{given}' ({path}) is not the zoo's manifest base "
                f"({zoo.base.path.resolve()}). Leave out --base or fix the manifest's base."
            )
        _check_tags_agree(tagged, path, f"--base '{given}'", zoo.root, "the --base flag")
        return Checkpoint.from_path(path, name="base")
    if zoo.base is not None:
        path = zoo.base.path.resolve()
        _check_tags_agree(tagged, path, "the manifest's base", zoo.root, "the manifest's base")
        return zoo.base
    return Checkpoint.from_path(_base_from_tags(zoo, tagged), name="base")


def resolve_model_bases(zoo: Zoo) -> list[Checkpoint]:
    """Each model's own pretrained base, from its ``base`` tag (one checkpoint per distinct base).

    For zoos finetuned from different pretrained models, whose task vectors each start from
    their own base. The manifest's ``base`` is not used: every model must carry the tag.

    Raises:
        WeightscapeError: A model has no ``base`` tag, or a tag names nothing (see
            :func:`resolve_base_tag`).
    """
    untagged = [m.name for m in zoo if TAG not in m.tags]
    if untagged:
        raise WeightscapeError(
            f"Models {_listing(untagged)} have no '{TAG}' tag, so their own base is unknown. Tag "
            "every model with the pretrained model it was finetuned from, or leave out "
            "--per-model-base for one base for the whole zoo."
        )
    bases: dict[Path, Checkpoint] = {}
    resolved = []
    for model in zoo:
        path = resolve_model_base(model, zoo.root)
        if path not in bases:
            bases[path] = Checkpoint.from_path(path, name=f"base:{model.tags[TAG]}")
        resolved.append(bases[path])
    return resolved


def resolve_model_base(model: Checkpoint, root: Path | None = None) -> Path:
    """The folder (or file) the ``base`` tag of ``model`` names (relative to ``root``, the
    manifest's folder, or the current directory)."""
    return resolve_base_tag(model.tags[TAG], [model.name], root)


def resolve_base_tag(value: object, models: list[str], root: Path | None = None) -> Path:
    """The folder (or file) a ``base`` tag names, resolved to a real path.

    Args:
        value: The tag: a built-in name, an absolute path, or a path relative to ``root`` or
            to the current directory.
        models: The models carrying the tag (named in errors).
        root: The manifest's folder (None: the current directory only).
    """
    found = _tag_candidates(value, root)
    if len(found) > 1:
        raise WeightscapeError(
            f"The base '{value}' ('{TAG}' tag of models {_listing(models)}) is ambiguous: it "
            f"names both {found[0]} (from the manifest's folder) and {found[1]} (from the "
            "current directory). Give --base or make the tag an absolute path."
        )
    if not found:
        places = ", ".join(str(p) for p in _places(value, root))
        raise WeightscapeError(
            f"Unknown base '{value}' ('{TAG}' tag of models {_listing(models)}): neither a "
            f"built-in name ({', '.join(BUILTIN_MODELS)}) nor an existing path (looked in "
            f"{places}). Give --base or fix the tag."
        )
    return found[0]


def model_spec(checkpoint: Checkpoint) -> str:
    """How to name ``checkpoint`` as a model to start from: its built-in name if it is a
    built-in model (so run configs stay portable), else its path."""
    path = checkpoint.path.resolve()
    for name in BUILTIN_MODELS:
        try:
            if resolve_model_path(name).resolve() == path:
                return name
        except WeightscapeError:  # that built-in is not installed, so it is not this one
            continue
    return str(path)


def _models_by_tag(zoo: Zoo) -> dict[str, list[str]]:
    """Each ``base`` tag value -> the models carrying it."""
    tagged: dict[str, list[str]] = {}
    for model in zoo:
        if TAG in model.tags:
            tagged.setdefault(str(model.tags[TAG]), []).append(model.name)
    return tagged


def _check_tags_agree(
    tagged: dict[str, list[str]], path: Path, source: str, root: Path | None, fix: str
) -> None:
    """Refuse a base the models' tags contradict; a tag naming no existing model is left out
    (an explicit base is the way to repair a zoo whose tags point nowhere)."""
    disagreeing = []
    for value, models in tagged.items():
        found = _tag_candidates(value, root)
        if found and path not in found:
            disagreeing.append(f"'{value}' ({found[0]}) on {_listing(models)}")
    if disagreeing:
        raise WeightscapeError(
            f"The zoo's models were not finetuned from {source} ({path}): their '{TAG}' tags "
            f"say {'; '.join(disagreeing)}. Fix the tags in the zoo manifest or {fix}."
        )


def _base_from_tags(zoo: Zoo, tagged: dict[str, list[str]]) -> Path:
    """The one folder every model's ``base`` tag names."""
    untagged = [m.name for m in zoo if TAG not in m.tags]
    if untagged or not tagged:
        raise WeightscapeError(
            "Cannot tell which pretrained model the zoo was finetuned from: its manifest has no "
            f"'base' and models {_listing(untagged) or '(none)'} have no '{TAG}' tag. Give "
            f"--base, a 'base' in the manifest, or a '{TAG}' tag on every model."
        )
    folders = {value: resolve_base_tag(value, models, zoo.root) for value, models in tagged.items()}
    if len(set(folders.values())) > 1:
        groups = "; ".join(
            f"'{value}' ({folders[value]}) on {_listing(models)}"
            for value, models in tagged.items()
        )
        raise WeightscapeError(
            f"The zoo's models were finetuned from different bases: their '{TAG}' tags say "
            f"{groups}. Task vectors need one base: split the zoo or fix the tags in its manifest."
        )
    return next(iter(folders.values()))


def _tag_candidates(value: object, root: Path | None) -> list[Path]:
    """The distinct existing real paths a tag can name (a built-in name names one folder)."""
    if str(value) in BUILTIN_MODELS:
        return [resolve_model_path(str(value)).resolve()]
    found = [p.resolve() for p in _places(value, root) if p.exists()]
    return list(dict.fromkeys(found))


def _places(value: object, root: Path | None) -> list[Path]:
    """Where a path tag may point: itself if absolute, else under the manifest's folder and
    under the current directory."""
    path = Path(str(value)).expanduser()
    if path.is_absolute():
        return [path]
    return [base / path for base in ([root] if root is not None else []) + [Path.cwd()]]


def _listing(names: list[str], most: int = 5) -> str:
    """Names for a message, at most ``most`` of them.

    >>> _listing(["a", "b"]), _listing([f"m{i}" for i in range(7)], most=2)
    ('a, b', 'm0, m1 and 5 more')
    """
    shown = ", ".join(names[:most])
    return shown if len(names) <= most else f"{shown} and {len(names) - most} more"
