"""Argument checks shared by the pure layers (geometry, metrics), scikit-learn style messages.

These functions receive their arguments straight from study files and CLI flags, so every check
raises :class:`~weightscape.errors.WeightscapeError` naming the parameter, the function and the
value received, never an ``assert``; :func:`check_folder_name` raises ``ValueError`` instead, for
pydantic validators to report beside the field. numpy only.
"""

from __future__ import annotations

import numbers
import unicodedata
from pathlib import PureWindowsPath

import numpy as np

from weightscape.errors import WeightscapeError


def check_int(value: object, name: str, owner: str, minimum: int) -> int:
    """Return ``value`` as an ``int`` if it is an integer >= ``minimum``, else raise.

    Booleans are refused even though Python treats them as integers: ``steps=True`` is a mistake.
    """
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < minimum:
        raise WeightscapeError(
            f"The '{name}' parameter of {owner} must be an int >= {minimum}. Got {value!r} instead."
        )
    return int(value)


def as_finite_1d(values: object, name: str, owner: str) -> np.ndarray:
    """Return a scalar or 1-D array-like as a float64 1-D array of finite numbers, else raise."""
    try:
        array = np.atleast_1d(np.asarray(values, dtype=np.float64))
    except (TypeError, ValueError) as error:
        raise WeightscapeError(
            f"The '{name}' parameter of {owner} must be a number or a 1-D sequence of numbers. "
            f"Got {values!r} instead."
        ) from error
    if array.ndim != 1:
        raise WeightscapeError(
            f"The '{name}' parameter of {owner} must be a number or a 1-D sequence of numbers. "
            f"Got an array of shape {array.shape} instead."
        )
    bad = np.flatnonzero(~np.isfinite(array))
    if bad.size:
        index = int(bad[0])
        raise WeightscapeError(
            f"The '{name}' parameter of {owner} must hold finite numbers. "
            f"Got {array[index]} at index {index} instead."
        )
    return array


def check_folder_name(name: str) -> str:
    """Return ``name`` if it is one path component, else raise ``ValueError`` saying why.

    Run names become folders inside an output folder (``OUT/NAME/step-K``): a name with a
    separator, ``..``, a drive or a control character would write elsewhere or make a path that
    cannot be typed back.

    >>> check_folder_name("rt-lora-lr0.001")
    'rt-lora-lr0.001'
    >>> check_folder_name("..")
    Traceback (most recent call last):
    ...
    ValueError: must be one folder name inside the output folder: not empty, '.' or '..'
    """
    where = "must be one folder name inside the output folder"
    if name in ("", ".", ".."):
        raise ValueError(f"{where}: not empty, '.' or '..'")
    if "/" in name or "\\" in name or PureWindowsPath(name).drive:
        raise ValueError(f"{where}: without '/', '\\' or a drive")
    if any(unicodedata.category(c) == "Cc" for c in name):  # NUL, newline, tab, DEL, ...
        raise ValueError(f"{where}: without control characters (newline, tab, NUL)")
    return name
