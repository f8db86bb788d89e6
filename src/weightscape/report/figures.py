"""Shared matplotlib set-up: a headless backend, and saving a figure the same way everywhere."""

from __future__ import annotations

from pathlib import Path

from weightscape.outputs import atomic_path

# Okabe & Ito's colour-blind-safe qualitative palette (black last), used by every figure, static
# (matplotlib) or interactive (the HTML report's plotly figures).
PALETTE = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#CC79A7",
    "#56B4E9",
    "#D55E00",
    "#F0E442",
    "#000000",
)
SEQUENTIAL = "viridis"  # perceptually uniform and colour-blind safe: heatmaps and contours


def pyplot():
    """matplotlib.pyplot on the headless Agg backend (imported lazily: plotting is optional)."""
    import matplotlib

    matplotlib.use("Agg")
    # Names from users (models, tags, tasks) are text: '$...$' in one is not mathtext.
    matplotlib.rcParams["text.parse_math"] = False
    import matplotlib.pyplot as plt

    return plt


def finish(fig, png: str | Path, dpi: int = 120) -> Path:
    """Lay out, save as PNG (whole or absent: written beside it, then renamed) and close
    ``fig``; return the path."""
    try:
        fig.tight_layout()
        with atomic_path(png) as partial:
            fig.savefig(partial, dpi=dpi, format="png")
    finally:
        pyplot().close(fig)
    return Path(png)
