"""Shared matplotlib set-up: a headless backend, and saving a figure the same way everywhere."""

from __future__ import annotations

from pathlib import Path


def pyplot():
    """matplotlib.pyplot on the headless Agg backend (imported lazily: plotting is optional)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def finish(fig, png: str | Path, dpi: int = 120) -> Path:
    """Lay out, save as PNG and close ``fig``; return the path."""
    fig.tight_layout()
    fig.savefig(png, dpi=dpi)
    pyplot().close(fig)
    return Path(png)
