"""Fingerprints of the small files that change what a checkpoint computes besides its weights.

A store key must change whenever the computation does. The weights are one input; the
architecture config is another (``hidden_act: gelu`` -> ``relu`` changes every logit, an
``id2label`` reorder changes which class is which), and so is the tokenizer (another word -> id
map feeds other inputs). These functions hash those files' content; JSON is hashed in canonical
form, so re-saving a config with other whitespace or key order keeps its fingerprint.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from pathlib import Path

from weightscape.models.tuning_spec import SIDECAR

# The architecture, and weightscape's sidecar that changes the model the engine builds.
CONFIG_FILES = ("config.json", SIDECAR)

# Files AutoTokenizer reads (fast and slow tokenizers of the common families).
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
    "spiece.model",
    "sentencepiece.bpe.model",
    "tokenizer.model",
    "spm.model",
    "source.spm",
    "target.spm",
    "chat_template.jinja",
)


def _canonical(path: Path) -> bytes:
    data = path.read_bytes()
    if path.suffix == ".json":
        try:
            return json.dumps(json.loads(data), sort_keys=True, separators=(",", ":")).encode()
        except ValueError:
            pass  # not valid JSON: the raw bytes still identify it
    return data


def files_fingerprint(folder: Path | None, names: tuple[str, ...]) -> str:
    """SHA-256 over the named files present in ``folder`` (name and canonical content).

    A missing folder or file is part of the fingerprint too ("absent" differs from any content).

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "config.json").write_text('{"b": 1, "a": 2}')
    >>> first = files_fingerprint(folder, CONFIG_FILES)
    >>> _ = (folder / "config.json").write_text('{"a": 2,\\n "b": 1}')
    >>> files_fingerprint(folder, CONFIG_FILES) == first
    True
    >>> _ = (folder / "config.json").write_text('{"a": 2, "b": 3}')
    >>> files_fingerprint(folder, CONFIG_FILES) == first
    False
    """
    digest = hashlib.sha256()
    for name in names:
        path = None if folder is None else Path(folder) / name
        if path is not None and path.is_file():
            content = _canonical(path)
            digest.update(f"{name}:{len(content)}:".encode())
            digest.update(content)
        else:
            digest.update(f"{name}:absent;".encode())
    return digest.hexdigest()


def config_fingerprint(folder: Path | None) -> str:
    """Fingerprint of the architecture files (``config.json``, tuning sidecar) in ``folder``."""
    return files_fingerprint(folder, CONFIG_FILES)


def tokenizer_fingerprint(folder: str | Path) -> str:
    """Fingerprint of the tokenizer files in ``folder``, and of the ``model_type`` in its
    ``config.json`` (which picks the tokenizer class when ``tokenizer_config.json`` does not);
    the rest of that config is the model's, covered by the anchors' own hashes."""
    folder = Path(folder)
    model_type = None
    # No (readable) config: the tokenizer files alone decide.
    with contextlib.suppress(OSError, ValueError, AttributeError):
        model_type = json.loads((folder / "config.json").read_text()).get("model_type")
    files = files_fingerprint(folder, TOKENIZER_FILES)
    return hashlib.sha256(f"{files}:model_type={model_type}".encode()).hexdigest()
