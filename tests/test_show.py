"""What a results store says it holds: schema 3's names, runs and uses; ``weightscape show``'s
groups, filters and exports, read back against the store and the commands' own outputs."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import pandas as pd
import pytest
import yaml

from weightscape.cli.main import main
from weightscape.errors import WeightscapeError
from weightscape.evaluation.result import PointResult
from weightscape.runtime.store import SCHEMA_VERSION, ResultStore
from weightscape.runtime.store_view import group_points, point_kind, tidy_points, uses_of

HOSTILE = "<script>alert(1)</script>"
COMMON = ["--no-progress", "--device", "cpu"]


def _run(argv: list[str], capsys) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def shared(tiny_models, tiny_csv, tmp_path_factory):
    """One store written by three real commands on the tiny models, in this order:

    - ``interpolate m0 m1 --points 5`` on the whole task: endpoints m0, m1 and the pair at
      t = 0.25, 0.5, 0.75 (5 points);
    - the same line scored by the probe, 3 points on the test split (3 probe points);
    - ``grid`` over a zoo naming m2 ``<script>alert(1)</script>``, 3 points per pair: m0, m1 and
      m0 + m1 at t = 0.5 are reused, m2 and its two midpoints are new (3 points).

    11 points in all.
    """
    root = tmp_path_factory.mktemp("show")
    store = root / "results.sqlite"
    task = ["--task", str(tiny_csv), "--store", str(store), *COMMON]
    line = ["interpolate", str(tiny_models[0]), str(tiny_models[1]), *task]
    assert main([*line, "--split", "all", "--points", "5", "--out", str(root / "path")]) == 0
    probe = ["--split", "test", "--points", "3", "--probe-train", "20"]
    assert main([*line, *probe, "--out", str(root / "probe")]) == 0
    zoo = root / "zoo.yaml"
    names = ["m0", "m1", HOSTILE]
    models = [{"name": n, "path": str(p)} for n, p in zip(names, tiny_models, strict=True)]
    zoo.write_text(yaml.safe_dump({"base": str(tiny_models[0]), "models": models}))
    grid = ["grid", "--zoo", str(zoo), "--split", "all", "--points", "3", "--out"]
    assert main([*grid, str(root / "grid"), *task]) == 0
    return root, store


def _groups(out: str) -> dict[tuple[str, str, str], list[str]]:
    """The terminal table's rows by (anchors, task, kind): the rest of their cells."""
    lines = out.splitlines()
    header = next(i for i, text in enumerate(lines) if text.startswith("anchors"))
    rows = {}
    for text in lines[header + 1 :]:
        if text.startswith(("settings", "points:", "wrote", "provenance")):
            break
        cells = text.split("  ")
        cells = [c.strip() for c in cells if c.strip()]
        rows[tuple(cells[:3])] = cells[3:]
    return rows


def _stored(store: Path) -> dict[str, dict]:
    db = sqlite3.connect(store)
    try:
        return {k: json.loads(m) for k, m in db.execute("SELECT key, metrics FROM points")}
    finally:
        db.close()


# --- show: groups and filters ----------------------------------------------------------------


def test_show_lists_each_group_with_its_count(shared, tiny_csv, capsys):
    _, store = shared
    code, out, err = _run(["show", str(store)], capsys)
    assert code == 0, err
    assert f"(schema {SCHEMA_VERSION}): 11 points, 11 shown" in out
    task, probe = tiny_csv.stem, f"{tiny_csv.stem}:test"
    groups = _groups(out)
    counts = {group: int(cells[0]) for group, cells in groups.items()}
    assert counts == {
        (HOSTILE, task, "endpoint"): 1,
        (f"{HOSTILE} + m0", task, "pair"): 1,
        (f"{HOSTILE} + m1", task, "pair"): 1,
        ("m0", task, "endpoint"): 1,
        ("m0 + m1", task, "pair"): 3,
        ("m1", task, "endpoint"): 1,
        ("m0", probe, "probe"): 1,
        ("m0 + m1", probe, "probe"): 1,
        ("m1", probe, "probe"): 1,
    }
    assert groups[("m0 + m1", task, "pair")][1] == "0.25..0.75"  # every coefficient of the 3
    assert groups[("m0", task, "endpoint")][1] == "1"
    # Two settings: the probe's adds its own; the table numbers them.
    assert groups[("m0", probe, "probe")][-1] == "[2]"
    assert '"probe": {' in out


