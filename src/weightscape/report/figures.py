"""Shared matplotlib set-up: a headless backend, and saving a figure the same way everywhere."""

from __future__ import annotations

from pathlib import Path

from weightscape.outputs import atomic_path


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
