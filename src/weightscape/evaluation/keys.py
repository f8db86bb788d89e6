"""Keys that identify exactly what a point's evaluation computed.

A key hashes: the anchors' content (weights and architecture config, see
:meth:`~weightscape.models.checkpoint.Checkpoint.content_hash`) with their coefficients
(canonical: zero terms dropped, equal anchors merged, sorted by content, floats in exact hex), the
parameter space and the reference anchor's content when the space leaves tensors out, the
tokenizer's files, the task's content, and the settings (label map and model labels included).
So the same combination is found again whatever path, pair or order produced it: an endpoint
evaluated for one pair is reused by every other pair that shares it; and a changed input is never
answered from an old result.

Stores written before keys covered the config and the tokenizer (key version 1: no ``version``
in the spec) are not migrated: nothing in an old key proves which config or tokenizer produced
it, so their points are recomputed under version-2 keys, which can never equal an old key.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

# Bump when what a key covers changes, so keys of different meanings never collide.
KEY_VERSION = 2


def canonical_terms(hashes: Sequence[str], coefficients: Sequence[float]) -> list[list[Any]]:
    """Merge equal anchors, drop zero terms, sort by content hash; floats in exact hex.

    >>> canonical_terms(["b", "a", "b"], [0.25, 0.0, 0.75])
    [['b', '0x1.0000000000000p+0']]
    """
    merged: dict[str, float] = {}
    for content, coef in zip(hashes, coefficients, strict=True):
        merged[content] = merged.get(content, 0.0) + float(coef)
    return [[h, float(c).hex()] for h, c in sorted(merged.items()) if c != 0.0]


def point_spec(
    *,
    hashes: Sequence[str],
    coefficients: Sequence[float],
    space: dict[str, Any],
    space_is_complete: bool,
    reference_hash: str,
    task: str,
    settings: dict[str, Any],
    tokenizer: str,
    evaluation: str = "classification",
) -> dict[str, Any]:
    """The JSON-able description of one point's evaluation (stored beside its result)."""
    spec: dict[str, Any] = {
        "version": KEY_VERSION,
        "evaluation": evaluation,
        "terms": _terms(hashes, coefficients),
        "task": task,
        "tokenizer": tokenizer,
        "settings": settings,
    }
    if not space_is_complete:  # the reference only matters for tensors outside the space
        spec["space"] = space
        spec["reference"] = reference_hash
    return spec


def _terms(hashes: Sequence[str], coefficients: Any) -> Any:
    # A grouped point (one coefficient vector per parameter group) keys each group's terms.
    if hasattr(coefficients, "group_by"):
        return {
            "group_by": coefficients.group_by,
            "groups": {g: canonical_terms(hashes, c) for g, c in coefficients.coefficients},
        }
    return canonical_terms(hashes, coefficients)


def spec_key(spec: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of a spec."""
    text = json.dumps(spec, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()
