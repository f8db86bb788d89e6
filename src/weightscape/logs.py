"""Logging for weightscape, and quiet Hugging Face libraries inside weightscape's own calls only.

A library must not change its host process: weightscape's modules log through
``logging.getLogger(__name__)`` (the package adds only a :class:`logging.NullHandler`, so a
library user sees nothing unless they configure logging), and the command line attaches the one
handler for each command (:func:`cli_logging`, from ``--verbose``/``--quiet``).

transformers and datasets print load reports, advice and progress bars that mean nothing to a
weightscape user (a config built without weights, a tokenizer read from a checkpoint folder).
:func:`quiet_libraries` silences them for the duration of one of weightscape's calls and then
puts back exactly what the host process had: verbosity, transformers' progress-bar switch and the
Hub's progress-bar states. Offline mode is never touched: every weightscape loader passes
``local_files_only=True``, and ``HF_HUB_OFFLINE`` is read once, when ``huggingface_hub`` is first
imported, so setting it even briefly could switch a notebook's later downloads off for good.

>>> import logging
>>> with quiet_libraries("transformers"):
...     import transformers
...     inside = transformers.logging.get_verbosity()
>>> inside == logging.ERROR
True
"""

from __future__ import annotations

import logging
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from typing import Literal

LOGGER_NAME = "weightscape"
Library = Literal["transformers", "datasets"]


@contextmanager
def quiet_libraries(*libraries: Library) -> Iterator[None]:
    """Within the block: ``libraries`` log errors only and draw no progress bars; after it,
    their settings are what they were (also when the block raises).

    Also usable as a decorator (``@quiet_libraries("transformers")``), which scopes every call.
    With the ``weightscape`` logger at DEBUG (``weightscape --verbose``, or a library user's own
    ``logging`` set-up), their messages are left on, to help debug a load.

    Raises:
        ValueError: For a library other than ``transformers`` or ``datasets`` (a programming
            error, not a user's).
    """
    unknown = sorted(set(libraries) - set(_SCOPES))
    if unknown:
        raise ValueError(f"quiet_libraries: unknown {unknown}; known: {sorted(_SCOPES)}")
    keep_messages = logging.getLogger(LOGGER_NAME).isEnabledFor(logging.DEBUG)
    with ExitStack() as stack:
        for name in libraries:
            stack.enter_context(_SCOPES[name](keep_messages))
        yield


@contextmanager
def _quiet_transformers(keep_messages: bool) -> Iterator[None]:
    import huggingface_hub.utils.tqdm  # noqa: F401 (the module, read from sys.modules below)
    import transformers

    # The module: the attribute ``huggingface_hub.utils.tqdm`` is its tqdm class.
    hub_tqdm = sys.modules["huggingface_hub.utils.tqdm"]

    tf_logging = transformers.logging
    verbosity = tf_logging.get_verbosity()
    bars_on = tf_logging.is_progress_bar_enabled()
    # transformers' switch also sets the Hub's (global and per-group) states: keep a copy.
    hub_states = dict(hub_tqdm.progress_bar_states)
    if not keep_messages:
        tf_logging.set_verbosity_error()
    tf_logging.disable_progress_bar()
    try:
        yield
    finally:
        tf_logging.set_verbosity(verbosity)
        if bars_on:
            with warnings.catch_warnings():  # HF_HUB_DISABLE_PROGRESS_BARS=1 wins and warns
                warnings.simplefilter("ignore")
                tf_logging.enable_progress_bar()
        hub_tqdm.progress_bar_states.clear()
        hub_tqdm.progress_bar_states.update(hub_states)


@contextmanager
def _quiet_datasets(keep_messages: bool) -> Iterator[None]:
    import datasets

    ds_logging = datasets.utils.logging
    verbosity = ds_logging.get_verbosity()
    bars_off = datasets.utils.are_progress_bars_disabled()
    if not keep_messages:
        ds_logging.set_verbosity_error()
    with warnings.catch_warnings():  # HF_DATASETS_DISABLE_PROGRESS_BARS=0 wins and warns
        warnings.simplefilter("ignore")
        datasets.utils.disable_progress_bars()
    try:
        yield
    finally:
        ds_logging.set_verbosity(verbosity)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if bars_off:
                datasets.utils.disable_progress_bars()
            else:
                datasets.utils.enable_progress_bars()


_SCOPES: dict[str, Callable[[bool], AbstractContextManager[None]]] = {
    "transformers": _quiet_transformers,
    "datasets": _quiet_datasets,
}


class _CurrentStderr(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a record is emitted (pytest's capture, a
    redirected stream), not to the stream that was current when the handler was made."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # StreamHandler.__init__ assigns it
        pass


CLI_LEVELS = {"quiet": logging.WARNING, "normal": logging.INFO, "verbose": logging.DEBUG}


@contextmanager
def cli_logging(verbosity: Literal["quiet", "normal", "verbose"] = "normal") -> Iterator[None]:
    """The command line's handler on the ``weightscape`` logger, for one command: diagnostics
    on stderr, results stay on stdout.

    ``normal`` shows INFO (what a command reads or is about to do, e.g. how many points it will
    evaluate), ``quiet`` only warnings, ``verbose`` DEBUG lines too, each prefixed with its level
    and module (and transformers' and datasets' own messages, see :func:`quiet_libraries`).
    The logger is as before afterwards, so a command run in-process leaves nothing behind.

    >>> import contextlib, logging, sys
    >>> with contextlib.redirect_stderr(sys.stdout), cli_logging("quiet"):
    ...     log = logging.getLogger("weightscape.data")
    ...     log.info("hidden")
    ...     log.warning("shown")
    shown
    """
    level = CLI_LEVELS[verbosity]
    logger = logging.getLogger(LOGGER_NAME)
    before = (logger.level, logger.propagate)
    handler = _CurrentStderr()
    fmt = "%(levelname)s %(name)s: %(message)s" if level <= logging.DEBUG else "%(message)s"
    handler.setFormatter(logging.Formatter(fmt))
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False  # the command owns the terminal: no second copy via a root handler
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(before[0])
        logger.propagate = before[1]
