"""One plotting style for every figure (``weightscape.report.figures``).

Two kinds of check:

* static, over the package's sources: no module but ``figures.py`` imports matplotlib or names a
  colour or a colour map (a colour-map name, a CSS/tableau colour, ``"C0"``, ``"#rrggbb"``);
  black, white, grey and ``none`` stay allowed for reference lines, edges and text;
* drawn, on small synthetic inputs to a representative set of the plotting functions: the figure
  is caught as it is closed, and every axes that holds data has an x label (unless its x axis is
  hidden, as a twin's is) and a y label, a title (its own or the figure's), units wherever it
  names a loss or an accuracy, text no smaller than ``FONT_MIN``, colours from ``PALETTE`` (an
  ordered series: from ``SEQUENTIAL``), colour maps from the module's constants, colour bars with
  a label; and the PNG is written.

Heatmaps have no exception: their ticks are the models' names, and both axes are labelled
"model" (with the order they are sorted in).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from weightscape.report import figures

SOURCES = Path(figures.__file__).resolve().parents[1]  # src/weightscape
NEUTRAL = {"black", "white", "grey", "gray", "none", "k", "w"}
COLOUR_KEYWORDS = {
    "c",
    "color",
    "colors",
    "colour",
    "facecolor",
    "facecolors",
    "edgecolor",
    "edgecolors",
    "fc",
    "ec",
    "markerfacecolor",
    "markeredgecolor",
    "mfc",
    "mec",
}
HEX = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})$")
CYCLE = re.compile(r"^C\d$")


def _sources() -> list[Path]:
    files = sorted(p for p in SOURCES.rglob("*.py") if p.name != "figures.py")
    assert len(files) > 50  # the package, not an empty folder
    return files


def _colour_names() -> tuple[set[str], set[str]]:
    import matplotlib
    import matplotlib.colors as mcolors

    colours = set(mcolors.CSS4_COLORS) | set(mcolors.TABLEAU_COLORS) | set(mcolors.XKCD_COLORS)
    return colours - NEUTRAL, set(matplotlib.colormaps) - NEUTRAL  # "grey" is a map too


def _problems(path: Path, text: str | None = None) -> list[str]:
    """Where ``path`` (or ``text`` as if it were there) imports matplotlib or names a colour or
    a colour map."""
    colours, cmaps = _colour_names()
    tree = ast.parse(path.read_text() if text is None else text)
    found = []
    for node in ast.walk(tree):
        where = f"{path.relative_to(SOURCES.parent)}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
            if any(n and (n.split(".")[0] in ("matplotlib", "pylab")) for n in names):
                found.append(f"{where}: imports {names}; use weightscape.report.figures")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            value = node.value
            if value in cmaps or value.startswith("tab:") or CYCLE.match(value) or HEX.match(value):
                found.append(f"{where}: names the colour or colour map {value!r}")
        elif isinstance(node, ast.JoinedStr) and node.values:
            first = node.values[0]
            if isinstance(first, ast.Constant) and first.value == "C" and len(node.values) > 1:
                found.append(f"{where}: names a colour-cycle entry f'C{{...}}'")
        elif isinstance(node, ast.keyword) and node.arg in (COLOUR_KEYWORDS | {"cmap"}):
            value = getattr(node.value, "value", None)
            if isinstance(value, str) and (node.arg == "cmap" or value.lower() not in NEUTRAL):
                found.append(f"{where}: {node.arg}={value!r}")
        elif isinstance(node, ast.Attribute) and node.attr in ("cm", "get_cmap"):
            found.append(f"{where}: picks a colour map by name ({node.attr}); use figures")
        # Anywhere in report/, a colour's name is a colour (elsewhere "orange" may be data).
        if isinstance(node, ast.Constant) and node.value in colours and "report" in path.parts:
            found.append(f"{where}: names the colour {node.value!r}")
    return found


def test_no_module_but_figures_imports_matplotlib_or_names_a_colour():
    problems = [p for path in _sources() for p in _problems(path)]
    assert not problems, "\n".join(problems)


def test_the_static_check_catches_what_it_forbids():
    """The check above is not vacuous: each forbidden form in a report module is caught."""
    problems = "\n".join(_problems(SOURCES / "report" / "probe.py", BAD))
    for needle in ("imports", "'viridis'", "'tab:red'", "'C1'", "'#ff0000'", "f'C{", "'red'"):
        assert needle in problems, needle
    assert "'grey'" not in problems and "'black'" not in problems


BAD = """
import matplotlib.pyplot as plt
ax.imshow(x, cmap="viridis")
ax.plot(x, color="tab:red")
ax.plot(x, color="C1")
ax.plot(x, color="#ff0000")
ax.plot(x, color=f"C{i}")
ax.plot(x, color="red")
ax.axhline(0, color="grey")
ax.plot(x, color="black")
"""


# --- drawn figures ---------------------------------------------------------------------------


def _walk(anchors, losses, path="linear"):
    from weightscape.analyses.interpolation import PathWalk, WalkPoint

    ts = np.linspace(0, 1, len(losses))
    points = [
        WalkPoint(float(t), [1 - t, t], {"loss": loss, "accuracy": 1 - loss / 3}, False, str(t))
        for t, loss in zip(ts, losses, strict=True)
    ]
    ends = {a: {"loss": 0.5, "accuracy": 0.8} for a in anchors}
    return PathWalk(path, list(anchors), "rotten_tomatoes:test", points, ends)


def _heatmap(png):
    from weightscape.report.heatmaps import plot_heatmap

    matrix = np.abs(np.random.default_rng(0).normal(size=(4, 4)))
    return plot_heatmap(
        matrix + matrix.T,
        ["m0", "m1", "m2", "m3"],
        png,
        title="Loss barrier height between model pairs",
        sort_label="accuracy",
        boundaries=[2],
        value_label="loss barrier (nats)",
    )


def _cosine_heatmap(png):
    from weightscape.report.heatmaps import plot_heatmap

    matrix = np.array([[1.0, -0.2, 0.1], [-0.2, 1.0, 0.3], [0.1, 0.3, 1.0]])
    return plot_heatmap(matrix, ["a", "b", "c"], png, title="Cosine similarity", signed=True)


def _walks(png):
    from weightscape.report.walk_outputs import plot_walks

    walks = [_walk(["rt-a", "rt-b"], [0.5, 0.9, 1.2, 0.8, 0.4])]
    walks.append(_walk(["rt-a", "rt-b"], [0.5, 0.7, 0.6, 0.5, 0.4], path="bezier"))
    return plot_walks(walks, png, title="Line and fitted bezier curve on rotten_tomatoes:test")


def _one_walk(png):
    from weightscape.report.walk_outputs import plot_walks

    return plot_walks([_walk(["rt-a", "rt-b"], [0.5, 0.9, 1.2, 0.8, 0.4])], png)


def _run_distance(png):
    from weightscape.analyses.run_distance import RunDistance
    from weightscape.report.run_distance_report import plot_run_distance

    quartiles = {"median": 1.0, "q25": 0.5, "q75": 1.5}
    neurons = {s: {"layer.0": quartiles, "layer.1": quartiles} for s in (10, 20, 30)}
    result = RunDistance(("a", "b"), [10, 20, 30], [1.0, 2.0, 2.5], 100, [1, 0.9, 0.8], neurons)
    return plot_run_distance(result, png)


def _fuse(png):
    from weightscape.report.fuse_report import plot_gains

    gains = [
        {"target": t, "regime": r, "n_train": 8, "seeds": 1, "base_accuracy": 0.6,
         "centroid_accuracy": 0.6 + g, "gain": g, "base_loss": 1.0, "centroid_loss": 0.9}
        for t, r, g in [("sst2", "full", 0.02), ("sst2", "8-shot", 0.1), ("mnli", "full", -0.01)]
    ]  # fmt: skip
    return plot_gains(gains, png)


def _combination(png):
    from weightscape.report.mix_report import plot_combination

    rows = [
        {"method": m, "dev": {"accuracy": a, "loss": 0.5}, "test": {"accuracy": a - 0.01}}
        for m, a in [("line (t=0.5)", 0.8), ("layer-wise mix", 0.85)]
    ]
    alphas = {"layer": {"l0": 0.3, "l1": 0.6}, "tensor": {"t0": 0.4, "t1": 0.5, "t2": 0.7}}
    return plot_combination(rows, alphas, Path(png), ("a", "b"))


def _trajectory(png):
    from weightscape.report.basin_plots import plot_trajectory

    trajectory = SimpleNamespace(
        runs=["seed-0", "seed-1"], steps=[10, 20, 30], labels=np.array([[0, 1, 1], [0, 0, 6]])
    )
    return plot_trajectory(trajectory, png)


def _plane(png):
    from weightscape.analyses.plane import PlaneResult
    from weightscape.report.plane_report import plot_plane

    xs, ys = np.linspace(-0.5, 1.5, 6), np.linspace(-0.5, 1.2, 5)
    loss = np.add.outer(ys**2, (xs - 0.5) ** 2)
    xy = np.array([[0.0, 0.0], [1.0, 0.0], [0.4, 0.8]])
    result = PlaneResult(
        ["a", "b", "c"], xs, ys, {"loss": loss, "accuracy": 1 - loss / loss.max()}, xy,
        {"loss": np.array([0.3, 0.4, 0.5])}, np.zeros(3), np.zeros(3), np.eye(3), task="sst2",
    )  # fmt: skip
    return plot_plane(result, "loss", png)


def _mean_path(png):
    from weightscape.analyses.mean_path import MeanCurve
    from weightscape.report.mean_path_report import plot_mean_path

    loss = np.array([[0.5, 0.9, 0.5], [0.4, 1.1, 0.6]])
    curves = {"loss": loss, "accuracy": 1 - loss / 2}
    return plot_mean_path(MeanCurve([0.0, 0.5, 1.0], ["a -> b", "c -> d"], "std", curves), png)


def _region_losses(png):
    from weightscape.report.region_plots import plot_loss_distributions

    rng = np.random.default_rng(0)
    losses = {g: rng.uniform(0.5, 1.0, 6) for g in ("In", "In'", "Ex")}
    rows = [{"level": lvl, "group": "sentiment", "losses": losses} for lvl in ("task", "general")]
    return plot_loss_distributions(rows, png)


def _region_interpolation(png):
    from weightscape.report.region_plots import plot_interpolation

    entry = {"loss": {"mean": [0.5, 0.8, 0.6], "std": [0.1, 0.1, 0.1]}, "n_pairs": 3}
    part = {"t": [0, 0.5, 1], "summary": {"same task": entry, "other task": entry}}
    return plot_interpolation({"interpolation": part, "centroid_interpolation": part}, png)


def _region_extrapolation(png):
    from weightscape.report.region_plots import plot_extrapolation

    entry = {"loss": {"mean": [0.5, 0.6, 0.7, 0.6, 0.45, 0.4, 1.0], "std": [0.05] * 7}}
    summary = {"dataset": {**entry, "n_pairs": 2}, "family": {**entry, "n_pairs": 1}}
    return plot_extrapolation({"t": [-3, -1, 0, 0.5, 1, 2, 4], "summary": summary}, png)


def _cartography(png):
    from weightscape.metrics.cartography import Cartography
    from weightscape.report.knowledge_report import plot_cartography

    rng = np.random.default_rng(0)
    stats = Cartography(rng.uniform(0, 1, 30), rng.uniform(0, 0.5, 30), rng.uniform(0, 1, 30))
    return plot_cartography(stats, png, "run-a on sst2 (30 tracked examples)")


def _pretraining():
    curve = {"t": [0, 0.5, 1], "loss": [0.5, 0.9, 0.6], "task": "sst2"}
    same = {"loss_barrier": 0.3, "accuracy_barrier": 0.05}
    cross = {"task_a": curve, "task_b": curve}
    rows = [{"step": 100 * (i + 1), "same_task": same, "cross_task": cross} for i in range(3)]
    return {"checkpoints": rows}


def _barriers(png):
    from weightscape.report.pretrain_report import plot_barriers

    return plot_barriers(_pretraining(), Path(png))


def _cross_task(png):
    from weightscape.report.pretrain_report import plot_cross_task

    return plot_cross_task(_pretraining(), Path(png))


FIGURES = {
    "heatmap": (_heatmap, {"colourbar": True}),
    "cosine heatmap": (_cosine_heatmap, {"colourbar": True}),
    "walks": (_walks, {}),
    "one walk": (_one_walk, {}),
    "run distance": (_run_distance, {}),
    "fuse gains": (_fuse, {}),
    "combination": (_combination, {}),
    "trajectory": (_trajectory, {}),
    "plane": (_plane, {"colourbar": True}),
    "mean path": (_mean_path, {}),
    "region losses": (_region_losses, {}),
    "region interpolation": (_region_interpolation, {}),
    "region extrapolation": (_region_extrapolation, {}),
    "cartography": (_cartography, {"colourbar": True}),
    "pretraining barriers": (_barriers, {}),
    "pretraining cross task": (_cross_task, {"ordered": True}),
}


@pytest.fixture
def drawn(monkeypatch, tmp_path):
    """``draw(name)`` -> (figure, png): the figure caught as :func:`figures.finish` closes it."""
    plt = figures.pyplot()
    real_close, closed = plt.close, []

    def close(fig=None):
        closed.append(fig)
        return real_close(fig)

    monkeypatch.setattr(plt, "close", close)

    def draw(name):
        make, _ = FIGURES[name]
        png = tmp_path / f"{name.replace(' ', '-')}.png"
        assert Path(make(png)) == png
        return closed[-1], png

    return draw


def _hex(colour) -> str:
    from matplotlib.colors import to_hex

    return to_hex(colour, keep_alpha=False).lower()


def _neutral(colour) -> bool:
    from matplotlib.colors import to_rgb

    r, g, b = to_rgb(colour)
    return abs(r - g) < 1e-6 and abs(g - b) < 1e-6


def _mappables(fig):
    return [
        m for ax in fig.axes for m in [*ax.images, *ax.collections] if m.get_array() is not None
    ]


def _data_colours(ax) -> list:
    """The colours of the data drawn on ``ax``: lines, bars and boxes, fills, plain scatters."""
    from matplotlib.collections import PathCollection, PolyCollection

    colours = [line.get_color() for line in ax.get_lines()]
    colours += [patch.get_facecolor() for patch in ax.patches]
    for collection in ax.collections:
        if (
            isinstance(collection, PolyCollection | PathCollection)
            and collection.get_array() is None
        ):
            colours += list(collection.get_facecolor())
    return colours


def _labelled(ax, axis: str) -> bool:
    """``ax`` has a label on ``axis``, or shares that axis with an axes that has (a row of
    panels with one y axis labels it once)."""
    shared = getattr(ax, f"get_shared_{axis}_axes")().get_siblings(ax)
    return any(getattr(a, f"get_{axis}label")().strip() for a in shared)


@pytest.mark.parametrize("name", list(FIGURES))
def test_every_figure_is_labelled_legible_and_in_the_palette(drawn, name):
    from matplotlib.text import Text

    fig, png = drawn(name)
    options = FIGURES[name][1]
    assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    bars = {m.colorbar.ax for m in _mappables(fig) if m.colorbar is not None}
    data = [
        ax
        for ax in fig.axes
        if ax not in bars and (ax.get_lines() or ax.patches or ax.collections or ax.images)
    ]
    assert data
    suptitle = fig.get_suptitle()
    for ax in data:
        shown_x = ax.xaxis.get_visible()  # a twin's x axis is its partner's
        assert _labelled(ax, "y"), f"{name}: an axes without a y label"
        if shown_x:
            assert _labelled(ax, "x"), f"{name}: an axes without an x label"
            assert ax.get_title().strip() or suptitle.strip(), f"{name}: an axes without a title"
        for label in (ax.get_xlabel(), ax.get_ylabel()):
            if "sorted by" in label:  # the models, in the order of a metric: not its value
                continue
            if "loss" in label and "gain" not in label:
                assert "nats" in label, f"{name}: {label!r} names a loss without its unit"
            if "accuracy" in label:
                assert "fraction" in label, f"{name}: {label!r} names an accuracy without its unit"
    small = [
        (t.get_text(), t.get_fontsize())
        for t in fig.findobj(Text)
        if t.get_visible() and t.get_text().strip() and t.get_fontsize() < figures.FONT_MIN
    ]
    assert not small, f"{name}: text under {figures.FONT_MIN} pt: {small[:5]}"
    raw = [t.get_text() for t in fig.findobj(Text) if "mathdefault" in t.get_text()]
    assert not raw, f"{name}: tick labels written for mathtext, which is off: {raw[:3]}"
    palette = {c.lower() for c in figures.PALETTE}
    colours = [c for ax in data for c in _data_colours(ax) if not _neutral(c)]
    if options.get("ordered"):
        allowed = {_hex(c) for c in figures.sequential_colours(len(_pretraining()["checkpoints"]))}
    else:
        allowed = palette
    strays = sorted({_hex(c) for c in colours} - allowed)
    assert not strays, f"{name}: colours outside the style: {strays}"
    maps = {figures.SEQUENTIAL, f"{figures.SEQUENTIAL}_r", figures.DIVERGING, "okabe-ito"}
    for mappable in _mappables(fig):
        if getattr(mappable, "colors", None) is not None:  # contour lines in one given colour
            continue
        assert mappable.get_cmap().name in maps, f"{name}: colour map {mappable.get_cmap().name}"
        if mappable.colorbar is not None:
            assert mappable.colorbar.ax.get_ylabel().strip(), f"{name}: an unlabelled colour bar"
    if options.get("colourbar"):
        assert bars, f"{name}: no colour bar"


def test_a_walk_plot_says_what_is_compared_and_in_which_units(drawn):
    fig, _ = drawn("one walk")
    assert fig.get_suptitle() == "Linear path rt-a -> rt-b on rotten_tomatoes:test"
    left, right = fig.axes[:2]
    assert left.get_ylabel() == figures.metric_label("loss") == "loss (mean cross-entropy, nats)"
    assert right.get_ylabel() == "accuracy (fraction correct)"
    assert left.get_xlabel() == figures.T_AXIS
    assert _hex(left.get_lines()[0].get_color()) == figures.PALETTE[0].lower()


def test_several_walks_take_the_palette_in_order(drawn):
    fig, _ = drawn("walks")
    lines = [line for line in fig.axes[0].get_lines() if not _neutral(line.get_color())]
    assert [_hex(line.get_color()) for line in lines] == [c.lower() for c in figures.PALETTE[:2]]


def test_a_signed_matrix_uses_the_diverging_map_centred_on_zero(drawn):
    fig, _ = drawn("cosine heatmap")
    image = fig.axes[0].images[0]
    low, high = image.get_clim()
    assert image.get_cmap().name == figures.DIVERGING and low == -high == -1.0
    assert fig.axes[0].get_xlabel() == "model"


def test_a_heatmap_labels_both_axes_with_the_sort_order(drawn):
    fig, _ = drawn("heatmap")
    ax = fig.axes[0]
    assert ax.images[0].get_cmap().name == figures.SEQUENTIAL
    assert ax.get_xlabel() == ax.get_ylabel() == "model, sorted by accuracy"
    assert ax.images[0].colorbar.ax.get_ylabel() == "loss barrier (nats)"
    assert all(t.get_fontsize() >= figures.FONT_MIN for t in ax.get_xticklabels())


def test_pyplot_applies_the_style():
    import matplotlib

    figures.pyplot()
    rc = matplotlib.rcParams
    assert [_hex(c) for c in rc["axes.prop_cycle"].by_key()["color"]] == [
        c.lower() for c in figures.PALETTE
    ]
    assert rc["image.cmap"] == figures.SEQUENTIAL and not rc["text.parse_math"]
    assert min(rc["xtick.labelsize"], rc["ytick.labelsize"], rc["legend.fontsize"]) >= 8
