"""The layering of the architecture notes: imports point downward only, pure layers stay pure."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import weightscape

LAYERS = [
    "cli",
    "report",
    "studies",
    "analyses",
    "training",
    "runtime",
    "evaluation",
    "metrics",
    "geometry",
    "data",
    "models",
]
PACKAGE = Path(weightscape.__file__).parent


def _imports(path: Path) -> list[str]:
    modules = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            modules.append(node.module)
        elif isinstance(node, ast.Import):
            modules += [alias.name for alias in node.names]
    return modules


def _files(layer: str) -> list[Path]:
    return sorted((PACKAGE / layer).rglob("*.py"))


@pytest.mark.parametrize("layer", LAYERS)
def test_imports_point_downward(layer):
    rank = {name: i for i, name in enumerate(LAYERS)}
    upward = [
        (f.name, m)
        for f in _files(layer)
        for m in _imports(f)
        if m.startswith("weightscape.")
        and m.split(".")[1] in rank
        and rank[m.split(".")[1]] < rank[layer]
    ]
    assert upward == []


@pytest.mark.parametrize("layer", ["geometry", "metrics"])
def test_pure_layers_import_no_torch_and_no_data(layer):
    heavy = [
        (f.name, m)
        for f in _files(layer)
        for m in _imports(f)
        if m.split(".")[0] in ("torch", "transformers")
        or m.startswith(("weightscape.data", "weightscape.models"))
    ]
    assert heavy == []


def test_report_renders_only():
    """report/ turns results into files and text: it trains nothing and builds no engine."""
    forbidden = ("weightscape.training", "weightscape.evaluation.engine", "weightscape.runtime")
    offenders = [
        (f.name, m) for f in _files("report") for m in _imports(f) if m.startswith(forbidden)
    ]
    builds = [f.name for f in _files("report") if "Engine(" in f.read_text()]
    assert offenders == [] and builds == []


def test_cli_is_small():
    """Flags are generated from the configs, so the command line stays a thin layer."""
    lines = sum(len(f.read_text().splitlines()) for f in _files("cli"))
    assert lines < 800, lines
