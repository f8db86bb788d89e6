"""The one exception type for user mistakes.

Everything a user can get wrong (a missing file, a corrupt checkpoint, an unknown path type, a bad
option value) raises :class:`WeightscapeError` with a message that names the offending thing and
says what to do. The CLI turns it into that message on stderr and exit status 2, never a traceback.
Programming errors stay ordinary exceptions so that they do show a traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class WeightscapeError(Exception):
    """A user-facing error: bad input, bad configuration, unreadable files."""


def unknown_name_error(kind: str, name: str, valid: Iterable[str]) -> WeightscapeError:
    """Build the error for an unknown registry name, suggesting the closest valid one.

    >>> str(unknown_name_error("path", "bezeir", ["linear", "bezier", "polychain"]))
    "Unknown path 'bezeir'. Did you mean 'bezier'? Available: bezier, linear, polychain."
    """
    options = sorted(valid)
    close = difflib.get_close_matches(name, options, n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    return WeightscapeError(f"Unknown {kind} '{name}'.{hint} Available: {', '.join(options)}.")
