"""Command-line flags generated from a study's pydantic ``Config``, and the one error edge.

Every field becomes a flag (``batch_size`` -> ``--batch-size``) whose help is the field's
description and default; argparse itself sets no default (``SUPPRESS``), so a flag left out takes
the field's default and the CLI cannot drift from the API. Values reach pydantic as typed text,
so every bad value, out-of-range or ill-typed, is reported by :func:`problems` in one format
naming the flag: ``--points: Input should be greater than or equal to 2. Got 1.``
"""

from __future__ import annotations

import argparse
import types
import typing
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from weightscape.settings import problem_lines


def _extra(info: FieldInfo) -> dict[str, Any]:
    extra = info.json_schema_extra
    return extra if isinstance(extra, dict) else {}


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """The annotation without ``None`` (and whether None was allowed)."""
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return (rest[0] if len(rest) == 1 else annotation), True
    return annotation, False


def is_sequence(annotation: Any) -> bool:
    """Whether a field holds a tuple or list (comma-separated on the command line)."""
    return typing.get_origin(_unwrap(annotation)[0]) in (tuple, list)


def _choices(annotation: Any) -> tuple | None:
    inner = _unwrap(annotation)[0]
    if typing.get_origin(inner) is typing.Literal:
        return typing.get_args(inner)
    return None


def _default_text(info: FieldInfo) -> str:
    if info.is_required():
        return "required"
    default = info.get_default(call_default_factory=True)
    if default is None:
        return "none"
    if isinstance(default, tuple | list):
        return ",".join(map(str, default)) or "none"
    return str(default)


def add_flags(parser: argparse.ArgumentParser, config: type[BaseModel]) -> None:
    """One argparse argument per field of ``config``; no argparse defaults (pydantic's apply)."""
    for name, info in config.model_fields.items():
        extra = _extra(info)
        if extra.get("cli") is False:
            continue  # set by a study file or by the command itself, not a flag
        text = f"{info.description or ''} (default: {_default_text(info)})"
        text = text.replace("%", "%%")  # argparse formats help with %
        if extra.get("positional"):
            if info.is_required():
                nargs = "+" if is_sequence(info.annotation) else None
                parser.add_argument(name, nargs=nargs, help=text, metavar=name.upper())
            else:  # may be left out: the field's default applies (export's ANCHORS)
                nargs = "*" if is_sequence(info.annotation) else "?"
                kwargs = {"nargs": nargs, "default": argparse.SUPPRESS}
                parser.add_argument(name, help=text, metavar=name.upper(), **kwargs)
            continue
        flag = "--" + name.replace("_", "-")
        annotation = _unwrap(info.annotation)[0]
        if annotation is bool:
            if info.get_default() is True:
                parser.add_argument(
                    "--no-" + name.replace("_", "-"),
                    dest=name,
                    action="store_false",
                    default=argparse.SUPPRESS,
                    help=f"do not: {info.description}",
                )
            else:
                parser.add_argument(
                    flag, dest=name, action="store_true", default=argparse.SUPPRESS, help=text
                )
            continue
        kwargs: dict[str, Any] = {"dest": name, "default": argparse.SUPPRESS, "help": text}
        if extra.get("repeat"):
            kwargs["action"] = "append"
        elif is_sequence(info.annotation):
            kwargs["metavar"] = "A,B,..."
        choices = _choices(info.annotation)
        if choices is not None:
            kwargs["metavar"] = "{" + ",".join(map(str, choices)) + "}"
        parser.add_argument(flag, **kwargs)


def raw_values(args: argparse.Namespace, config: type[BaseModel]) -> dict[str, Any]:
    """The fields the user gave, as text for pydantic (comma lists split into items)."""
    values: dict[str, Any] = {}
    for name, info in config.model_fields.items():
        if name not in vars(args):
            continue
        value = getattr(args, name)
        extra = _extra(info)
        if isinstance(value, str) and is_sequence(info.annotation) and not extra.get("repeat"):
            value = [item.strip() for item in value.split(",") if item.strip()]
        values[name] = value
    return values


def problems(err: ValidationError, names: dict[str, str]) -> list[str]:
    """One line per problem, each naming the flag: ``--points: ... Got 1.``"""
    return problem_lines(err, names=names)


def flag_names(config: type[BaseModel]) -> dict[str, str]:
    """Field name -> how the user typed it on the command line."""
    names = {}
    for name, info in config.model_fields.items():
        if _extra(info).get("positional"):
            names[name] = name.upper()
        elif _unwrap(info.annotation)[0] is bool and info.get_default() is True:
            names[name] = "--no-" + name.replace("_", "-")
        else:
            names[name] = "--" + name.replace("_", "-")
    return names