def test_show_headline_numbers_are_the_stored_ones(shared, capsys):
    _, store = shared
    code, out, _ = _run(
        ["show", str(store), "--kind", "pair", "--anchor", "m0", "--anchor", "m1"], capsys
    )
    assert code == 0
    stored = ResultStore(store, read_only=True)
    rows = tidy_points(stored, kind="pair", anchors=["m0", "m1"])
    losses = [stored.get(r["key"]).metrics["loss"] for r in rows]
    accuracy = [stored.get(r["key"]).metrics["accuracy"] for r in rows]
    stored.close()
    assert len(rows) == 3
    cells = _groups(out)[("m0 + m1", rows[0]["task"], "pair")]
    mean = sum(losses) / 3
    expected = f"{mean:.4f} ({min(losses):.4f}..{max(losses):.4f})"
    if min(losses) == max(losses):
        expected = f"{mean:.4f}"
    assert cells[2] == expected
    assert cells[3].startswith(f"{sum(accuracy) / 3:.4f}")


@pytest.mark.parametrize(
    ("flags", "shown"),
    [
        (["--kind", "probe"], 3),
        (["--kind", "endpoint"], 3),
        (["--anchor", "m1"], 7),  # m1, m0 + m1 x 3, HOSTILE + m1, probe m1, probe m0 + m1
        (["--anchor", "m0", "--anchor", "m1"], 4),
        (["--anchor", HOSTILE], 3),
        (["--anchor", "nobody"], 0),
        (["--task", "generated:test"], 3),
        (["--task", "generated", "--kind", "pair"], 5),
    ],
)
def test_filters(shared, flags, shown, capsys):
    _, store = shared
    code, out, err = _run(["show", str(store), *flags], capsys)
    assert code == 0, err
    assert f"11 points, {shown} shown" in out
    if shown == 0:
        assert "no stored points match" in out


def test_runs_and_what_they_used(shared, capsys):
    root, store = shared
    db = sqlite3.connect(store)
    runs = dict(db.execute("SELECT command, id FROM runs WHERE command = 'grid'"))
    db.close()
    view = ResultStore(store, read_only=True)
    uses = uses_of(view, runs["grid"])
    # 3 endpoints and 3 midpoints; m2's endpoint and both its midpoints were computed by grid.
    assert len(uses) == 6 and sum(u["computed"] for u in uses) == 3
    rows = {r["key"]: r for r in tidy_points(view, run=runs["grid"])}
    assert set(rows) == {u["key"] for u in uses}
    computed = {rows[u["key"]]["anchor_1"] for u in uses if u["computed"]}
    assert computed == {HOSTILE}  # every computed point has m2 (named HOSTILE; "<" sorts first)
    everything = {r["key"]: r for r in tidy_points(view)}
    view.close()
    walk = json.loads((root / "path" / "path.json").read_text())
    middle = walk["points"][2]["key"]  # t = 0.5: the line's and the grid's
    assert everything[middle]["commands"] == "grid;interpolate"
    assert everything[walk["points"][1]["key"]]["commands"] == "interpolate"
    code, out, _ = _run(["show", str(store), "--run", runs["grid"]], capsys)
    assert code == 0 and "11 points, 6 shown" in out


# --- exports ---------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_export_rows_equal_the_stored_points(shared, fmt, tmp_path, capsys):
    root, store = shared
    out_dir = tmp_path / "export"
    code, out, err = _run(["show", str(store), "--export", fmt, "--out", str(out_dir)], capsys)
    assert code == 0, err
    path = out_dir / f"points.{fmt}"
    assert f"wrote {path}: 11 rows" in out
    if fmt == "parquet":
        frame = pd.read_parquet(path)
    else:
        frame = pd.read_csv(path, float_precision="round_trip")
    assert len(frame) == 11
    stored = _stored(store)
    assert set(frame["key"]) == set(stored)
    for row in frame.to_dict("records"):
        for metric, value in stored[row["key"]].items():
            assert row[metric] == value, (row["key"], metric)
    by_key = frame.set_index("key")
    walk = json.loads((root / "path" / "path.json").read_text())
    assert [p["t"] for p in walk["points"]] == [0.0, 0.25, 0.5, 0.75, 1.0]
    for point in walk["points"]:
        row = by_key.loc[point["key"]]
        assert row["loss"] == point["metrics"]["loss"]
        assert row["accuracy"] == point["metrics"]["accuracy"]
        if 0 < point["t"] < 1:
            assert row["kind"] == "pair"
            assert (row["anchor_1"], row["anchor_2"]) == ("m0", "m1")
            assert [row["coef_1"], row["coef_2"]] == point["coefficients"]
        else:
            assert row["kind"] == "endpoint" and float(row["coef_1"]) == 1.0
    assert set(frame["anchor_1"]) >= {"m0", HOSTILE}
    probe = frame[frame["kind"] == "probe"]
    assert len(probe) == 3 and set(probe["evaluation"]) == {"probe"}
    assert set(frame["setting_device"]) == {"cpu"}
    assert int(frame["examples"][frame["kind"] == "probe"].iloc[0]) == 6  # 60 examples: test 1/10


