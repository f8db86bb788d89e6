"""The one plotting style: every figure of the package is drawn through :func:`pyplot` and saved
by :func:`finish`.

* colours: Okabe & Ito's colour-blind-safe palette (``PALETTE``) is the axes' colour cycle, so
  lines, bars and scatters take their colours from it in order; an ordered series (pretraining
  steps) samples the perceptually uniform ``SEQUENTIAL`` map; signed matrices (cosine
  similarity) use the diverging ``DIVERGING`` map centred on 0; grey (``NEUTRAL``), black and
  white are left for reference lines, edges and text that are not data;
* text: sized for a PNG shown 700-900 px wide in a report (a one-panel figure is ~6.4 in, 770 px
  at 120 dpi): 11 pt base, 9 pt ticks and legends, nothing under ``FONT_MIN`` (8 pt);
* labels: an axis names its quantity and unit (:func:`metric_label`, ``T_AXIS``, ...); a title
  says what is compared; a colour bar has a label (:func:`colourbar`).

Modules outside this one never import matplotlib.pyplot themselves, nor name colours or colour
maps (``tests/test_figures_style.py`` checks both).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

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
DIVERGING = "RdBu_r"  # ColorBrewer's red-blue, colour-blind safe: signed values centred on 0
NEUTRAL = "grey"  # reference lines and spans: marks that are not data
FONT_MIN = 8  # points: the smallest text on any figure (crowded tick labels, annotations)
DPI = 120  # every PNG's resolution
# The PNG text chunk holding what a figure was drawn from (:func:`figure_digest`).
DIGEST_KEY = "weightscape-figure-digest"

# Axis labels: the quantity and its unit.
METRIC_LABELS = {
    "loss": "loss (mean cross-entropy, nats)",
    "accuracy": "accuracy (fraction correct)",
    "macro_f1": "macro-F1 (0 to 1)",
    "mcc": "MCC (-1 to 1)",
    "binary_f1": "F1 of label 1 (0 to 1)",
}
T_AXIS = "t (0 = first anchor, 1 = last)"
GENERALISED_LOSS = "generalised loss\n(linear-probe cross-entropy, nats)"
DISTANCE = "Euclidean distance (weight space, L2)"
STEP = "training step"


def metric_label(metric: str) -> str:
    """The axis label of a point metric, with its unit, also as a per-task model metric
    (``hans_accuracy``); other names are spelled out.

    >>> metric_label("loss"), metric_label("hans_accuracy"), metric_label("sharpness")
    ('loss (mean cross-entropy, nats)', 'hans accuracy (fraction correct)', 'sharpness')
    """
    if metric in METRIC_LABELS:
        return METRIC_LABELS[metric]
    for name, label in METRIC_LABELS.items():
        if metric.endswith(f"_{name}"):
            return f"{metric[: -len(name) - 1].replace('_', ' ')} {label}"
    return metric.replace("_", " ")


def style() -> dict:
    """The rc settings every figure is drawn with (applied by :func:`pyplot`)."""
    from cycler import cycler

    return {
        "font.size": 11,
        "axes.titlesize": 11,
        "axes.labelsize": 10.5,
        "figure.titlesize": 12,
        "xtick.labelsize": 9,
        "ytick.labelsize": 9,
        "legend.fontsize": 9,
        "legend.title_fontsize": 9,
        "legend.framealpha": 0.85,
        "axes.prop_cycle": cycler(color=list(PALETTE)),
        "image.cmap": SEQUENTIAL,
        "axes.grid": True,
        "grid.alpha": 0.3,
        "grid.linewidth": 0.6,
        "lines.linewidth": 1.6,
        "lines.markersize": 4,
        "boxplot.medianprops.color": "black",
        # Names from users (models, tags, tasks) are text: '$...$' in one is not mathtext.
        "text.parse_math": False,
    }


def colour(i: int) -> str:
    """The ``i``-th palette colour (cycling), for a series that must match across axes."""
    return PALETTE[i % len(PALETTE)]


def sequential_colours(n: int) -> list:
    """``n`` colours along ``SEQUENTIAL`` for an ordered series (its pale end left out, since
    it hardly shows on white)."""
    cmap = pyplot().get_cmap(SEQUENTIAL)
    return [cmap(0.85 * i / max(n - 1, 1)) for i in range(n)]


def categorical_cmap():
    """The palette as a colour map, for images of category numbers (basin of each run)."""
    from matplotlib.colors import ListedColormap

    return ListedColormap(list(PALETTE), name="okabe-ito")


def text_colour_on(background) -> str:
    """Black or white, whichever reads better on ``background``."""
    from matplotlib.colors import to_rgb

    r, g, b = to_rgb(background)
    return "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white"


def wrap(text: str, width: int = 40) -> str:
    """``text`` in lines of at most ``width`` characters (breaking long names too), for titles
    and labels in narrow panels.

    >>> wrap("generalised loss (linear-probe cross-entropy, nats)", 30)
    'generalised loss (linear-probe\\ncross-entropy, nats)'
    """
    import textwrap

    return "\n".join(textwrap.fill(line, width) for line in text.splitlines())


def label_axes(ax, x: str, y: str, title: str | None = None) -> None:
    """Set ``ax``'s axis labels (quantity and unit) and, when given, its title."""
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    if title is not None:
        ax.set_title(title)


