"""Checkpoints on disk, read lazily and safely.

A checkpoint is one of:

* a Hugging Face model directory: ``config.json`` plus ``model.safetensors`` (or a sharded
  ``model.safetensors.index.json``), or a torch ``pytorch_model.bin``;
* a bare ``.safetensors`` file, with a reference config given separately;
* a torch state-dict file (``.bin``/``.pt``/``.pth``), with a reference config given separately;
* a peft LoRA adapter folder (``adapter_config.json``) over a base model folder, read as one
  checkpoint under the names of weightscape's LoRA working model (:mod:`.peft_anchor`).

Checkpoints are untrusted input: safetensors are preferred, and torch pickles are only ever read
with ``weights_only=True`` (which refuses arbitrary objects). Tensors are read on demand from
memory-mapped files, so a zoo of many models never sits in memory at once.
"""

from __future__ import annotations

import hashlib
import json
import math
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from weightscape.errors import WeightscapeError

SAFETENSORS_INDEX = "model.safetensors.index.json"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth")
# Bump when what content_hash covers changes: keys made from older hashes then never match.
ANCHOR_HASH_VERSION = "weightscape.anchor/2"


@dataclass(frozen=True)
class Checkpoint:
    """A named checkpoint on disk with its tags; holds no tensors.

    Attributes:
        name: Short name used in tables and plots.
        path: A model directory, a ``.safetensors`` file or a torch state-dict file.
        config: Directory or ``config.json`` holding the architecture, for bare weight files.
        tags: Free-form metadata (dataset, seed, method, step, ...).
        adapter_base: For a peft adapter folder, the base model folder it applies to.
    """

    name: str
    path: Path
    config: Path | None = None
    tags: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    adapter_base: Path | None = None

    @classmethod
    def from_path(
        cls,
        path: str | Path,
        *,
        name: str | None = None,
        config: str | Path | None = None,
        tags: dict[str, Any] | None = None,
        adapter_base: str | Path | None = None,
    ) -> Checkpoint:
        """Describe the checkpoint at ``path`` after checking that it exists and is readable.

        A peft adapter folder's base is ``adapter_base``, else its config's local
        ``base_model_name_or_path`` (:func:`~.peft_anchor.resolve_adapter_base`).
        """
        from weightscape.models.peft_anchor import is_adapter_folder, resolve_adapter_base

        p = Path(path).expanduser()
        if not p.exists():
            raise WeightscapeError(f"Checkpoint '{path}' does not exist. Check the path.")
        cfg = Path(config).expanduser() if config is not None else None
        base = None
        if is_adapter_folder(p):
            _refuse_two_models(p)
            base = resolve_adapter_base(p, adapter_base)
        elif adapter_base is not None:
            raise WeightscapeError(
                f"An adapter base ('{adapter_base}') was given for '{path}', which is not a peft "
                "adapter folder (no adapter_config.json). Give it for adapter folders only."
            )
        ckpt = cls(
            name=name or _default_name(p),
            path=p,
            config=cfg,
            tags=dict(tags or {}),
            adapter_base=base,
        )
        ckpt.weight_files()  # validates the layout early, with a clear message
        return ckpt

    def weight_files(self) -> list[Path]:
        """The files holding this checkpoint's tensors (a peft adapter's: its base's, then its
        own)."""
        if self.adapter_base is not None:
            from weightscape.models.peft_anchor import adapter_weights

            base = Checkpoint(name=self.name, path=self.adapter_base)
            return [*base.weight_files(), adapter_weights(self.path)]
        if self.path.is_file():
            if self.path.suffix == ".safetensors" or self.path.suffix in PICKLE_SUFFIXES:
                return [self.path]
            raise WeightscapeError(
                f"Checkpoint file '{self.path}' has an unsupported suffix '{self.path.suffix}'. "
                "Use a .safetensors file, a torch state dict (.bin, .pt, .pth) or a model "
                "directory."
            )
        index = self.path / SAFETENSORS_INDEX
        if index.is_file():
            try:
                shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
            except (ValueError, KeyError, TypeError, AttributeError) as err:
                raise WeightscapeError(
                    f"The shard index '{index}' is not a safetensors index (JSON with a "
                    f"'weight_map' of tensor names to files): {err!r}. Re-save the checkpoint."
                ) from None
            return [self.path / str(s) for s in shards]
        for candidate in ("model.safetensors", "pytorch_model.bin"):
            if (self.path / candidate).is_file():
                return [self.path / candidate]
        raise WeightscapeError(
            f"Checkpoint directory '{self.path}' holds no weights: expected model.safetensors, "
            f"{SAFETENSORS_INDEX} or pytorch_model.bin."
        )

    def config_dir(self) -> Path:
        """Directory holding ``config.json`` for this checkpoint's architecture."""
        if self.config is not None:
            cfg = self.config.parent if self.config.is_file() else self.config
        elif self.adapter_base is not None and not (self.path / "config.json").is_file():
            cfg = self.adapter_base  # a peft folder without a task config: the base's
        elif self.path.is_dir():
            cfg = self.path
        else:
            cfg = self.path.parent
        if not (cfg / "config.json").is_file():
            raise WeightscapeError(
                f"No config.json found for checkpoint '{self.name}' (looked in '{cfg}'). "
                "Give a reference config (--config, or 'config:' in the zoo file) for bare weight "
                "files."
            )
        return cfg

    def content_hash(self) -> str:
        """What the checkpoint computes: SHA-256 over its weight files' bytes and its
        architecture files (``config.json`` in canonical form, the tuning sidecar), so an edited
        config (another activation, another label order) is another checkpoint. A peft adapter's
        covers its base's weights, its own and its ``adapter_config.json``."""
        from weightscape.models.fingerprint import config_fingerprint, files_fingerprint

        weights = _files_hash(tuple((str(f), *_stamp(f)) for f in self.weight_files()))
        try:
            config = config_fingerprint(self.config_dir())
        except WeightscapeError:  # a bare weight file with no config: its weights say it all
            config = config_fingerprint(None)
        if self.adapter_base is not None:
            from weightscape.models.peft_anchor import ADAPTER_CONFIG

            config += ":" + files_fingerprint(self.path, (ADAPTER_CONFIG,))
        return hashlib.sha256(f"{ANCHOR_HASH_VERSION}:{weights}:{config}".encode()).hexdigest()