def test_export_defaults_next_to_the_store(tiny_models, tiny_csv, tmp_path, capsys):
    store = tmp_path / "s" / "results.sqlite"
    argv = ["interpolate", str(tiny_models[0]), str(tiny_models[1]), "--task", str(tiny_csv)]
    argv += ["--split", "all", "--points", "2", "--out", str(tmp_path / "o"), "--store", str(store)]
    assert main([*argv, *COMMON]) == 0
    capsys.readouterr()
    code, out, _ = _run(["show", str(store), "--export", "csv", "--kind", "endpoint"], capsys)
    assert code == 0
    frame = pd.read_csv(tmp_path / "s" / "points.csv")
    assert sorted(frame["anchor_1"]) == ["m0", "m1"] and set(frame["kind"]) == {"endpoint"}
    assert "2 rows" in out


def test_out_without_export_is_refused(shared, tmp_path, capsys):
    _, store = shared
    code, _, err = _run(["show", str(store), "--out", str(tmp_path / "x")], capsys)
    assert code == 2 and "--export" in err
    assert not (tmp_path / "x").exists()


# --- names from users ------------------------------------------------------------------------


def test_a_hostile_name_is_printed_as_text(shared, capsys):
    _, store = shared
    code, out, _ = _run(["show", str(store), "--anchor", HOSTILE, "--kind", "endpoint"], capsys)
    assert code == 0
    assert f"\n{HOSTILE}  " in out  # verbatim: a terminal shows text, nothing to run
    assert "&lt;" not in out


def test_control_characters_in_names_are_escaped():
    from weightscape.report.show_report import group_table

    group = {
        "anchors": "evil\x1b[2J\nname",
        "task": "t",
        "kind": "endpoint",
        "settings": "{}",
        "count": 1,
        "coef_min": 1.0,
        "coef_max": 1.0,
        "loss_mean": 0.5,
        "loss_min": 0.5,
        "loss_max": 0.5,
        "accuracy_mean": None,
        "accuracy_min": None,
        "accuracy_max": None,
    }
    lines = group_table([group])
    assert len(lines) == 3  # header, one group, settings: the newline did not split the row
    assert "evil\\u001b[2J\\nname" in lines[1] and "\x1b" not in "".join(lines)
    assert lines[1].split()[-2:] == ["0.5000", "-"]


# --- store versions --------------------------------------------------------------------------


