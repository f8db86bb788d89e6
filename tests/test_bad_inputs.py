"""The bad-input corpus: every user mistake gets one clear message, exit status 2, no traceback,
and nothing already stored changes.

Each case builds its inputs in a temporary folder and runs the command in process against a
results store that already holds points; the store's rows must be exactly the same afterwards.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from weightscape.cli.main import main
from weightscape.runtime.store import SCHEMA_VERSION, ResultStore


class Env:
    """What a case builds on: tiny models, a task file, a filled store, a scratch folder."""

    def __init__(self, models: list[Path], csv: Path, tmp: Path, store: Path) -> None:
        self.models, self.csv, self.tmp, self.store = models, csv, tmp, store

    def copy(self, i: int = 0, name: str = "copy") -> Path:
        return Path(shutil.copytree(self.models[i], self.tmp / name))

    def walk(self, *extra: str, a: str | None = None, b: str | None = None) -> list[str]:
        return [
            "interpolate",
            a or str(self.models[0]),
            b or str(self.models[1]),
            "--task",
            str(self.csv),
            "--split",
            "all",
            "--points",
            "3",
            "--device",
            "cpu",
            "--no-progress",
            "--out",
            str(self.tmp / "out"),
            "--store",
            str(self.store),
            *extra,
        ]

    def file(self, name: str, text: str | bytes) -> Path:
        path = self.tmp / name
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text)
        return path

    def config(self, folder: Path, **changes) -> Path:
        config = json.loads((folder / "config.json").read_text())
        config.update(changes)
        (folder / "config.json").write_text(json.dumps(config))
        return folder


class Evil:
    def __reduce__(self):
        return (Path("/tmp/weightscape-pickle-ran").touch, ())


def _pickle_checkpoint(env: Env) -> str:
    folder = env.copy()
    (folder / "model.safetensors").unlink()
    with (folder / "pytorch_model.bin").open("wb") as handle:
        pickle.dump({"w": Evil()}, handle)
    return str(folder)


def _sharded(env: Env, index: str) -> str:
    folder = env.copy()
    (folder / "model.safetensors.index.json").write_text(index)
    return str(folder)


def _zoo(env: Env, data) -> str:
    return str(env.file("zoo.yaml", data if isinstance(data, str) else yaml.safe_dump(data)))


def _grid_folder(env: Env, truncate: str) -> str:
    folder = env.tmp / "grid"
    folder.mkdir()
    (folder / "grid.json").write_text(
        '{"names": ["a", "b"], "matr' if truncate == "json" else '{"names": ["a", "b"]}'
    )
    (folder / "grid.npz").write_bytes(b"PK\x03\x04 truncated")
    return str(folder)


def _study(env: Env, text: str) -> str:
    return str(env.file("study.yaml", text))


def _newer_store(env: Env) -> str:
    path = env.tmp / "newer.sqlite"
    ResultStore(path).close()
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value = ? WHERE name = 'schema_version'", (SCHEMA_VERSION + 5,))
    db.commit()
    db.close()
    return str(path)


def _foreign_store(env: Env) -> str:
    path = env.tmp / "foreign.sqlite"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE accounts (id INTEGER)")
    db.commit()
    db.close()
    return str(path)


def _long_texts(env: Env) -> str:
    words = " ".join(["good"] * 200)
    return str(env.file("long.csv", f"text,label\n{words},positive\nbad film,negative\n"))


def _unnamed(env: Env) -> str:
    return str(env.config(env.copy(), id2label={"0": "LABEL_0", "1": "LABEL_1"}, label2id={}))


def _replace_store(argv: list[str], store: str) -> list[str]:
    i = argv.index("--store")
    return [*argv[: i + 1], store, *argv[i + 2 :]]


Case = tuple[str, Callable[[Env], list[str]], str]
CASES: list[Case] = [
    # checkpoints
    ("missing anchor", lambda e: e.walk(a=str(e.tmp / "nope")), "does not exist"),
    ("unsupported file", lambda e: e.walk(a=str(e.file("m.txt", "x"))), "unsupported suffix"),
    (
        "corrupt safetensors",
        lambda e: e.walk(
            "--config", str(e.models[0]), a=str(e.file("bad.safetensors", b"\x00" * 64))
        ),
        "Cannot read safetensors file",
    ),
    (
        "folder without weights",
        lambda e: e.walk(a=str(Path(e.tmp / "empty").mkdir() or e.tmp / "empty")),
        "holds no weights",
    ),
    (
        "no config",
        lambda e: e.walk(a=str((lambda f: (f / "config.json").unlink() or f)(e.copy()))),
        "No config.json",
    ),
    (
        "config not JSON",
        lambda e: e.walk(
            a=str((lambda f: (f / "config.json").write_text("{oops") and f)(e.copy()))
        ),
        "config",
    ),
    (
        "hidden size not a multiple of heads",
        lambda e: e.walk(a=str(e.config(e.copy(), num_attention_heads=3))),
        "does not describe a model",
    ),
    ("shard index not JSON", lambda e: e.walk(a=_sharded(e, "{not json")), "shard index"),
    ("shard index without weight_map", lambda e: e.walk(a=_sharded(e, "{}")), "weight_map"),
    ("pickle with code", lambda e: e.walk(a=_pickle_checkpoint(e)), "weights_only"),
    (
        "other architecture",
        lambda e: e.walk(a=str(e.config(e.copy(), intermediate_size=32))),
        "do not match the architecture",
    ),
    ("unnamed labels", lambda e: e.walk(a=(u := _unnamed(e)), b=u), "names no labels"),
    (
        "labels of another task",
        lambda e: e.walk(a=(c := str(e.config(e.copy(), id2label={"0": "neg", "1": "pos"}))), b=c),
        "are not the labels of",
    ),
    (
        "remote code",
        lambda e: e.walk(
            a=str(e.config(e.copy(), model_type="evil", auto_map={"AutoConfig": "x.Y"}))
        ),
        "own Python code",
    ),
    # tokenizers
    (
        "missing tokenizer folder",
        lambda e: e.walk("--tokenizer", str(e.tmp / "tok")),
        "does not exist",
    ),
    (
        "tokenizer folder without files",
        lambda e: e.walk("--tokenizer", str(Path(e.tmp / "t").mkdir() or e.tmp / "t")),
        "Cannot load a tokenizer",
    ),
    # tasks
    ("unknown task name", lambda e: e.walk("--task", "rotten_tomatos"), "Did you mean"),
    ("missing task file", lambda e: e.walk("--task", str(e.tmp / "x.csv")), "No file or directory"),
    (
        "empty task file",
        lambda e: e.walk("--task", str(e.file("e.csv", "text,label\n"))),
        "no examples",
    ),
    (
        "task without a text column",
        lambda e: e.walk("--task", str(e.file("c.csv", "body,label\nhi,positive\n"))),
        "text",
    ),
    ("missing label column", lambda e: e.walk("--label-column", "y"), "'y'"),
    (
        "missing label values",
        lambda e: e.walk("--task", str(e.file("m.csv", "text,label\nhi,\nyo,positive\n"))),
        "missing value",
    ),
    (
        "unsupported task format",
        lambda e: e.walk("--task", str(e.file("t.xlsx", "x"))),
        "Unsupported table format",
    ),
    (
        "integer labels with gaps",
        lambda e: e.walk("--task", str(e.file("g.csv", "text,label\nhi,0\nyo,2\n"))),
        "do not cover",
    ),
    (
        "probe on the train split",
        lambda e: e.walk("--probe-train", "8", "--split", "train"),
        "train split",
    ),
    ("texts past the positions", lambda e: e.walk("--task", _long_texts(e)), "positions for 64"),
    ("unknown label map", lambda e: e.walk("--label-map", "mnli_to_han"), "mnli_to_hans"),
    (
        "model labels of another count",
        lambda e: e.walk("--model-labels", "a,b,c"),
        "--model-labels",
    ),
    # zoos
    (
        "missing zoo manifest",
        lambda e: e.walk("--zoo", str(e.tmp / "z.yaml"), a="m0", b="m1"),
        "does not exist",
    ),
    (
        "zoo not YAML",
        lambda e: e.walk("--zoo", _zoo(e, "models: [\n"), a="x", b="y"),
        "Cannot parse zoo manifest",
    ),
    (
        "zoo with an unknown key",
        lambda e: e.walk("--zoo", _zoo(e, {"models": [], "bsae": "x"}), a="x", b="y"),
        "bsae",
    ),
    (
        "name not in the zoo",
        lambda e: e.walk(
            "--zoo", _zoo(e, {"models": [{"name": "m0", "path": str(e.models[0])}]}), a="m0", b="mX"
        ),
        "no model named 'mX'",
    ),
    (
        "zoo with a name twice",
        lambda e: [
            "grid",
            "--zoo",
            _zoo(e, {"models": [{"name": "m", "path": str(p)} for p in e.models[:2]]}),
            "--out",
            str(e.tmp / "g"),
            "--store",
            str(e.store),
        ],
        "more than once",
    ),
    (
        "zoo naming a missing checkpoint",
        lambda e: e.walk(
            "--zoo", _zoo(e, {"models": [{"name": "m0", "path": "gone"}]}), a="m0", b="m0"
        ),
        "cannot be read",
    ),
    # outputs and stores
    ("out is a file", lambda e: e.walk("--out", str(e.file("f", "x"))), "exists and is a file"),
    ("store is a folder", lambda e: _replace_store(e.walk(), str(e.tmp)), "exists and is a folder"),
    (
        "store of another program",
        lambda e: _replace_store(e.walk(), _foreign_store(e)),
        "another program",
    ),
    (
        "store of a newer weightscape",
        lambda e: _replace_store(e.walk(), _newer_store(e)),
        "newer weightscape",
    ),
    (
        "store not SQLite",
        lambda e: _replace_store(e.walk(), str(e.file("s.sqlite", b"x" * 4096))),
        "Cannot open results store",
    ),
    # flags
    ("a billion points", lambda e: e.walk("--points", "1000000000"), "--points"),
    ("one point", lambda e: e.walk("--points", "1"), "--points"),
    ("one t value", lambda e: e.walk("--t", "0.5"), "--t"),
    ("t and points", lambda e: e.walk("--t", "0,1"), "give one of --points, --t"),
    ("unknown path type", lambda e: e.walk("--path", "bezeir"), "bezier"),
    ("unknown space", lambda e: e.walk("--space", "no_head"), "--space"),
    ("bad regex", lambda e: e.walk("--include", "("), "not a valid regular expression"),
    ("no GPU", lambda e: e.walk("--device", "cuda"), "no GPU"),
    ("unknown device", lambda e: e.walk("--device", "tpu"), "--device"),
    ("bad batch size", lambda e: e.walk("--batch-size", "0"), "--batch-size"),
    ("bad split", lambda e: e.walk("--split", "dev"), "--split"),
    # finetune
    (
        "run name outside out",
        lambda e: ["finetune", "--name", "../x", "--task", str(e.csv), "--out", str(e.tmp / "z")],
        "--name",
    ),
    (
        "save steps beyond steps",
        lambda e: [
            "finetune",
            "--name",
            "r",
            "--steps",
            "5",
            "--save-steps",
            "3,9",
            "--task",
            str(e.csv),
            "--base",
            str(e.models[0]),
            "--out",
            str(e.tmp / "z"),
        ],
        "beyond the run's 5 steps",
    ),
    (
        "missing zoo file",
        lambda e: ["finetune", "--zoo-file", str(e.tmp / "s.yaml"), "--out", str(e.tmp / "z")],
        "s.yaml",
    ),
    (
        "zoo file with a typo",
        lambda e: [
            "finetune",
            "--zoo-file",
            str(e.file("s.yaml", "name: r\nsweeep: {}\n")),
            "--out",
            str(e.tmp / "z"),
        ],
        "Did you mean 'sweep'",
    ),
    (
        "missing base",
        lambda e: [
            "finetune",
            "--name",
            "r",
            "--base",
            str(e.tmp / "base"),
            "--task",
            str(e.csv),
            "--steps",
            "1",
            "--out",
            str(e.tmp / "z"),
        ],
        "neither a built-in name",
    ),
    ("unknown method", lambda e: ["finetune", "--name", "r", "--method", "prefix"], "--method"),
    # grids and basins
    (
        "basins without a grid",
        lambda e: ["basins", str(e.tmp), "--store", str(e.store)],
        "holds no grid",
    ),
    (
        "basins on a truncated grid",
        lambda e: ["basins", _grid_folder(e, "json"), "--store", str(e.store)],
        "grid",
    ),
    (
        "grid of one model",
        lambda e: [
            "grid",
            "--models",
            str(e.models[0]),
            "--out",
            str(e.tmp / "g"),
            "--store",
            str(e.store),
        ],
        "at least 2 models",
    ),
    (
        "grid with zoo and models",
        lambda e: ["grid", "--zoo", "z", "--models", "m"],
        "give exactly one of --zoo or --models",
    ),
    # study files
    ("missing study file", lambda e: ["run", str(e.tmp / "s.yaml")], "does not exist"),
    ("study not YAML", lambda e: ["run", _study(e, "steps: [\n")], "Cannot parse study file"),
    (
        "study with an unknown step",
        lambda e: ["run", _study(e, "name: s\nsteps: [{gird: {}}]\n")],
        "Did you mean 'grid'",
    ),
    (
        "bad override",
        lambda e: ["run", _study(e, "name: s\nsteps: [{grid: {}}]\n"), "steps.0"],
        "key=value",
    ),
]


def _rows(store: Path) -> str:
    db = sqlite3.connect(store)
    rows = db.execute("SELECT key, metrics, arrays FROM points ORDER BY key").fetchall()
    db.close()
    return hashlib.sha256(repr(rows).encode()).hexdigest()


@pytest.fixture(scope="module")
def filled_store(tiny_models, tiny_csv, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("filled")
    store = folder / "results.sqlite"
    env = Env(tiny_models, tiny_csv, folder, store)
    assert main(env.walk()) == 0
    db = sqlite3.connect(store)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # every row in the file itself, to copy it
    db.close()
    return store


def test_the_corpus_is_large():
    assert len(CASES) >= 60
    assert len({name for name, _, _ in CASES}) == len(CASES)


@pytest.mark.parametrize(("name", "build", "expected"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_clear_message(
    name, build, expected, filled_store, tiny_models, tiny_csv, tmp_path, capsys
):
    store = tmp_path / "results.sqlite"
    shutil.copy(filled_store, store)
    before = _rows(store)
    env = Env(tiny_models, tiny_csv, tmp_path, store)
    marker = Path("/tmp/weightscape-pickle-ran")
    marker.unlink(missing_ok=True)
    code = main(build(env))
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    assert expected in err, err
    assert _rows(store) == before  # nothing stored changed
    assert not marker.exists()
