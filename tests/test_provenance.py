"""Every output says what it is: ``run.json``, the ``provenance`` block of each JSON output, and
the terminal's last lines (docs/outputs.md), checked on real commands over tiny models."""

from __future__ import annotations

import json
import platform
import re
import shlex
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
import yaml

import weightscape
from weightscape import outputs, provenance
from weightscape.cli.flags import raw_values
from weightscape.cli.main import build_parser, main, run_command
from weightscape.cli.registry import by_name
from weightscape.errors import WeightscapeError
from weightscape.models.checkpoint import Checkpoint
from weightscape.outputs import INCOMPLETE, write_json, writing
from weightscape.provenance import RUN_FILE, SCHEMA, RunRecord, recording
from weightscape.studies.study_file import load_study

# Every field docs/outputs.md documents, in run.json and in a provenance block.
BLOCK = {
    "schema", "id", "command", "command_line", "study", "cwd", "config", "started",
    "environment", "devices", "anchors", "tasks", "points",
}  # fmt: skip
RUN = BLOCK | {"finished", "seconds", "outputs"}
ENVIRONMENT = {"weightscape", "git_commit", "python", "torch", "transformers", "platform"}
# Fields of a provenance block that are the same in every file one run writes (the rest grow
# while the run evaluates).
STABLE = (
    "schema", "id", "command", "command_line", "study", "cwd", "config", "started", "environment",
)  # fmt: skip


def _interpolate(models, csv, out: Path, points: int = 5) -> list[str]:
    return [
        "interpolate", str(models[0]), str(models[1]), "--task", str(csv), "--split", "all",
        "--subset", "20", "--points", str(points), "--device", "cpu", "--no-progress",
        "--out", str(out),
    ]  # fmt: skip


def _validated(argv: list[str]):
    """The Config the CLI validates from ``argv``, built here without running anything."""
    config_type = by_name()[argv[0]].module().Config
    return config_type.model_validate(
        raw_values(build_parser(argv[0]).parse_args(argv), config_type)
    )


def _run_json(out: Path) -> dict:
    return json.loads((out / RUN_FILE).read_text())


@pytest.fixture(scope="module")
def interpolated(tiny_models, tiny_csv, tmp_path_factory):
    """One interpolate run (5 points on 20 examples), its argv and its terminal lines."""
    out = tmp_path_factory.mktemp("interpolate")
    argv = _interpolate(tiny_models, tiny_csv, out)
    args = build_parser("interpolate").parse_args(argv)
    return out, argv, run_command(by_name()["interpolate"], args, argv)  # main's printed lines


def test_run_json_has_every_documented_field(interpolated):
    out, _, _ = interpolated
    run = _run_json(out)
    assert set(run) == RUN
    assert set(run["environment"]) == ENVIRONMENT
    assert run["schema"] == SCHEMA
    assert re.fullmatch(r"[0-9a-f]{32}", run["id"])
    assert run["command"] == "interpolate" and run["study"] is None
    assert run["devices"] == ["cpu"]
    assert run["finished"] >= run["started"] and run["seconds"] > 0
    assert run["outputs"] == ["path.csv", "path.json", "path.png", "results.sqlite"]
    assert not (out / INCOMPLETE).exists()


def test_config_and_command_line_are_what_was_validated_and_typed(interpolated):
    out, argv, _ = interpolated
    run = _run_json(out)
    config = _validated(argv)
    assert run["config"] == config.model_dump(mode="json")
    assert type(config).model_validate(run["config"]) == config  # the record reruns the run
    assert run["command_line"] == shlex.join(["weightscape", *argv])
    assert run["cwd"] == str(Path.cwd())


def test_anchors_tasks_and_points_are_recorded(interpolated, tiny_models):
    out, _, _ = interpolated
    run = _run_json(out)
    hashes = {Checkpoint.from_path(m).content_hash() for m in tiny_models[:2]}
    assert {a["content_hash"] for a in run["anchors"]} == hashes
    assert {a["path"] for a in run["anchors"]} == {str(m) for m in tiny_models[:2]}
    [task] = run["tasks"]
    assert task["name"] == "generated" and task["examples"] == 20  # --subset 20 of 60 rows
    # 7 rows: the 2 anchors, then t = 0, 1/4, 1/2, 3/4, 1. The 5 points are computed; the
    # anchors are t = 0 and t = 1 again, answered from what was just stored.
    assert run["points"] == {"computed": 5, "reused": 2}


def test_versions_are_the_installed_ones(interpolated):
    out, _, _ = interpolated
    environment = _run_json(out)["environment"]
    assert environment["torch"] == metadata.version("torch")
    assert environment["transformers"] == metadata.version("transformers")
    assert environment["weightscape"] == weightscape.__version__
    assert environment["python"] == platform.python_version()


def test_the_git_commit_is_this_checkouts(interpolated):
    out, _, _ = interpolated
    source = Path(weightscape.__file__).resolve().parent
    head = subprocess.run(
        ["git", "-C", str(source), "rev-parse", "HEAD"], capture_output=True, text=True
    )
    if head.returncode != 0:
        pytest.skip("weightscape is not run from a git checkout")
    commit = _run_json(out)["environment"]["git_commit"]
    assert re.fullmatch(r"[0-9a-f]{40}", commit) and commit == head.stdout.strip()