def _v2_store(path: Path, source: Path, keys: int = 3) -> list[str]:
    """A store as weightscape wrote it at schema 2 (points, meta, claims), holding ``keys`` of
    ``source``'s points."""
    db = sqlite3.connect(path)
    db.execute("ATTACH DATABASE ? AS source", (str(source),))
    db.execute(
        "CREATE TABLE points (key TEXT PRIMARY KEY, spec TEXT NOT NULL, metrics TEXT NOT NULL, "
        "arrays BLOB NOT NULL, seconds REAL NOT NULL, created REAL NOT NULL)"
    )
    db.execute("CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)")
    db.execute("CREATE TABLE claims (key TEXT PRIMARY KEY, owner TEXT NOT NULL, expires REAL)")
    db.execute("INSERT INTO meta VALUES ('schema_version', '2')")
    db.execute(
        "INSERT INTO points SELECT * FROM source.points WHERE spec NOT LIKE '%probe%' "
        "ORDER BY created, key LIMIT ?",
        (keys,),
    )
    db.commit()
    db.execute("DETACH DATABASE source")
    chosen = [k for (k,) in db.execute("SELECT key FROM points")]
    db.close()
    return chosen


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_v2_store_is_shown_unchanged_and_upgraded_on_normal_open(shared, tmp_path, capsys):
    _, source = shared
    path = tmp_path / "v2.sqlite"
    keys = _v2_store(path, source)
    before = _digest(path)
    code, out, err = _run(["show", str(path), "--export", "csv", "--out", str(tmp_path)], capsys)
    assert code == 0, err
    assert "(schema 2): 3 points, 3 shown" in out
    assert "does not name its anchors" in out
    frame = pd.read_csv(tmp_path / "points.csv", keep_default_na=False)
    assert all(len(name) == 12 for name in frame["anchor_1"])  # hash prefixes: no names yet
    assert [h[:12] for h in frame["hash_1"]] == list(frame["anchor_1"])
    assert set(frame["commands"]) == {""}
    assert _digest(path) == before  # read, not upgraded
    store = ResultStore(path)  # a normal open upgrades it, keeping every point
    assert store.version == SCHEMA_VERSION == 3
    assert {"anchors", "tasks", "runs", "uses"} <= store.tables
    assert len(store) == 3 and all(store.get(k) is not None for k in keys)
    store.close()
    db = sqlite3.connect(path)
    assert db.execute("SELECT value FROM meta WHERE name = 'schema_version'").fetchone() == ("3",)
    db.close()


def test_a_newer_store_is_refused_by_show(shared, tmp_path, capsys):
    path = tmp_path / "newer.sqlite"
    ResultStore(path).close()
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value = '99' WHERE name = 'schema_version'")
    db.commit()
    db.close()
    before = _digest(path)
    code, _, err = _run(["show", str(path)], capsys)
    assert code == 2
    assert "newer weightscape (schema 99" in err and str(path) in err
    assert "Traceback" not in err
    assert _digest(path) == before


def test_a_missing_store_is_named_and_not_created(tmp_path, capsys):
    path = tmp_path / "nowhere" / "results.sqlite"
    code, _, err = _run(["show", str(path)], capsys)
    assert code == 2
    assert f"'{path}' does not exist" in err
    assert not path.exists() and not path.parent.exists()


def test_show_is_no_study_step():
    from weightscape.studies.study_file import step_names

    assert "show" not in step_names() and "grid" in step_names()


# --- the store's own record ------------------------------------------------------------------


def _result(loss: float) -> PointResult:
    import numpy as np

    return PointResult({"loss": loss}, np.zeros(2, np.int64), np.ones(2), np.ones(2))


def test_describe_keeps_the_latest_name_and_a_computed_use(tmp_path):
    store = ResultStore(tmp_path / "s.sqlite")
    store.describe(anchors=[("h" * 64, "first", "/a")], task=("f" * 64, "task", 10))
    store.describe(anchors=[("h" * 64, "second", "/b")])
    run = ("r1", "grid", "weightscape grid", "2025-01-01T00:00:00+00:00")
    store.describe(run=run, uses=[("k", True), ("k", False), ("j", False)])
    store.describe(run=run, uses=[("j", False)])
    assert store.table("anchors") == [{"hash": "h" * 64, "name": "second", "path": "/b"}]
    assert store.table("tasks") == [{"fingerprint": "f" * 64, "name": "task", "examples": 10}]
    assert uses_of(store, "r1") == [
        {"key": "j", "computed": False},
        {"key": "k", "computed": True},
    ]
    assert uses_of(store, "other") == []
    store.close()
    readonly = ResultStore(tmp_path / "s.sqlite", read_only=True)
    readonly.describe(anchors=[("x" * 64, "x", "/x")])  # skipped: nothing is written
    assert len(readonly.table("anchors")) == 1
    with pytest.raises(WeightscapeError, match="read-only"):
        readonly.put("new", {}, _result(1.0), 0.0)
    readonly.close()


