"""weightscape: the geometry of the weight space between finetuned language models.

Every point the toolkit evaluates is a combination of anchor checkpoints (see ARCHITECTURE.md in
the shared notes): paths, planes, hulls and centroids are coefficient vectors over anchors, and one
engine turns coefficients into weights and weights into losses.

``import weightscape as ws`` gives the common calls (:mod:`weightscape.api`): ``ws.load_zoo``,
``ws.Checkpoint``, ``ws.load_task``, ``ws.interpolate`` / ``ws.walk_path``,
``ws.connectivity_grid``, ``ws.run_study``, ``ws.ResultStore``, ``ws.metrics``. Each is imported
when first used: this module stays light (no torch import), so that ``weightscape --help`` is
instant. weightscape logs through the ``weightscape`` logger and, as a library, prints nothing
unless logging is configured (:mod:`weightscape.logs`).

>>> import weightscape as ws
>>> ws.interpolate.__module__, ws.Checkpoint.__name__
('weightscape.api', 'Checkpoint')
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())

# name -> the module that defines it; a name without an attribute part is a submodule.
_LAZY = {
    "load_zoo": "weightscape.api",
    "interpolate": "weightscape.api",
    "connectivity_grid": "weightscape.api",
    "run_study": "weightscape.api",
    "walk_path": "weightscape.analyses.interpolation",
    "Checkpoint": "weightscape.models.checkpoint",
    "Zoo": "weightscape.models.zoo",
    "ParameterSpace": "weightscape.models.space",
    "Task": "weightscape.data",
    "load_task": "weightscape.data",
    "make_task": "weightscape.data",
    "split": "weightscape.data",
    "subset": "weightscape.data",
    "even_grid": "weightscape.geometry",
    "Engine": "weightscape.evaluation.engine",
    "EngineSpec": "weightscape.evaluation.engine",
    "EvalSettings": "weightscape.evaluation.evaluator",
    "ResultStore": "weightscape.runtime.store",
    "WeightscapeError": "weightscape.errors",
}
_SUBMODULES = ("api", "metrics", "geometry", "toy", "logs")

__all__ = [  # _LAZY's names and _SUBMODULES (tests/test_library_citizen.py checks they agree)
    "Checkpoint",
    "Engine",
    "EngineSpec",
    "EvalSettings",
    "ParameterSpace",
    "ResultStore",
    "Task",
    "WeightscapeError",
    "Zoo",
    "__version__",
    "api",
    "connectivity_grid",
    "even_grid",
    "geometry",
    "interpolate",
    "load_task",
    "load_zoo",
    "logs",
    "make_task",
    "metrics",
    "run_study",
    "split",
    "subset",
    "toy",
    "walk_path",
]

if TYPE_CHECKING:  # what the lazy names are, for type checkers and editors
    from weightscape import api, geometry, logs, metrics, toy
    from weightscape.analyses.interpolation import walk_path
    from weightscape.api import connectivity_grid, interpolate, load_zoo, run_study
    from weightscape.data import Task, load_task, make_task, split, subset
    from weightscape.errors import WeightscapeError
    from weightscape.evaluation.engine import Engine, EngineSpec
    from weightscape.evaluation.evaluator import EvalSettings
    from weightscape.geometry import even_grid
    from weightscape.models.checkpoint import Checkpoint
    from weightscape.models.space import ParameterSpace
    from weightscape.models.zoo import Zoo
    from weightscape.runtime.store import ResultStore


def __getattr__(name: str) -> Any:
    """Import a common call's module on first use (PEP 562)."""
    if name in _SUBMODULES:
        return importlib.import_module(f"weightscape.{name}")
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module 'weightscape' has no attribute '{name}'")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
