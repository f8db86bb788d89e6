"""The base of the API's settings objects: frozen pydantic models, one validation system.

Settings built in Python (``EvalSettings(batch_size=0)``) raise :class:`WeightscapeError` in the
house format naming the parameter and the owner, so API users meet the same one error type as the
command line; the CLI and study files validate their configs (which build these) first.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from weightscape.errors import WeightscapeError


class Settings(BaseModel):
    """A frozen, hashable settings object; unknown fields and bad values are refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as err:
            raise WeightscapeError(describe(type(self).__name__, err)) from None


def describe(owner: str, err: ValidationError) -> str:
    """``The 'c' parameter of ProbeSettings: Input should be greater than 0. Got 0.0.``"""
    names = {
        str(e["loc"][0]): f"The '{e['loc'][0]}' parameter of {owner}"
        for e in err.errors()
        if e["loc"]
    }
    return " ".join(problem_lines(err, names=names))


def problem_lines(
    err: ValidationError,
    *,
    names: Mapping[str, str] | None = None,
    prefix: str = "",
    unknown: Callable[[tuple], str] | None = None,
) -> list[str]:
    """The one formatter of validation problems: ``WHERE: what is wrong. Got X.`` per problem.

    Every route reports through it: the command line (``names`` maps fields to the flags the
    user typed), study and zoo files (``prefix`` is the YAML path of the section), settings
    built in Python.

    Args:
        err: pydantic's error.
        names: How to name a location's first part (``batch_size`` -> ``--batch-size``).
        prefix: Put before every location (``steps[2].grid.``).
        unknown: The message for an unknown key at a location (say, with its valid keys).

    >>> from pydantic import BaseModel, Field
    >>> class Grid(BaseModel):
    ...     points: int = Field(11, ge=2)
    >>> try:
    ...     Grid(points=1)
    ... except ValidationError as err:
    ...     problem_lines(err, names={"points": "--points"})
    ['--points: Input should be greater than or equal to 2. Got 1.']
    """
    errors = err.errors()
    # A list with a bad item also reports itself as too short after validation: say it once.
    items = {e["loc"][:-1] for e in errors if len(e["loc"]) > 1}
    lines = []
    for error in errors:
        loc = tuple(error["loc"])
        if error["type"] == "too_short" and loc in items:
            continue
        place = prefix + _place(loc, names or {})
        if error["type"] == "extra_forbidden":
            message = unknown(loc) if unknown is not None else "unknown key"
            lines.append(f"{place}: {message.rstrip('.')}.")
            continue
        message = error["msg"].removeprefix("Value error, ").rstrip(".")
        # a rule across fields (no location) names its fields itself; its input is everything
        got = f" Got {_shown(error.get('input'))}." if error["type"] != "missing" and loc else ""
        lines.append(f"{place}: {message}.{got}" if place else f"{message}.{got}")
    return list(dict.fromkeys(lines))


def _place(loc: tuple, names: Mapping[str, str]) -> str:
    if not loc:
        return ""
    head = names.get(str(loc[0]), str(loc[0]))
    return head + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc[1:])


def _shown(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ",".join(map(str, value))
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {v}" for k, v in value.items()) + "}"
    return repr(value) if isinstance(value, str) else str(value)