def test_every_json_output_carries_the_runs_provenance(interpolated):
    out, _, _ = interpolated
    run = _run_json(out)
    block = json.loads((out / "path.json").read_text())["provenance"]
    assert set(block) == BLOCK
    assert {k: block[k] for k in STABLE} == {k: run[k] for k in STABLE}
    # path.json is written after every point was evaluated: the counts are the run's.
    assert block["points"] == run["points"] and block["tasks"] == run["tasks"]


def test_the_terminal_says_what_was_computed_reused_and_where(interpolated):
    out, _, lines = interpolated
    assert lines[-2] == (
        f"points: computed 5, reused 2 already in the results store {out / 'results.sqlite'} "
        "(stored earlier by this run or another, not computed again); each number rests on "
        "20 examples of generated"
    )
    assert lines[-1] == f"provenance: {out / RUN_FILE}"


def test_a_rerun_reuses_every_point_and_says_so(tiny_models, tiny_csv, tmp_path, capsys):
    argv = _interpolate(tiny_models, tiny_csv, tmp_path, points=3)
    assert main(argv) == 0
    first = _run_json(tmp_path)
    assert first["points"] == {"computed": 3, "reused": 2}  # t = 0, 1/2, 1; anchors again
    capsys.readouterr()
    assert main(argv) == 0
    again = _run_json(tmp_path)
    assert again["points"] == {"computed": 0, "reused": 5}
    assert again["id"] != first["id"]
    assert "points: computed 0, reused 5 already in the results store" in capsys.readouterr().out


def test_grid_json_carries_provenance_and_counts_distinct_points(tiny_models, tiny_csv, tmp_path):
    argv = [
        "grid", "--models", str(Path(tiny_models[0]).parent / "m*"), "--task", str(tiny_csv),
        "--split", "all", "--points", "3", "--device", "cpu", "--no-progress",
        "--out", str(tmp_path),
    ]  # fmt: skip
    assert main(argv) == 0
    run = _run_json(tmp_path)
    written = [p for p in tmp_path.rglob("*.json") if p.name != RUN_FILE]
    assert {p.name for p in written} == {"grid.json"}
    for path in written:
        block = json.loads(path.read_text())["provenance"]
        assert {k: block[k] for k in STABLE} == {k: run[k] for k in STABLE}
    # 3 models and one midpoint on each of the 3 pairs: 6 distinct points, each computed once.
    assert run["points"]["computed"] == 6
    assert len(run["anchors"]) == 3
    assert {"grid.json", "grid.npz", "loss_barrier.csv"} <= set(run["outputs"])


def test_each_step_of_a_study_file_gets_its_run_json(tiny_models, tiny_csv, tmp_path, capsys):
    study = tmp_path / "study.yaml"
    steps = [
        {"interpolate": {"anchors": [str(tiny_models[0]), str(tiny_models[1])], "points": 5}},
        {"interpolate": {"anchors": [str(tiny_models[1]), str(tiny_models[2])], "points": 3}},
    ]
    evaluation = {"task": str(tiny_csv), "split": "all", "subset": 20, "device": "cpu"}
    data = {"name": "tiny", "out": str(tmp_path / "out"), "evaluation": evaluation}
    study.write_text(yaml.safe_dump({**data, "steps": steps}, sort_keys=False))
    assert main(["run", str(study), "evaluation.batch_size=16"]) == 0
    configs = [s.config for s in load_study(study, ["evaluation.batch_size=16"]).steps]
    # Step 2 shares m1 with step 1: m1 is reused; t = 1/2 and m2 are computed.
    points = [{"computed": 5, "reused": 2}, {"computed": 2, "reused": 3}]
    for i, config in enumerate(configs, 1):
        run = _run_json(config.out)
        assert run["study"] == {"name": "tiny", "file": str(study), "step": i}
        assert run["command"] == "interpolate"
        assert run["command_line"] == shlex.join(
            ["weightscape", "run", str(study), "evaluation.batch_size=16"]
        )
        assert run["config"] == config.model_dump(mode="json")
        assert run["points"] == points[i - 1]
    printed = capsys.readouterr().out
    store = tmp_path / "out" / "results.sqlite"
    assert f"points: computed 2, reused 3 already in the results store {store}" in printed
    assert f"provenance: {configs[1].out / RUN_FILE}" in printed


