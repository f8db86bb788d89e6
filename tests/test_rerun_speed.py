"""A fully stored rerun does no work it did before (issue 14: start-up), and never reuses a stale
result: the Gram matrix behind the distance matrices is kept by the anchors' content hashes
(``cached_gram_matrix``), and a heatmap already drawn from the same numbers is not drawn again."""

from __future__ import annotations

import shutil
import sqlite3
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image
from safetensors.numpy import load_file
from safetensors.torch import load_file as load_torch
from safetensors.torch import save_file

from weightscape.analyses import weight_stats
from weightscape.cli.main import main
from weightscape.models import derived_cache, hash_cache
from weightscape.models.checkpoint import Checkpoint
from weightscape.models.space import ParameterSpace
from weightscape.report import heatmaps
from weightscape.report.figures import drawn_from
from weightscape.report.heatmaps import plot_heatmap


@pytest.fixture
def computed(tmp_path, monkeypatch):
    """A fresh cache folder; the list of Gram matrices actually computed (not read back)."""
    monkeypatch.setenv(hash_cache.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.delenv(hash_cache.REHASH_ENV, raising=False)
    derived_cache.forget_connection()
    calls: list[int] = []
    real = weight_stats.gram_matrix

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(weight_stats, "gram_matrix", counting)
    yield calls
    derived_cache.forget_connection()


def _weights(folder: Path) -> dict[str, np.ndarray]:
    return load_file(str(folder / "model.safetensors"))


def _hand_gram(folders, keep=lambda name: True, base: Path | None = None) -> np.ndarray:
    """<w_i - b, w_j - b> over the floating-point tensors ``keep`` accepts, with numpy."""
    states = [_weights(f) for f in folders]
    offset = _weights(base) if base is not None else None
    names = [n for n, v in states[0].items() if keep(n) and np.issubdtype(v.dtype, np.floating)]
    flat = np.stack(
        [
            np.concatenate(
                [
                    (s[n].astype(np.float64) - (offset[n] if offset is not None else 0)).ravel()
                    for n in names
                ]
            )
            for s in states
        ]
    )
    return flat @ flat.T


def _copy(folder: Path, to: Path) -> Path:
    shutil.copytree(folder, to)
    return to


def _edit(folder: Path, name: str, delta: float) -> None:
    """Add ``delta`` to one tensor of the checkpoint's weights, rewriting its file."""
    state = load_torch(str(folder / "model.safetensors"))
    state[name] = state[name] + delta
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})


def _checkpoints(*folders: Path) -> list[Checkpoint]:
    return [Checkpoint.from_path(f) for f in folders]


def test_the_same_anchors_are_read_once_and_give_the_computed_matrix(computed, tiny_models):
    first = weight_stats.cached_gram_matrix(_checkpoints(*tiny_models))
    np.testing.assert_allclose(first, _hand_gram(tiny_models), rtol=1e-10)
    again = weight_stats.cached_gram_matrix(_checkpoints(*tiny_models))
    assert len(computed) == 1  # the second answer came from the cache
    np.testing.assert_array_equal(again, first)
    derived_cache.forget_connection()  # what a new command starts with
    assert np.array_equal(weight_stats.cached_gram_matrix(_checkpoints(*tiny_models)), first)
    assert len(computed) == 1
    # the order of the anchors is part of what is computed
    swapped = weight_stats.cached_gram_matrix(_checkpoints(tiny_models[1], tiny_models[0]))
    assert len(computed) == 2
    np.testing.assert_allclose(swapped, first[np.ix_([1, 0], [1, 0])], rtol=1e-12)


def test_a_changed_anchor_file_is_read_again(computed, tiny_models, tmp_path):
    copy = _copy(tiny_models[1], tmp_path / "copy")
    before = weight_stats.cached_gram_matrix(_checkpoints(tiny_models[0], copy))
    _edit(copy, "classifier.bias", 0.5)  # same path, same name: other bytes
    after = weight_stats.cached_gram_matrix(_checkpoints(tiny_models[0], copy))
    assert len(computed) == 2
    np.testing.assert_allclose(after, _hand_gram([tiny_models[0], copy]), rtol=1e-10)
    assert after[1, 1] != before[1, 1]


