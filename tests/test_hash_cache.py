"""Content hashes are read once per version of a file, and a changed file is never answered from
the cache (issue 14: start-up)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from weightscape.models import checkpoint as checkpoint_module
from weightscape.models import hash_cache
from weightscape.models.checkpoint import Checkpoint


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A fresh cache file, and a count of the files this process actually read to hash."""
    monkeypatch.setenv(hash_cache.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.delenv(hash_cache.REHASH_ENV, raising=False)
    hash_cache.forget_session()
    reads: list[Path] = []
    real = checkpoint_module._sha256_file

    def counting(path):
        reads.append(Path(path))
        return real(path)

    monkeypatch.setattr(checkpoint_module, "_sha256_file", counting)
    yield reads
    hash_cache.forget_session()


def _model(tiny_models, tmp_path) -> Path:
    import shutil

    folder = tmp_path / "m"
    shutil.copytree(tiny_models[0], folder)
    return folder


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_new_process_reads_the_hash_from_the_cache_not_the_file(cache, tiny_models, tmp_path):
    folder = _model(tiny_models, tmp_path)
    first = Checkpoint.from_path(folder).content_hash()
    assert len(cache) == 1
    hash_cache.forget_session()  # what a new command starts with
    assert Checkpoint.from_path(folder).content_hash() == first
    assert len(cache) == 1  # answered from the cache file
    assert (tmp_path / "cache" / hash_cache.FILE_NAME).is_file()


def test_the_weights_digest_is_the_sha256_of_the_file(cache, tiny_models, tmp_path):
    weights = _model(tiny_models, tmp_path) / "model.safetensors"
    stamp = (str(weights), 0, 0)
    assert checkpoint_module._files_hash((stamp,)) == _sha256(weights)
    hash_cache.forget_session()
    assert checkpoint_module._files_hash((stamp,)) == _sha256(weights)  # the cached value too


def test_a_rewritten_file_is_hashed_again_even_with_its_size_and_mtime_restored(
    cache, tiny_models, tmp_path
):
    folder = _model(tiny_models, tmp_path)
    weights = folder / "model.safetensors"
    before = Checkpoint.from_path(folder).content_hash()
    info = weights.stat()
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01  # one bit of one weight: same size
    weights.write_bytes(bytes(data))
    os.utime(weights, ns=(info.st_atime_ns, info.st_mtime_ns))  # the old mtime put back
    hash_cache.forget_session()
    after = Checkpoint.from_path(folder).content_hash()
    assert after != before
    assert len(cache) == 2
    assert checkpoint_module._files_hash(((str(weights), 0, 0),)) == _sha256(weights)


def test_a_file_replaced_by_another_is_hashed_again(cache, tiny_models, tmp_path):
    folder = _model(tiny_models, tmp_path)
    weights = folder / "model.safetensors"
    before = Checkpoint.from_path(folder).content_hash()
    other = Path(tiny_models[1]) / "model.safetensors"
    os.replace(_copy(other, tmp_path / "x"), weights)
    hash_cache.forget_session()
    assert Checkpoint.from_path(folder).content_hash() != before
    assert checkpoint_module._files_hash(((str(weights), 0, 0),)) == _sha256(other)


def _copy(source: Path, target: Path) -> Path:
    target.write_bytes(source.read_bytes())
    return target


def test_rehash_reads_every_file_again(cache, tiny_models, tmp_path, monkeypatch):
    folder = _model(tiny_models, tmp_path)
    first = Checkpoint.from_path(folder).content_hash()
    hash_cache.forget_session()
    monkeypatch.setenv(hash_cache.REHASH_ENV, "1")
    assert Checkpoint.from_path(folder).content_hash() == first
    assert len(cache) == 2
    assert Checkpoint.from_path(folder).content_hash() == first
    assert len(cache) == 2  # once per process, even when rehashing


@pytest.mark.parametrize("damage", ["garbage", "unwritable"])
def test_a_damaged_or_unwritable_cache_only_costs_time(
    damage, cache, tiny_models, tmp_path, monkeypatch
):
    folder = _model(tiny_models, tmp_path)
    where = tmp_path / "cache"
    if damage == "garbage":
        where.mkdir()
        (where / hash_cache.FILE_NAME).write_bytes(b"not a database" * 100)
    else:
        where.write_text("a file where the cache folder should be")
    hash_cache._database.forget()  # open the damaged file afresh
    expected = hashlib.sha256(
        f"{checkpoint_module.ANCHOR_HASH_VERSION}:{_sha256(folder / 'model.safetensors')}:"
        f"{_config(folder)}".encode()
    ).hexdigest()
    assert Checkpoint.from_path(folder).content_hash() == expected


def _config(folder: Path) -> str:
    from weightscape.models.fingerprint import config_fingerprint

    return config_fingerprint(folder)


def test_the_nonfinite_scan_is_cached_and_redone_for_a_new_file(cache, tiny_models, tmp_path):
    import torch
    from safetensors.torch import load_file, save_file

    from weightscape.models.checkpoint import nonfinite_tensors

    folder = _model(tiny_models, tmp_path)
    assert nonfinite_tensors(Checkpoint.from_path(folder)) == []
    state = load_file(folder / "model.safetensors")
    name = sorted(state)[0]
    state[name] = state[name].clone()
    state[name].view(-1)[0] = float("nan")
    save_file(state, str(folder / "model.safetensors"))
    hash_cache.forget_session()
    found = nonfinite_tensors(Checkpoint.from_path(folder))
    assert [n for n, _ in found] == [name]
    assert torch.isnan(load_file(folder / "model.safetensors")[name]).any()


def test_the_rehash_flag_reads_every_anchor_again(
    cache, tiny_models, tiny_csv, tmp_path, monkeypatch, capsys
):
    from weightscape.cli.main import main

    a, b = (_copy_model(m, tmp_path / name) for m, name in zip(tiny_models, "ab", strict=False))
    argv = ["interpolate", str(a), str(b), "--task", str(tiny_csv), "--split", "all"]
    argv += ["--points", "3", "--no-progress", "--device", "cpu", "--out", str(tmp_path / "o")]
    assert main(argv) == 0
    assert sorted(p.parent.name for p in set(cache)) == ["a", "b"]  # each file read once
    hash_cache.forget_session()
    assert main(argv) == 0
    assert len(cache) == 2  # a new command: both answered from the cache
    hash_cache.forget_session()
    monkeypatch.setenv(hash_cache.REHASH_ENV, "")  # restored after the test, like --rehash sets
    assert main(["--rehash", *argv]) == 0
    assert len(cache) == 4
    assert os.environ[hash_cache.REHASH_ENV] == "1"


def _copy_model(source: Path, target: Path) -> Path:
    import shutil

    shutil.copytree(source, target)
    return target
