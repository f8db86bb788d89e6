"""Every example study file validates (``weightscape run --check``) and says how to run it."""

from __future__ import annotations

from pathlib import Path

import pytest

from weightscape.cli.main import main
from weightscape.studies.study_file import load_study

EXAMPLES = sorted((Path(__file__).parents[1] / "examples" / "studies").glob("*.yaml"))


def test_the_examples_cover_the_papers():
    names = {p.stem for p in EXAMPLES}
    assert {"demo", "juneja_basins", "qin_curve", "gueta_regions", "knowledge"} <= names
    assert "pretraining" in names


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_study_validates_and_names_its_command(path, capsys):
    first = path.read_text().splitlines()[0]
    relative = path.relative_to(Path(__file__).parents[1])
    assert first.startswith(f"# Run: weightscape run {relative}"), first
    study = load_study(path)
    assert study.steps
    existed = study.out.exists()
    assert main(["run", str(path), "--check"]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert f"{len(study.steps)} step(s)" in out
    assert study.out.exists() == existed  # --check runs and writes nothing


@pytest.mark.parametrize(
    "path", [p for p in EXAMPLES if "zoos" in p.read_text()], ids=lambda p: p.stem
)
def test_example_zoo_files_validate(path):
    from weightscape.training.sweeps import expand, load_zoo_file

    for step in load_study(path).steps:
        if step.name == "finetune" and step.config.zoo_file is not None:
            assert expand(load_zoo_file(step.config.zoo_file))