def _refuse_two_models(folder: Path) -> None:
    """A folder holding a peft adapter and full weights is ambiguous (transformers loads the
    weights and then applies the adapter to them): refuse it rather than pick one."""
    names = (SAFETENSORS_INDEX, "model.safetensors", "pytorch_model.bin")
    full = [name for name in names if (folder / name).is_file()]
    if full:
        raise WeightscapeError(
            f"'{folder}' holds both a peft adapter (adapter_config.json) and full weights "
            f"({full[0]}), so it is unclear which model it is. Keep one: move the adapter files "
            "or the weights to a folder of their own."
        )


def _default_name(path: Path) -> str:
    """The file stem, or the folder name; ``run/step-250`` (as finetune saves) is ``run@250``.

    >>> _default_name(Path("zoo/rt-a/step-250"))
    'rt-a@250'
    """
    if path.suffix in (".safetensors", *PICKLE_SUFFIXES):
        stem = path.stem
        return stem if stem not in ("model", "pytorch_model") else _default_name(path.parent)
    if path.name.startswith("step-") and path.parent.name:
        return f"{path.parent.name}@{path.name.removeprefix('step-')}"
    return path.name


def _stamp(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns


def _files_hash(files: tuple[tuple[str, int, int], ...]) -> str:
    """SHA-256 of the weights: one file's bytes, or (shards) of the shards' own digests in
    order. Each file's digest is read once per version of the file (:mod:`.hash_cache`)."""
    from weightscape.models.hash_cache import cached_digest

    digests = [cached_digest("sha256", name, _sha256_file) for name, _, _ in files]
    if len(digests) == 1:
        return digests[0]
    return hashlib.sha256(":".join(digests).encode()).hexdigest()


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


# Safetensors dtype codes (the format's header) -> torch dtype names.
_SAFETENSORS_DTYPES = {
    "F64": "float64",
    "F32": "float32",
    "F16": "float16",
    "BF16": "bfloat16",
    "I64": "int64",
    "I32": "int32",
    "I16": "int16",
    "I8": "int8",
    "U8": "uint8",
    "BOOL": "bool",
}


class TensorReader:
    """Lazy, read-only access to a checkpoint's tensors by name.

    Safetensors files are memory-mapped and each tensor is materialised only when asked for;
    torch pickles are loaded with ``weights_only=True`` and ``mmap=True``. :meth:`read_rows`
    reads a block of rows straight from a safetensors file instead (no mapping): a pass over a
    whole zoo then keeps only the block it works on in memory, where mapped pages would stay
    resident (and counted) until the reader closes.
    """

    def __init__(self, checkpoint: Checkpoint) -> None:
        self.checkpoint = checkpoint
        self._handles: list[Any] = []
        self._where: dict[str, Any] = {}
        self._file: dict[str, Path] = {}
        self._layouts: dict[Path, tuple[int, dict[str, Any]]] = {}
        self._stored: dict[str, str] = {}  # name served -> name in its file (peft adapters)
        for file in checkpoint.weight_files():
            self._open(file)
        if checkpoint.adapter_base is not None:
            self._serve_adapter()

    def _serve_adapter(self) -> None:
        """Serve a base's and its peft adapter's (last opened) tensors under the working
        model's names."""
        from weightscape.models.peft_anchor import presented_names

        adapter = [k for k in self._where if self._where[k] is self._handles[-1]]
        base = [k for k in self._where if self._where[k] is not self._handles[-1]]
        self._stored = presented_names(adapter, base)
        self._where = {n: self._where[s] for n, s in self._stored.items()}
        self._file = {n: self._file[s] for n, s in self._stored.items() if s in self._file}

    def _open(self, file: Path) -> None:
        if file.suffix == ".safetensors":
            from safetensors import SafetensorError, safe_open

            try:
                handle = safe_open(str(file), framework="pt", device="cpu")
            except (SafetensorError, OSError, ValueError) as err:
                raise WeightscapeError(
                    f"Cannot read safetensors file '{file}': {err}. The file is corrupt or not a "
                    "safetensors file; re-save or re-download the checkpoint."
                ) from err
            self._handles.append(handle)
            for key in handle.keys():  # noqa: SIM118 (safe_open is not a dict)
                self._where[key] = handle
                self._file[key] = file
        else:
            state = load_torch_state_dict(file)
            for key in state:
                self._where[key] = state
            self._handles.append(state)

    def keys(self) -> list[str]:
        """Names of all tensors in the checkpoint."""
        return list(self._where)

    def __contains__(self, name: str) -> bool:
        return name in self._where

    def __iter__(self):
        return iter(self._where)

    def shape(self, name: str) -> tuple[int, ...]:
        """Shape of one tensor, without reading its data where the format allows."""
        source, name = self._where[name], self._stored.get(name, name)
        if isinstance(source, dict):
            return tuple(source[name].shape)
        return tuple(source.get_slice(name).get_shape())

    def get(self, name: str) -> Any:
        """The tensor called ``name`` (a torch.Tensor, memory-mapped where possible)."""
        source, name = self._where[name], self._stored.get(name, name)
        return source[name] if isinstance(source, dict) else source.get_tensor(name)

    def is_floating_point(self, name: str) -> bool:
        """Whether tensor ``name`` holds floats, read from the header where the format allows."""
        source, name = self._where[name], self._stored.get(name, name)
        if isinstance(source, dict):
            return bool(source[name].is_floating_point())
        return source.get_slice(name).get_dtype() in ("F64", "F32", "F16", "BF16")

    def dtype(self, name: str) -> str:
        """The dtype of tensor ``name`` as torch names it (``float32``), read from the header
        where the format allows (a code torch has no name for is returned as it is)."""
        source, name = self._where[name], self._stored.get(name, name)
        if isinstance(source, dict):
            return str(source[name].dtype).removeprefix("torch.")
        code = source.get_slice(name).get_dtype()
        return _SAFETENSORS_DTYPES.get(code, code)

    def read_rows(self, name: str, start: int, stop: int) -> Any:
        """Rows ``start:stop`` of tensor ``name`` flattened to (rows, row length), as a new
        tensor read from disk (a 0-d tensor is one row of one value)."""
        import torch

        shape = self.shape(name)
        row_length = math.prod(shape[1:]) if shape else 1
        if name not in self._file:  # a torch pickle: already a (mapped) tensor
            return self.get(name).reshape(-1, row_length)[start:stop].clone()
        file = self._file[name]
        if file not in self._layouts:
            self._layouts[file] = _safetensors_layout(file)
        data_start, header = self._layouts[file]
        entry = header[self._stored.get(name, name)]
        dtype = getattr(torch, _SAFETENSORS_DTYPES[entry["dtype"]])
        item = torch.empty((), dtype=dtype).element_size()
        # Read straight into the new tensor's memory (no zero-filled staging buffer).
        buffer = torch.empty((stop - start) * row_length * item, dtype=torch.uint8)
        if buffer.numel():
            with open(file, "rb", buffering=0) as handle:
                handle.seek(data_start + entry["data_offsets"][0] + start * row_length * item)
                if handle.readinto(buffer.numpy()) != buffer.numel():
                    raise WeightscapeError(f"Safetensors file '{file}' is truncated at '{name}'.")
        return buffer.view(dtype).reshape(stop - start, row_length)


def _safetensors_layout(file: Path) -> tuple[int, dict[str, Any]]:
    """Where a safetensors file's data starts, and its header (names -> dtype, offsets)."""
    with open(file, "rb") as handle:
        size = int.from_bytes(handle.read(8), "little")
        return 8 + size, json.loads(handle.read(size))


_FINITE_CHUNK = 1 << 24  # elements per isfinite call: a bool mask of 16 MB at most


def nonfinite_tensors(checkpoint: Checkpoint) -> list[tuple[str, Path]]:
    """``(tensor name, file)`` for every floating tensor of ``checkpoint`` holding a NaN or an
    infinity.

    One such weight makes every combination that includes it NaN, so engines refuse these anchors
    up front. The verdict is cached per version of each weight file (:mod:`.hash_cache`): a zoo
    is read once, not at every command, and a rewritten file is read again.
    """
    found = [
        (name, file)
        for file in checkpoint.weight_files()
        for name in _nonfinite_in_file(str(file), *_stamp(file))
    ]
    if checkpoint.adapter_base is not None:  # a peft adapter: the names the engine uses
        served = {s: n for n, s in TensorReader(checkpoint)._stored.items()}
        found = [(served[name], file) for name, file in found if name in served]
    return found


def _nonfinite_in_file(path: str, size: int, mtime_ns: int) -> tuple[str, ...]:
    """Names of the tensors in ``path`` holding NaN or inf; scanned once per version of the
    file (:mod:`.hash_cache`)."""
    import json

    from weightscape.models.hash_cache import cached_digest

    found = cached_digest("nonfinite", path, lambda p: json.dumps(_scan_nonfinite(p)))
    return tuple(json.loads(found))


def _scan_nonfinite(file: Path) -> list[str]:
    if file.suffix != ".safetensors":
        state = load_torch_state_dict(file)
        return [name for name, tensor in state.items() if _has_nonfinite(tensor)]
    from safetensors import safe_open

    with safe_open(str(file), framework="pt", device="cpu") as handle:
        names = list(handle.keys())
        return [name for name in names if _has_nonfinite(handle.get_tensor(name))]


def _has_nonfinite(tensor: Any) -> bool:
    import torch

    if not tensor.is_floating_point():
        return False
    flat = tensor.reshape(-1)
    return any(
        not bool(torch.isfinite(flat[i : i + _FINITE_CHUNK]).all())
        for i in range(0, flat.numel(), _FINITE_CHUNK)
    )


def load_torch_state_dict(file: Path) -> dict[str, Any]:
    """Read a torch state-dict pickle with ``weights_only=True``; refuse anything else."""
    import torch

    try:
        try:
            state = torch.load(str(file), map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as err:
            if "mmap" not in str(err):
                raise
            # Legacy (non-zip) pickles cannot be memory-mapped; read them whole.
            state = torch.load(str(file), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise WeightscapeError(
            f"Refused to load '{file}': it is a pickle that holds more than tensors, and "
            f"weightscape only loads pickles with weights_only=True ({str(err).splitlines()[0]}). "
            "Convert the checkpoint to safetensors with code you trust."
        ) from err
    except (RuntimeError, EOFError, OSError, ValueError) as err:
        raise WeightscapeError(
            f"Cannot read torch checkpoint '{file}': {err}. The file is corrupt or not a torch "
            "state dict."
        ) from err
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(hasattr(v, "shape") for v in state.values()):
        raise WeightscapeError(
            f"'{file}' does not hold a state dict (a mapping from names to tensors)."
        )
    return state
