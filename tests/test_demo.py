"""The demo: its config (defaults, bounds shared with finetuning) and its command's outputs.

The real demo finetunes MiniLM three times (minutes); here its study is replaced by walks between
the tiny models, so the command line, the config and the rendering run end to end in seconds.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from weightscape.cli.main import main
from weightscape.studies import demo


def test_config_defaults_are_the_demo_sizes_and_frozen():
    config = demo.Config()
    assert config.model_dump() == {
        "steps": 150,
        "batch_size": 32,
        "lr": 1e-4,
        "train_max_length": 64,
        "max_length": 64,
        "eval_examples": 512,
        "points": 11,
        "progress": True,
        "out": Path("weightscape-out/demo"),
    }
    with pytest.raises(ValidationError):
        config.steps = 3
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        demo.Config(stepz=3)


def test_training_fields_have_the_finetune_config_bounds():
    from weightscape.training.finetune import FinetuneConfig

    for field, theirs_name in (
        ("steps", "steps"),
        ("batch_size", "batch_size"),
        ("lr", "lr"),
        ("train_max_length", "max_length"),
    ):
        ours, theirs = demo.Config.model_fields[field], FinetuneConfig.model_fields[theirs_name]
        assert ours.metadata == theirs.metadata, field


@pytest.fixture(scope="module")
def tiny_demo_run(tiny_models, tiny_task):
    """Two walks between the tiny models, shaped as the demo study's result."""
    from weightscape.analyses.interpolation import walk_path
    from weightscape.evaluation.engine import Engine
    from weightscape.geometry import even_grid
    from weightscape.models.checkpoint import Checkpoint

    a, b, c = (Checkpoint.from_path(path) for path in tiny_models)
    walks = {
        factor: walk_path(Engine(pair, tiny_task, device="cpu"), even_grid(3))
        for factor, pair in (("data order", (a, b)), ("head init", (a, c)))
    }
    return demo.DemoRun(walks, {"training": 1.0, "walking": 2.0})


def test_demo_runs_with_no_arguments_and_says_where_its_results_are(
    tiny_demo_run, tmp_path, monkeypatch, capsys
):
    given = []

    def fake_run(config):
        given.append(config)
        return tiny_demo_run

    monkeypatch.setattr(demo, "run", fake_run)
    monkeypatch.chdir(tmp_path)
    assert main(["demo"]) == 0
    assert given == [demo.Config()]
    out = tmp_path / "weightscape-out" / "demo"
    lines = capsys.readouterr().out.splitlines()
    assert f"results and plots are in {out}" in lines
    assert lines[-3].startswith("  path head init: ") and lines[-3].endswith("path-head-init.png")
    assert lines[-2] == f"provenance: {Path('weightscape-out/demo/run.json')}"
    # the demo ends on the path of its HTML report
    report = Path("weightscape-out/demo/report.html")
    assert lines[-1] == f"report: {report}  (open it in a browser)"
    assert (tmp_path / report).is_file() and "Data order" in (tmp_path / report).read_text()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["settings"] == {
        "steps": 150,
        "batch_size": 32,
        "lr": 1e-4,
        "train_max_length": 64,
        "max_length": 64,
        "eval_examples": 512,
        "points": 11,
    }
    assert set(summary["pairs"]) == {"data order", "head init"}
    assert summary["seconds"] == {"training": 1.0, "walking": 2.0}
    for stem in ("path-data-order", "path-head-init"):
        for suffix in (".json", ".csv", ".png"):
            assert (out / f"{stem}{suffix}").is_file()
    assert (out / "paths.png").is_file()


def test_demo_flags_reach_the_config(tiny_demo_run, tmp_path, monkeypatch, capsys):
    given = []
    monkeypatch.setattr(demo, "run", lambda config: given.append(config) or tiny_demo_run)
    argv = ["demo", "--out", str(tmp_path), "--steps", "7", "--points", "5", "--no-progress"]
    assert main(argv) == 0
    assert given == [demo.Config(out=tmp_path, steps=7, points=5, progress=False)]
    assert main(["demo", "--steps", "0", "--points", "1"]) == 2
    err = capsys.readouterr().err
    assert "--steps: Input should be greater than or equal to 1. Got '0'." in err
    assert "--points: Input should be greater than or equal to 2. Got '1'." in err