def test_a_failing_command_leaves_no_run_json(tiny_models, tiny_csv, tmp_path, monkeypatch):
    argv = _interpolate(tiny_models, tiny_csv, tmp_path, points=3)
    assert main(argv) == 0
    before = (tmp_path / RUN_FILE).read_bytes()

    def refuse(config):
        raise WeightscapeError("refused before writing anything")

    # Refused before writing: the folder still holds the earlier complete run, and says so.
    monkeypatch.setattr("weightscape.studies.interpolate.run", refuse)
    assert main(argv) == 2
    assert (tmp_path / RUN_FILE).read_bytes() == before
    assert not (tmp_path / INCOMPLETE).exists()
    monkeypatch.undo()

    def fail_to_render(walk, config):
        raise WeightscapeError("failed after computing new points")

    # Failed after storing new points: the folder is incomplete and no run.json describes it.
    monkeypatch.setattr("weightscape.report.walk_outputs.render_walk", fail_to_render)
    assert main(_interpolate(tiny_models, tiny_csv, tmp_path, points=5)) == 2
    assert not (tmp_path / RUN_FILE).exists()
    assert (tmp_path / INCOMPLETE).exists()


def test_a_command_that_evaluates_nothing_says_so(tiny_models, tmp_path, capsys):
    zoo = {
        "models": [
            {"name": n, "path": str(tiny_models[i]), "tags": {"dataset": d}}
            for n, i, d in (("a", 1, "x"), ("b", 2, "y"), ("c", 1, "x"))
        ]
    }
    (tmp_path / "zoo.yaml").write_text(yaml.safe_dump(zoo))
    out = tmp_path / "sim"
    argv = ["similarity", "--zoo", str(tmp_path / "zoo.yaml"), "--base", str(tiny_models[0])]
    assert main([*argv, "--out", str(out), "--space", "all"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == f"provenance: {out / RUN_FILE}"  # no word on points: none was evaluated
    assert not any(line.startswith("points:") for line in lines)
    run = _run_json(out)
    assert run["points"] == {"computed": 0, "reused": 0} and run["tasks"] == []
    assert "similarity.json" in run["outputs"]
    assert json.loads((out / "similarity.json").read_text())["provenance"]["id"] == run["id"]


# The mechanics, without models.


def _record() -> RunRecord:
    return RunRecord("grid", "weightscape grid --out x", {"out": "x"})


def test_write_json_adds_provenance_to_objects_only_inside_a_run(tmp_path):
    write_json(tmp_path / "outside.json", {"a": 1})
    assert json.loads((tmp_path / "outside.json").read_text()) == {"a": 1}
    record = _record()
    with recording(record):
        write_json(tmp_path / "object.json", {"a": 1})
        write_json(tmp_path / "list.json", [1, 2])
        write_json(tmp_path / "opted-out.json", {"a": 1}, provenance=False)
    assert json.loads((tmp_path / "object.json").read_text()) == {
        "a": 1,
        "provenance": record.as_dict(),
    }
    assert json.loads((tmp_path / "list.json").read_text()) == [1, 2]
    assert json.loads((tmp_path / "opted-out.json").read_text()) == {"a": 1}
    assert provenance.current() is None


def test_run_json_lists_what_the_block_wrote_and_replaces_an_old_one(tmp_path):
    (tmp_path / "kept.txt").write_text("from before")
    (tmp_path / RUN_FILE).write_text("{}")
    with writing(tmp_path, "weightscape grid", _record()):
        assert not (tmp_path / RUN_FILE).exists()  # a run.json describes a complete run only
        outputs.write_text(tmp_path / "a.txt", "a")
        outputs.write_text(tmp_path / "sub" / "b.txt", "b")
        (tmp_path / "results.sqlite-wal").write_text("")
    run = _run_json(tmp_path)
    assert run["outputs"] == ["a.txt", "sub/b.txt"]  # not kept.txt, the marker or SQLite's WAL
    assert run["command_line"] == "weightscape grid --out x"
    assert not (tmp_path / INCOMPLETE).exists()


def test_run_json_is_written_before_the_folder_is_marked_complete(tmp_path, monkeypatch):
    seen = []
    unmark = outputs.mark_complete

    def mark_complete(folder):
        seen.append(((folder / RUN_FILE).is_file(), (folder / INCOMPLETE).is_file()))
        unmark(folder)

    monkeypatch.setattr(outputs, "mark_complete", mark_complete)
    with writing(tmp_path, "weightscape grid", _record()):
        outputs.write_text(tmp_path / "a.txt", "a")
    assert seen == [(True, True)]


def test_a_failed_block_that_wrote_keeps_the_marker_and_no_run_json(tmp_path):
    (tmp_path / RUN_FILE).write_text('{"old": true}')
    with pytest.raises(WeightscapeError), writing(tmp_path, "weightscape grid", _record()):
        outputs.write_text(tmp_path / "a.txt", "a")
        raise WeightscapeError("failed midway")
    assert not (tmp_path / RUN_FILE).exists()
    assert (tmp_path / INCOMPLETE).exists()


def test_a_run_without_an_output_folder_writes_no_run_json(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    record = _record()
    with writing(None, "weightscape x", record):
        assert provenance.current() is record
    assert list(tmp_path.iterdir()) == []
    assert provenance.summary_lines(record, None) == []  # no folder, and no point evaluated


def test_provenance_and_outputs_import_no_torch():
    code = (
        "import sys, weightscape.provenance, weightscape.outputs; "
        "weightscape.provenance.environment(); "
        "print('torch' in sys.modules, 'transformers' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.split() == ["False", "False"], done.stderr
