"""The fault suite: deterministic kills, many writers on one zoo, hostile names in every output.

A killed run is a child process that kills itself (SIGKILL, no clean-up) at a chosen point: the
K-th stored point, the start-up (the engine's construction), or the K-th output file, between
writing it and renaming it into place. The rerun must give the outputs of a run never killed,
recompute nothing that was stored, and leave no folder marked incomplete.
"""

from __future__ import annotations

import csv
import json
import multiprocessing
import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from weightscape.cli.main import main
from weightscape.outputs import INCOMPLETE
from weightscape.provenance import RUN_FILE
from weightscape.runtime.store import ResultStore

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}

KILLER = textwrap.dedent(
    """
    import os, signal, sys
    import weightscape.outputs as outputs
    from weightscape.cli.main import main
    from weightscape.evaluation.engine import Engine
    from weightscape.runtime.store import ResultStore

    where, k = sys.argv[1].split(":")
    k, count = int(k), [0]

    def die_at_k():
        count[0] += 1
        if count[0] == k:
            os.kill(os.getpid(), signal.SIGKILL)

    if where == "put":
        put = ResultStore.put
        def patched(self, *a, **kw):
            put(self, *a, **kw)
            die_at_k()
        ResultStore.put = patched
    elif where == "start":
        init = Engine.__init__
        def patched(self, *a, **kw):
            die_at_k()
            init(self, *a, **kw)
        Engine.__init__ = patched
    elif where == "write":  # the file is written under its temporary name, not yet renamed
        replace = os.replace
        def patched(src, dst, *a, **kw):
            die_at_k()
            replace(src, dst, *a, **kw)
        outputs.os.replace = patched
    sys.exit(main(sys.argv[2:]))
    """
)


def _interpolate(models, csv_path, out: Path) -> list[str]:
    return [
        "interpolate", str(models[0]), str(models[1]), "--task", str(csv_path), "--split", "all",
        "--points", "6", "--device", "cpu", "--no-progress", "--out", str(out),
    ]  # fmt: skip


def _grid(models, csv_path, out: Path) -> list[str]:
    return [
        "grid", "--models", str(Path(models[0]).parent / "m*"), "--task", str(csv_path),
        "--split", "all", "--points", "4", "--device", "cpu", "--no-progress", "--out", str(out),
    ]  # fmt: skip


COMMANDS = {"interpolate": _interpolate, "grid": _grid}
KILLS = [
    *[("interpolate", f"put:{k}") for k in range(1, 7)],
    *[("grid", f"put:{k}") for k in (1, 3, 5, 7, 9)],
    ("interpolate", "start:1"),
    ("grid", "start:1"),
    *[("interpolate", f"write:{k}") for k in (1, 2, 3)],
    *[("grid", f"write:{k}") for k in (1, 4, 8, 12)],
]


def _outputs(command: str, out: Path) -> object:
    """What a finished run's outputs say (the numbers a user reads)."""
    if command == "interpolate":
        walk = json.loads((out / "path.json").read_text())
        with (out / "path.csv").open() as handle:
            rows = [row[:-1] for row in csv.reader(handle)]  # all but 'cached', which may differ
        return [p["metrics"] for p in walk["points"]], rows
    grid = json.loads((out / "grid.json").read_text())
    matrices = sorted(p.name for p in out.glob("*.csv"))
    return grid["names"], matrices, [(out / m).read_text() for m in matrices]


@pytest.fixture(scope="module")
def references(tiny_models, tiny_csv, tmp_path_factory):
    """Each command run once, never killed."""
    refs = {}
    for name, build in COMMANDS.items():
        out = tmp_path_factory.mktemp(f"ref-{name}")
        assert main(build(tiny_models, tiny_csv, out)) == 0
        refs[name] = (_outputs(name, out), len(ResultStore(out / "results.sqlite")))
    return refs


@pytest.mark.parametrize(("command", "kill"), KILLS, ids=[f"{c}-{k}" for c, k in KILLS])
def test_a_killed_run_resumes_to_the_same_outputs(
    command, kill, references, tiny_models, tiny_csv, tmp_path, monkeypatch
):
    out = tmp_path / "out"
    argv = COMMANDS[command](tiny_models, tiny_csv, out)
    child = subprocess.run(
        [sys.executable, "-c", KILLER, kill, *argv], env=ENV, capture_output=True
    )
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()[-2000:]
    store_path = out / "results.sqlite"
    stored = len(ResultStore(store_path)) if store_path.exists() else 0
    if kill.startswith("put"):
        assert stored == int(kill.split(":")[1])
    put, computed = ResultStore.put, []

    def counting(self, key, *args, **kwargs):
        computed.append(key)
        put(self, key, *args, **kwargs)

    monkeypatch.setattr(ResultStore, "put", counting)
    assert main(argv) == 0
    reference, total = references[command]
    assert _outputs(command, out) == reference
    assert len(computed) == total - stored  # nothing stored was computed again
    assert not (out / INCOMPLETE).exists()
    record = json.loads((out / RUN_FILE).read_text())
    assert record["points"]["computed"] == len(computed)  # the record counts what was computed


