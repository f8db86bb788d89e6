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
DIVERGING = "RdBu_r"  # ColorBrewer's red-blue, colour-blind safe: signed values centred on 0
NEUTRAL = "grey"  # reference lines and spans: marks that are not data
FONT_MIN = 8  # points: the smallest text on any figure (crowded tick labels, annotations)

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