def test_evaluate_points_records_anchors_task_and_the_run(tiny_models, tiny_task, tmp_path):
    from weightscape import provenance
    from weightscape.evaluation.engine import Engine
    from weightscape.models.checkpoint import Checkpoint
    from weightscape.runtime.executor import evaluate_points

    anchors = [Checkpoint.from_path(p, name=n) for p, n in zip(tiny_models, "ab", strict=False)]
    engine = Engine(anchors, tiny_task, device="cpu")
    store = ResultStore(tmp_path / "s.sqlite")
    evaluate_points(engine, [[1.0, 0.0]], store)  # outside any run: names, no run
    assert store.table("runs") == [] and store.table("uses") == []
    record = provenance.RunRecord("interpolate", "weightscape interpolate a b", {})
    with provenance.recording(record):
        done = evaluate_points(engine, [[1.0, 0.0], [0.5, 0.5], [0.5, 0.5]], store)
    assert (record.computed, record.reused) == (1, 2)
    assert record.devices == ["cpu"]
    assert store.table("runs") == [
        {
            "id": record.id,
            "command": "interpolate",
            "command_line": "weightscape interpolate a b",
            "started": record.started,
        }
    ]
    assert uses_of(store, record.id) == sorted(
        [{"key": done[0].key, "computed": False}, {"key": done[1].key, "computed": True}],
        key=lambda u: u["key"],
    )
    names = {r["name"]: r["path"] for r in store.table("anchors")}
    assert names == {"a": str(tiny_models[0].resolve()), "b": str(tiny_models[1].resolve())}
    assert store.table("tasks") == [
        {"fingerprint": tiny_task.fingerprint(), "name": tiny_task.name, "examples": 48}
    ]
    rows = tidy_points(store)
    assert [r["kind"] for r in rows] == ["endpoint", "pair"]
    assert rows[1]["commands"] == "interpolate" and rows[0]["commands"] == "interpolate"
    assert (rows[1]["anchor_1"], rows[1]["coef_1"], rows[1]["coef_2"]) == ("a", 0.5, 0.5)
    store.close()


# --- kinds -----------------------------------------------------------------------------------


def _spec(terms, evaluation="classification") -> dict:
    return {"evaluation": evaluation, "terms": terms, "task": "t", "settings": {}}


@pytest.mark.parametrize(
    ("terms", "evaluation", "kind"),
    [
        ([["a", (1.0).hex()]], "classification", "endpoint"),
        ([["a", (2.0).hex()]], "classification", "combination"),  # a scaled anchor
        ([["a", (0.5).hex()], ["b", (0.5).hex()]], "classification", "pair"),
        ([["a", (-1.0).hex()], ["b", (2.0).hex()]], "classification", "pair"),  # extrapolated
        (
            [["a", (0.2).hex()], ["b", (0.3).hex()], ["c", (0.5).hex()]],
            "classification",
            "combination",
        ),
        ([], "classification", "combination"),  # cancelling terms: the origin
        ({"group_by": "layer", "groups": {"0": [["a", (1.0).hex()]]}}, "classification", "mix"),
        ([["a", (1.0).hex()]], "probe", "probe"),
    ],
)
def test_point_kind(terms, evaluation, kind):
    assert point_kind(_spec(terms, evaluation)) == kind


def test_a_mix_names_its_groups_and_summarises_their_coefficients():
    from weightscape.runtime.store_view import tidy_row

    terms = {
        "group_by": "layer",
        "groups": {
            "0": [["a" * 64, (0.25).hex()], ["b" * 64, (0.75).hex()]],
            "1": [["a" * 64, (0.5).hex()], ["b" * 64, (0.5).hex()]],
        },
    }
    point = {
        "key": "k",
        "spec": json.dumps(_spec(terms)),
        "metrics": json.dumps({"loss": 1.0, "accuracy": 0.5}),
        "seconds": 0.1,
        "created": 0.0,
    }
    row = tidy_row(point, {"a" * 64: "left"}, {})
    assert row["kind"] == "mix"
    assert (row["anchor_1"], row["anchor_2"]) == ("bbbbbbbbbbbb", "left")  # unknown: hash prefix
    assert row["coef_1"] is None and row["created"] == "1970-01-01T00:00:00+00:00"
    assert json.loads(row["groups"]) == {
        "0": [["left", 0.25], ["bbbbbbbbbbbb", 0.75]],
        "1": [["left", 0.5], ["bbbbbbbbbbbb", 0.5]],
    }
    [group] = group_points([row])
    assert (group["coef_min"], group["coef_max"], group["loss_mean"]) == (0.25, 0.75, 1.0)
