"""Pure arithmetic on coefficients over anchor checkpoints: path types and grids of t values.

No torch, no data: everything here is numpy, so it is cheap to test exhaustively.
"""

from __future__ import annotations

from weightscape.geometry.grids import even_grid, log_extrapolation_grid, parse_t_values
from weightscape.geometry.paths import (
    PATHS,
    BezierPath,
    LinearPath,
    PathType,
    PolyChainPath,
    get_path,
    path_names,
    register_path,
)

__all__ = [
    "PATHS",
    "BezierPath",
    "LinearPath",
    "PathType",
    "PolyChainPath",
    "even_grid",
    "get_path",
    "log_extrapolation_grid",
    "parse_t_values",
    "path_names",
    "register_path",
]