def plain_log_ticks(ax, axis: str = "y") -> None:
    """Label the log or symlog ``axis`` (``"x"`` or ``"y"``) of ``ax`` with plain numbers
    (0.3, 1, 10, -1): with mathtext off, matplotlib's own labels would print as
    ``$\\mathdefault{10^{0}}$``. Call it after setting the scale."""
    from matplotlib.ticker import LogFormatter

    class Plain(LogFormatter):
        # LogFormatter decides which ticks get a label; the label is the number as written.
        def __call__(self, x, pos=None):
            return self.fix_minus(f"{x:g}") if super().__call__(x, pos) else ""

    target = getattr(ax, f"{axis}axis")
    base = target.get_transform().base
    target.set_major_formatter(Plain(base=base))
    target.set_minor_formatter(Plain(base=base, labelOnlyBase=False))


def colourbar(fig, mappable, ax, label: str):
    """A colour bar beside ``ax``, labelled with the quantity and unit its colours stand for."""
    return fig.colorbar(mappable, ax=ax, fraction=0.046, pad=0.03, label=label)


def pyplot():
    """matplotlib.pyplot on the headless Agg backend, with :func:`style` applied (imported lazily:
    plotting is optional)."""
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams.update(style())
    import matplotlib.pyplot as plt

    return plt


def finish(fig, png: str | Path, dpi: int = DPI, digest: str | None = None) -> Path:
    """Lay out, save as PNG (whole or absent: written beside it, then renamed) and close
    ``fig``; return the path. A ``digest`` (:func:`figure_digest`) is kept in the PNG itself,
    for :func:`drawn_from`."""
    metadata = {DIGEST_KEY: digest} if digest is not None else None
    try:
        fig.tight_layout()
        with atomic_path(png) as partial:
            fig.savefig(partial, dpi=dpi, format="png", metadata=metadata)
    finally:
        pyplot().close(fig)
    return Path(png)


def figure_digest(kind: str, *parts: Any, dpi: int = DPI) -> str:
    """What a figure is drawn from: its ``kind`` (the drawing function), the numbers and text it
    plots (``parts``: arrays, names, titles, options), the dpi, and the renderer (the source of
    this module and of the module that draws ``kind``, matplotlib's version and the
    matplotlibrc files it would read), without importing matplotlib.

    A figure whose PNG carries this digest (:func:`drawn_from`) need not be drawn again: the
    same inputs give the same bytes, and any change to them is another digest.
    """
    import hashlib
    import json

    import numpy as np

    def plain(value: Any) -> Any:
        if isinstance(value, np.ndarray | np.generic):
            array = np.ascontiguousarray(value)
            return [str(array.dtype), list(array.shape), hashlib.sha256(array).hexdigest()]
        if isinstance(value, list | tuple):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {str(k): plain(v) for k, v in sorted(value.items())}
        if value is None or isinstance(value, bool | int | float | str):
            return value
        raise TypeError(f"figure_digest cannot digest {type(value).__name__}")

    digest = hashlib.sha256()
    digest.update(json.dumps([kind, plain(list(parts)), dpi], allow_nan=True).encode())
    digest.update(_renderer(kind.split(":")[0]).encode())
    return digest.hexdigest()


@functools.cache
def _renderer(module: str) -> str:
    """A digest of the code that draws a figure: this module's source and ``module``'s,
    matplotlib's version file and the user's matplotlibrc files (found without importing
    matplotlib, which costs more than the rest of a stored rerun)."""
    import hashlib
    import importlib.util

    def source(name: str) -> Path:
        spec = importlib.util.find_spec(name)  # imports nothing new (top level or imported)
        if spec is None or spec.origin is None:
            raise ValueError(f"figure_digest: no source for {name!r}")
        return Path(spec.origin)

    files = [source(__name__), source(module), source("matplotlib").parent / "_version.py"]
    digest = hashlib.sha256()
    for file in [*files, *_matplotlibrc_files()]:
        digest.update(str(file).encode() + b"\0" + file.read_bytes() + b"\0")
    return digest.hexdigest()


def _matplotlibrc_files() -> list[Path]:
    """The user's matplotlibrc files matplotlib may read (its own defaults are covered by its
    version): ``$MATPLOTLIBRC``, ``./matplotlibrc`` and the configuration folder's."""
    import os

    candidates = [Path("matplotlibrc")]
    if os.environ.get("MATPLOTLIBRC"):
        given = Path(os.environ["MATPLOTLIBRC"])
        candidates += [given, given / "matplotlibrc"]
    config = os.environ.get("MPLCONFIGDIR") or Path.home() / ".config" / "matplotlib"
    candidates.append(Path(config) / "matplotlibrc")
    return [c.resolve() for c in candidates if c.is_file()]


def drawn_from(png: str | Path, digest: str) -> bool:
    """Whether ``png`` exists and was saved by :func:`finish` with this ``digest`` (read from
    its text chunks; a missing, unreadable or foreign file is False, so it is drawn again)."""
    import struct
    import zlib

    try:
        with open(png, "rb") as handle:
            if handle.read(8) != b"\x89PNG\r\n\x1a\n":
                return False
            while True:
                head = handle.read(8)
                if len(head) < 8:
                    return False
                length, kind = struct.unpack(">I4s", head)
                if kind in (b"IDAT", b"IEND") or length > 1 << 20:
                    return False  # the text chunks matplotlib writes come before the image
                body = handle.read(length)
                crc = handle.read(4)
                if len(body) < length or struct.unpack(">I", crc)[0] != zlib.crc32(kind + body):
                    return False
                if kind == b"tEXt":
                    keyword, _, text = body.partition(b"\0")
                    if keyword == DIGEST_KEY.encode("latin-1"):
                        return text == digest.encode("latin-1")
    except (OSError, struct.error):
        return False
