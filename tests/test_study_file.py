"""Study files: validated whole (every mistake at once), overridden, run, killed and resumed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from weightscape.cli.main import main
from weightscape.errors import WeightscapeError
from weightscape.runtime.store import ResultStore
from weightscape.studies.study_file import apply_overrides, load_study

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}


def _write(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _tiny_study(tmp_path: Path, models, csv) -> Path:
    """Two walks on tiny models sharing one store: 5 + 3 points, 7 distinct (m1 is shared)."""
    return _write(
        tmp_path / "study.yaml",
        {
            "name": "tiny",
            "out": str(tmp_path / "out"),
            "evaluation": {"task": str(csv), "split": "all", "device": "cpu"},
            "steps": [
                {"interpolate": {"anchors": [str(models[0]), str(models[1])], "points": 5}},
                {"interpolate": {"anchors": [str(models[1]), str(models[2])], "points": 3}},
            ],
        },
    )


def test_three_independent_mistakes_are_reported_together(tmp_path, capsys):
    study = _write(
        tmp_path / "bad.yaml",
        {
            "name": "bad",
            "evaluation": {"batch_size": 0, "no_such_setting": 1},
            "steps": [{"interpolate": {"anchors": ["a", "b"], "points": 1}}, {"gird": {}}],
        },
    )
    code = main(["run", str(study)])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "4 problem(s)" in err and "nothing was run" in err
    assert "steps[0].interpolate.batch_size: Input should be greater than or equal to 1" in err
    assert "steps[0].interpolate.points: Input should be greater than or equal to 2" in err
    assert "steps[1]: Unknown study 'gird'. Did you mean 'grid'?" in err
    assert "evaluation.no_such_setting: no step takes this setting" in err
    assert not (tmp_path / "weightscape-out").exists()


def test_overrides_reach_the_step_config(tiny_models, tiny_csv, tmp_path):
    study = load_study(
        _tiny_study(tmp_path, tiny_models, tiny_csv),
        ["steps.0.interpolate.points=7", "evaluation.batch_size=8"],
    )
    assert study.steps[0].config.points == 7
    assert study.steps[1].config.batch_size == 8
    assert study.steps[0].config.out == tmp_path / "out" / "01-interpolate"
    assert study.steps[0].config.store == tmp_path / "out" / "results.sqlite"
    with pytest.raises(WeightscapeError, match="not of the form key=value"):
        apply_overrides({}, ["steps"])


def test_check_prints_the_plan_and_runs_nothing(tiny_models, tiny_csv, tmp_path, capsys):
    assert main(["run", str(_tiny_study(tmp_path, tiny_models, tiny_csv)), "--check"]) == 0
    out = capsys.readouterr().out
    assert "2 step(s)" in out and "1. interpolate" in out and "about 5 points" in out
    assert not (tmp_path / "out").exists()


KILLER = textwrap.dedent(
    """
    import os, signal, sys
    from weightscape.runtime.store import ResultStore
    from weightscape.cli.main import main

    limit, put = int(sys.argv[2]), ResultStore.put
    count = 0

    def put_then_maybe_die(self, *args, **kwargs):
        global count
        put(self, *args, **kwargs)
        count += 1
        if count == limit:  # the K-th point is stored: die as a killed process does
            os.kill(os.getpid(), signal.SIGKILL)

    ResultStore.put = put_then_maybe_die
    sys.exit(main(["run", sys.argv[1]]))
    """
)


@pytest.mark.parametrize("kill_after", [2, 5])
def test_a_killed_study_resumes_without_recomputing(
    kill_after, tiny_models, tiny_csv, tmp_path, capsys
):
    study = _tiny_study(tmp_path, tiny_models, tiny_csv)
    child = subprocess.run(
        [sys.executable, "-c", KILLER, str(study), str(kill_after)], env=ENV, capture_output=True
    )
    assert child.returncode == -9, child.stderr.decode()[-2000:]
    store = tmp_path / "out" / "results.sqlite"
    assert len(ResultStore(store)) == kill_after
    assert main(["run", str(study)]) == 0
    walks = [
        json.loads((tmp_path / "out" / d / "path.json").read_text())
        for d in ("01-interpolate", "02-interpolate")
    ]
    # 7 distinct points (5 + 3, the shared model m1 once): only those not stored are computed
    assert sum(w["computed"] for w in walks) == 7 - kill_after
    assert len(ResultStore(store)) == 7
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    again = _write(
        fresh / "study.yaml", {**yaml.safe_load(study.read_text()), "out": str(fresh / "out")}
    )
    assert main(["run", str(again)]) == 0
    for d, walk in zip(("01-interpolate", "02-interpolate"), walks, strict=True):
        clean = json.loads((fresh / "out" / d / "path.json").read_text())
        assert [p["metrics"] for p in clean["points"]] == [p["metrics"] for p in walk["points"]]


def test_relative_inputs_are_read_from_the_study_folder(tiny_csv, tmp_path):
    folder = tmp_path / "studies"
    folder.mkdir()
    (folder / "data.csv").write_text(tiny_csv.read_text())
    study = load_study(
        _write(
            folder / "s.yaml",
            {
                "name": "rel",
                "out": "out",
                "zoo": "zoo.yaml",
                "steps": [
                    {"interpolate": {"anchors": ["a", "b"], "task": "data.csv"}},
                    {
                        "knowledge": {
                            "anchors": ["a", "b"],
                            "source_task": "data.csv",
                            "target_task": "rotten_tomatoes",
                        }
                    },
                ],
            },
        )
    )
    first, second = (step.config for step in study.steps)
    assert first.task == str(folder / "data.csv") and first.zoo == folder / "zoo.yaml"
    assert second.source_task == str(folder / "data.csv")
    assert second.target_task == "rotten_tomatoes"  # a built-in name stays a name
    assert first.out == Path("out") / "01-interpolate"  # outputs are relative to where you run


def test_a_task_file_in_the_shared_evaluation_block_is_read_from_the_study_folder(
    tiny_csv, tmp_path
):
    """The module docstring promises it: `evaluation: {task: data.csv}` names the file next to
    the study, not one in the directory the command runs from."""
    folder = tmp_path / "studies"
    folder.mkdir()
    (folder / "data.csv").write_text(tiny_csv.read_text())
    study = load_study(
        _write(
            folder / "s.yaml",
            {
                "name": "shared",
                "out": "out",
                "zoo": "zoo.yaml",
                "evaluation": {"task": "data.csv", "split": "all"},
                "steps": [{"interpolate": {"anchors": ["a", "b"]}}],
            },
        )
    )
    (step,) = study.steps
    assert step.config.task == str(folder / "data.csv")