def test_a_changed_space_or_base_is_computed_afresh(computed, tiny_models):
    models = _checkpoints(*tiny_models)
    everything = weight_stats.cached_gram_matrix(models)
    no_head = weight_stats.cached_gram_matrix(models, ParameterSpace("no-head"))
    assert len(computed) == 2
    expected = _hand_gram(tiny_models, keep=lambda n: not n.startswith("classifier."))
    np.testing.assert_allclose(no_head, expected, rtol=1e-10)
    assert not np.allclose(no_head, everything)
    about_first = weight_stats.cached_gram_matrix(models, base=models[0])
    about_last = weight_stats.cached_gram_matrix(models, base=models[2])
    assert len(computed) == 4
    np.testing.assert_allclose(
        about_first, _hand_gram(tiny_models, base=tiny_models[0]), rtol=1e-9, atol=1e-9
    )
    np.testing.assert_allclose(
        about_last, _hand_gram(tiny_models, base=tiny_models[2]), rtol=1e-9, atol=1e-9
    )
    # the same inputs again: all four are answered from the cache
    weight_stats.cached_gram_matrix(models, ParameterSpace("no-head"))
    weight_stats.cached_gram_matrix(models, base=models[2])
    assert len(computed) == 4


def test_a_damaged_entry_or_cache_file_only_costs_time(computed, tiny_models, tmp_path):
    models = _checkpoints(*tiny_models)
    expected = weight_stats.cached_gram_matrix(models)
    db = tmp_path / "cache" / derived_cache.FILE_NAME
    with sqlite3.connect(db) as connection:  # bytes flipped on disk: the checksum fails
        connection.execute("UPDATE derived SET value = zeroblob(length(value))")
    assert np.array_equal(weight_stats.cached_gram_matrix(models), expected)
    assert len(computed) == 2
    junk = b"not a matrix"  # a valid checksum over bytes that are no float64 N x N array
    with sqlite3.connect(db) as connection:
        connection.execute(
            "UPDATE derived SET value = ?, checksum = ?",
            (junk, __import__("hashlib").sha256(junk).hexdigest()),
        )
    assert np.array_equal(weight_stats.cached_gram_matrix(models), expected)
    assert len(computed) == 3
    derived_cache.forget_connection()
    db.write_bytes(b"this is not an SQLite file" * 100)  # the whole cache file damaged
    assert np.array_equal(weight_stats.cached_gram_matrix(models), expected)
    assert len(computed) == 4


def test_rehash_ignores_the_cache(computed, tiny_models, monkeypatch):
    models = _checkpoints(*tiny_models)
    weight_stats.cached_gram_matrix(models)
    monkeypatch.setenv(hash_cache.REHASH_ENV, "1")
    weight_stats.cached_gram_matrix(models)
    assert len(computed) == 2


