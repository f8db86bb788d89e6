"""Generated built-in tasks: the MNLI-like NLI set and its HANS-like diagnostics.

No NLI data can be downloaded here, so the project generates its own (see ``docs/nli.md``):
``mnli_like`` (3 classes, 20,000 pairs, lexical overlap correlated with entailment as in MNLI)
and nine ``hans_like_*`` diagnostics (lexical overlap, subsequence, constituent; both labels,
entailing half, non-entailing half; 1,000 pairs per label), none of which repeats a training pair.
Evaluate 3-class models on them with the ``mnli_to_hans`` label map.
"""

from __future__ import annotations

from functools import lru_cache, partial

from weightscape.data.builtin import CacheDir, register_builtin
from weightscape.data.nli import HEURISTICS, generate_mnli_like, hans_like_suite
from weightscape.data.task import Task

MNLI_LIKE_SIZE = 20_000
HANS_LIKE_PER_LABEL = 1_000


@lru_cache(maxsize=1)
def _mnli_like_task() -> Task:
    return generate_mnli_like(MNLI_LIKE_SIZE, seed=0)


@lru_cache(maxsize=1)
def _hans_like_tasks() -> dict[str, Task]:
    return hans_like_suite(HANS_LIKE_PER_LABEL, seed=0, exclude=_mnli_like_task())


@register_builtin("mnli_like", "Generated MNLI-like NLI, 3 classes, 20,000 pairs (docs/nli.md).")
def _mnli_like(cache_dir: CacheDir) -> Task:
    return _mnli_like_task()


def _hans_like(key: str, cache_dir: CacheDir) -> Task:
    return _hans_like_tasks()[key]


for _heuristic in HEURISTICS:
    for _half in ("", "_entailing", "_non_entailing"):
        _key = f"hans_like_{_heuristic}{_half}"
        _what = _half.lstrip("_").replace("_", "-") or "both labels"
        register_builtin(_key, f"Generated HANS-like {_heuristic} diagnostic, {_what}.")(
            partial(_hans_like, _key)
        )