def test_the_suite_kills_at_twenty_points_or_more():
    assert len(KILLS) >= 20


def test_a_killed_run_leaves_its_folder_marked_incomplete(tiny_models, tiny_csv, tmp_path):
    out = tmp_path / "out"
    argv = _interpolate(tiny_models, tiny_csv, out)
    child = subprocess.run([sys.executable, "-c", KILLER, "put:2", *argv], env=ENV)
    assert child.returncode == -signal.SIGKILL
    marker = json.loads((out / INCOMPLETE).read_text())
    assert marker["writing"].startswith("weightscape interpolate")
    assert not (out / "path.json").exists()  # no output pretends to be complete
    assert not (out / RUN_FILE).exists()  # nor does a record of the run


def _append(manifest: str, name: str, barrier) -> None:
    from weightscape.models.zoo import append_to_manifest

    barrier.wait()
    for i in range(10):
        append_to_manifest(Path(manifest), {"name": f"{name}-{i}", "path": f"{name}/{i}"})


def test_many_runs_appending_to_one_zoo_lose_no_entry(tmp_path):
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(8)
    manifest = tmp_path / "zoo.yaml"
    workers = [
        context.Process(target=_append, args=(str(manifest), f"w{i}", barrier)) for i in range(8)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert [w.exitcode for w in workers] == [0] * 8
    names = {m["name"] for m in yaml.safe_load(manifest.read_text())["models"]}
    assert names == {f"w{i}-{k}" for i in range(8) for k in range(10)}


HOSTILE = ["<script>alert(1)</script>", "a|b", "two\nlines", "$x^2$", "../up", "semi;colon"]


def test_hostile_names_are_escaped_in_every_output(tiny_models, tokenizer_dir, tmp_path):
    """Model names and tags from a user, in CSV, JSON, Markdown and plots of `similarity`."""
    zoo = {
        "models": [
            {"name": name, "path": str(tiny_models[1 + i % 2]), "tags": {"dataset": HOSTILE[i % 2]}}
            for i, name in enumerate(HOSTILE)
        ]
    }
    (tmp_path / "zoo.yaml").write_text(yaml.safe_dump(zoo))
    out = tmp_path / "sim"
    code = main(
        ["similarity", "--zoo", str(tmp_path / "zoo.yaml"), "--base", str(tiny_models[0]),
         "--out", str(out), "--space", "all"]
    )  # fmt: skip
    assert code == 0
    written = {p.relative_to(tmp_path) for p in tmp_path.rglob("*")}
    assert all(str(p).startswith(("sim", "zoo.yaml")) for p in written)  # nothing escaped out
    cells = set()
    for table in out.glob("*.csv"):
        with table.open() as handle:
            rows = list(csv.reader(handle))
        assert len({len(row) for row in rows}) == 1, table.name  # no name broke a row
        cells |= {cell for row in rows for cell in row}
    assert set(HOSTILE) <= cells  # every name comes back exactly, quoted where CSV needs it
    for document in out.glob("*.json"):
        text = json.loads(document.read_text())
        if document.name == RUN_FILE:  # the run's record: no model is evaluated, none named
            continue
        assert "<script>alert(1)</script>" in json.dumps(text)  # JSON keeps them, quoted
    for markdown in out.glob("*.md"):
        text = markdown.read_text()
        assert "<script>" not in text and "&lt;script&gt;" in text
        for table in _tables(text):  # a | or a newline in a name cannot add or split a cell
            assert len({len(re.split(r"(?<!\\)\|", row)) for row in table}) == 1, table
    pngs = list(out.glob("*.png"))
    assert pngs and all(p.stat().st_size > 1000 for p in pngs)  # '$x^2$' drew as text


def _tables(text: str) -> list[list[str]]:
    tables, current = [], []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            current.append(line)
        elif current:
            tables.append(current)
            current = []
    return tables


def test_a_full_disk_while_a_plot_is_written_is_one_message_and_no_half_file(
    tiny_models, tiny_csv, tmp_path, monkeypatch, capsys
):
    """The points are stored; the plot fails to write (ENOSPC): exit 2, no traceback, no PNG."""
    import errno

    from matplotlib.figure import Figure

    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Figure, "savefig", full)
    out = tmp_path / "out"
    assert main(_interpolate(tiny_models, tiny_csv, out)) == 2
    err = capsys.readouterr().err
    assert "No space left on device" in err and "path.png" in err and "Traceback" not in err
    assert not (out / "path.png").exists()
    assert not list(out.glob(".path.png.partial-*"))
    assert len(ResultStore(out / "results.sqlite")) == 6  # the computed points are kept
    assert (out / INCOMPLETE).exists()  # and the folder says it is not whole