def test_an_edit_of_the_code_changes_its_version(tmp_path, monkeypatch):
    package = tmp_path / "wscodever"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "gram.py").write_text("SCALE = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    first = derived_cache.code_version(["wscodever"])
    assert derived_cache.code_version(["wscodever"]) == first
    assert derived_cache.code_version(["wscodever.gram"]) != first  # one file, not the package
    (package / "gram.py").write_text("SCALE = 2\n")
    assert derived_cache.code_version(["wscodever"]) != first
    sys.modules.pop("wscodever", None)


MATRIX = np.array([[0.0, 1.5, 2.0], [1.5, 0.0, 0.25], [2.0, 0.25, 0.0]])
NAMES = ["a", "b", "c"]


def _heatmap(png: Path, matrix: np.ndarray = MATRIX, **options) -> Path:
    options = {"title": "Loss barrier", "order": [2, 0, 1], **options}
    return plot_heatmap(matrix, NAMES, png, **options)


@pytest.fixture
def draws(monkeypatch):
    """The number of heatmaps actually drawn."""
    count: list[int] = []
    real = heatmaps.pyplot

    def counting():
        count.append(1)
        return real()

    monkeypatch.setattr(heatmaps, "pyplot", counting)
    return count


def test_a_heatmap_of_the_same_numbers_is_not_drawn_again(draws, tmp_path):
    png = _heatmap(tmp_path / "kept" / "h.png")
    written = png.read_bytes()
    stamp = png.stat().st_mtime_ns
    _heatmap(png)
    assert len(draws) == 1 and png.stat().st_mtime_ns == stamp
    # what was kept is byte for byte what drawing it now gives
    assert _heatmap(tmp_path / "fresh" / "h.png").read_bytes() == written
    assert len(draws) == 2


@pytest.mark.parametrize(
    "change",
    [
        {"matrix": MATRIX + np.where(MATRIX == 0.25, 1e-9, 0.0)},
        {"title": "Loss convexity gap"},
        {"order": [0, 1, 2]},
        {"signed": True},
        {"value_label": "nats"},
    ],
    ids=["one value by 1e-9", "title", "order", "signed", "colour-bar label"],
)
def test_any_change_to_what_a_heatmap_shows_draws_it_again(draws, tmp_path, change):
    png = _heatmap(tmp_path / "h.png")
    before = png.read_bytes()
    changed = _heatmap(png, **change)
    assert len(draws) == 2
    fresh = _heatmap(tmp_path / "fresh.png", **change)
    assert changed.read_bytes() == fresh.read_bytes()
    if "matrix" not in change:  # a 1e-9 change need not move a pixel; the others do
        assert changed.read_bytes() != before


def test_a_foreign_or_damaged_png_is_drawn_over(draws, tmp_path):
    reference = _heatmap(tmp_path / "reference.png").read_bytes()
    png = tmp_path / "h.png"
    Image.new("RGB", (4, 4)).save(tmp_path / "plain.png")  # a PNG with no digest in it
    plain = (tmp_path / "plain.png").read_bytes()
    damaged = reference.replace(b"weightscape", b"otherscapes")  # its checksum fails
    for content in (b"", reference[:100], plain, damaged):
        png.write_bytes(content)
        _heatmap(png)
        assert png.read_bytes() == reference
    assert len(draws) == 5
    assert not drawn_from(tmp_path / "missing.png", "0" * 64)


def _grid(tiny_models, tiny_csv, out: Path) -> list[str]:
    manifest = out.parent / "zoo.yaml"
    manifest.write_text(
        yaml.safe_dump(
            {
                "base": str(tiny_models[0]),
                "models": [{"name": f"m{i}", "path": str(p)} for i, p in enumerate(tiny_models)],
            }
        )
    )
    return ["grid", "--zoo", str(manifest), "--task", str(tiny_csv), "--split", "all",
            "--points", "3", "--out", str(out), "--no-progress", "--device", "cpu"]  # fmt: skip


def test_a_fully_stored_grid_reads_no_weights_and_draws_nothing(
    computed, tiny_models, tiny_csv, tmp_path, monkeypatch, capsys
):
    out = tmp_path / "grid"
    argv = _grid(tiny_models, tiny_csv, out)
    assert main(argv) == 0, capsys.readouterr().err
    assert len(computed) == 2  # the distances (about the first model) and the task vectors
    files = {p.name: p.read_bytes() for p in out.iterdir() if p.suffix in (".png", ".csv")}
    assert {"euclidean.png", "task_vector_cosine.csv", "loss_barrier.png"} <= set(files)

    def refuse(*args, **kwargs):
        raise AssertionError("a stored rerun read the anchors' weights or drew a figure")

    monkeypatch.setattr(weight_stats, "gram_matrix", refuse)
    monkeypatch.setattr(heatmaps, "pyplot", refuse)
    assert main(argv) == 0, capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.name in files} == files
