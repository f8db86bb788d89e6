"""The store as a database for many writers: versions, foreign files, claims, busy writers.

Processes start together at a multiprocessing barrier (no timing, no polling deadlines).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import socket
import sqlite3
import time
from pathlib import Path

import numpy as np
import pytest

from weightscape.errors import WeightscapeError
from weightscape.evaluation.result import PointResult
from weightscape.runtime.store import SCHEMA_VERSION, ResultStore

CONTEXT = multiprocessing.get_context("spawn")


def _result(value: float) -> PointResult:
    return PointResult({"loss": value}, np.arange(4), np.ones(4, "f4"), np.zeros(4, "f4"))


def _writer(path: str, tag: int, barrier, points: int) -> None:
    barrier.wait()  # every writer opens the fresh store at the same moment
    store = ResultStore(path)
    for i in range(points):
        store.put(f"{tag}-{i}", {"i": i}, _result(float(i)), 0.0)
    store.close()


def test_sixteen_writers_on_a_fresh_store_lose_nothing(tmp_path):
    path = str(tmp_path / "fresh.sqlite")
    barrier = CONTEXT.Barrier(16)
    workers = [CONTEXT.Process(target=_writer, args=(path, tag, barrier, 25)) for tag in range(16)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert [w.exitcode for w in workers] == [0] * 16
    store = ResultStore(path)
    assert len(store) == 16 * 25
    assert all(f"{t}-{i}" in store for t in range(16) for i in range(25))


def _grid_worker(argv: list[str], barrier, out: str) -> None:
    import sys

    import torch

    torch.set_num_threads(1)
    from weightscape.cli.main import main

    barrier.wait()
    sys.exit(main([*argv, "--out", out]))


def test_two_runs_of_one_walk_on_one_store_share_the_work(tiny_models, tiny_csv, tmp_path):
    store = tmp_path / "shared.sqlite"
    argv = [
        "interpolate",
        str(tiny_models[0]),
        str(tiny_models[1]),
        "--task",
        str(tiny_csv),
        "--split",
        "all",
        "--points",
        "41",
        "--device",
        "cpu",
        "--no-progress",
        "--store",
        str(store),
    ]
    barrier = CONTEXT.Barrier(2)
    outs = [str(tmp_path / name) for name in ("a", "b")]
    workers = [CONTEXT.Process(target=_grid_worker, args=(argv, barrier, o)) for o in outs]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert [w.exitcode for w in workers] == [0, 0]
    walks = [json.loads((tmp_path / n / "path.json").read_text()) for n in ("a", "b")]
    computed = [w["computed"] for w in walks]
    assert len(ResultStore(store)) == 41
    overlap = sum(computed) - 41
    print(f"\ntwo workers computed {computed} of 41 points: overlap {overlap}")
    assert overlap == 0  # each point computed once: a claimed point is read back, not redone
    metrics = [[p["metrics"] for p in walk["points"]] for walk in walks]
    assert metrics[0] == metrics[1]  # both read the same 41 results


def test_a_store_of_another_program_is_refused_and_left_alone(tmp_path):
    path = tmp_path / "other.sqlite"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE invoices (id INTEGER)")
    db.commit()
    db.close()
    before = path.read_bytes()
    with pytest.raises(WeightscapeError, match=r"another program.*invoices"):
        ResultStore(path)
    assert path.read_bytes() == before


def test_a_points_table_of_other_columns_is_refused(tmp_path):
    path = tmp_path / "odd.sqlite"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE points (key TEXT, value REAL)")
    db.commit()
    db.close()
    with pytest.raises(WeightscapeError, match="columns key, value"):
        ResultStore(path)


def test_a_newer_schema_is_refused(tmp_path):
    path = tmp_path / "new.sqlite"
    ResultStore(path).close()
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value = ? WHERE name = 'schema_version'", (SCHEMA_VERSION + 1,))
    db.commit()
    db.close()
    with pytest.raises(WeightscapeError, match="newer weightscape"):
        ResultStore(path)


def test_a_store_from_before_versions_is_upgraded_and_read(tmp_path):
    path = tmp_path / "v1.sqlite"
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE points (key TEXT PRIMARY KEY, spec TEXT NOT NULL, metrics TEXT NOT NULL, "
        "arrays BLOB NOT NULL, seconds REAL NOT NULL, created REAL NOT NULL)"
    )
    old = _result(3.0)
    db.execute(
        "INSERT INTO points VALUES (?, ?, ?, ?, ?, ?)",
        ("k", "{}", json.dumps(old.metrics), old.arrays_to_bytes(), 0.1, 0.0),
    )
    db.commit()
    db.close()
    store = ResultStore(path)
    assert store.get("k").metrics == {"loss": 3.0}
    version = store._db.execute("SELECT value FROM meta WHERE name='schema_version'").fetchone()
    assert int(version[0]) == SCHEMA_VERSION


def test_claims_keep_a_point_to_one_live_worker(tmp_path):
    store = ResultStore(tmp_path / "claims.sqlite")
    host = socket.gethostname()
    alive = f"{host}:{os.getppid()}"  # a process that runs while this test does
    assert store.claim("k", owner=alive, lease=60)
    assert not store.claim("k")  # held by a live worker
    store.release("k", owner=alive)
    assert store.claim("k")  # released: ours now
    store.put("k", {}, _result(1.0), 0.0)  # stored: the claim ends with it
    assert store.claim("k", owner=alive)  # a stored point needs no lease: nothing to compute


def test_a_claim_of_a_dead_or_expired_worker_frees_at_once(tmp_path):
    store = ResultStore(tmp_path / "claims.sqlite")
    child = CONTEXT.Process(target=int)
    child.start()
    child.join()  # this pid has ended
    dead = f"{socket.gethostname()}:{child.pid}"
    assert store.claim("a", owner=dead, lease=3600)
    assert store.claim("a")  # its owner is gone: the lease is void
    elsewhere = "other-host:1"
    assert store.claim("b", owner=elsewhere, lease=3600)
    assert not store.claim("b")  # another machine's worker is presumed alive...
    with store._db:
        store._db.execute("UPDATE claims SET expires = ? WHERE key = 'b'", (time.time() - 1,))
    assert store.claim("b")  # ...until its lease expires


def test_a_read_only_store_missing_points_fails_before_computing(
    tiny_models, tiny_task, tmp_path, monkeypatch
):
    from weightscape.evaluation.engine import Engine
    from weightscape.models.checkpoint import Checkpoint
    from weightscape.runtime.executor import evaluate_points

    anchors = [Checkpoint.from_path(p) for p in tiny_models[:2]]
    engine = Engine(anchors, tiny_task, device="cpu")
    store = ResultStore(tmp_path / "ro.sqlite")
    evaluate_points(engine, [[1.0, 0.0]], store)  # one point stored
    calls = []
    monkeypatch.setattr(engine, "evaluate", lambda row: calls.append(row))
    monkeypatch.setattr(ResultStore, "writable", property(lambda self: False))
    assert evaluate_points(engine, [[1.0, 0.0]], store)[0].cached  # reading still works
    with pytest.raises(WeightscapeError, match="read-only and 1 of these points"):
        evaluate_points(engine, [[1.0, 0.0], [0.5, 0.5]], store)
    assert calls == []


def test_a_writer_blocked_past_its_wait_gets_one_message_not_a_traceback(tmp_path):
    """Another connection holds the store locked the whole time: the write gives up after its
    wait with a message (nothing half-written), instead of dying on SQLite's own timeout."""
    path = tmp_path / "busy.sqlite"
    ResultStore(path).close()
    holder = sqlite3.connect(path)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        store = ResultStore.__new__(ResultStore)  # opened before the lock was taken
        store.path, store.wait = path, 0.3
        store._db = sqlite3.connect(str(path), timeout=0.05)
        with pytest.raises(WeightscapeError, match=r"stayed busy .* rerun to resume"):
            store.put("k", {}, _result(1.0), 0.0)
    finally:
        holder.rollback()
        holder.close()
    assert "k" not in ResultStore(path)


def test_an_output_folder_that_cannot_be_written_is_refused_up_front(tmp_path, monkeypatch, capsys):
    from weightscape.cli.main import main

    real_access = os.access
    locked = tmp_path / "locked"
    locked.mkdir()
    monkeypatch.setattr(
        os, "access", lambda p, mode: False if Path(p) == locked else real_access(p, mode)
    )
    code = main(["interpolate", "a", "b", "--out", str(locked / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert f"--out: cannot write in '{locked}'" in err
