"""Interactive figures of the HTML report as plain plotly specs (``{"data", "layout"}`` dicts).

The specs are built as JSON-able dicts, not through ``plotly.graph_objects``: the page draws them
with the plotly.js that is inlined once, so nothing here needs more than the numbers. Colours
come from :mod:`weightscape.report.figures` (Okabe-Ito and viridis), as in the static PNGs.

Names from users (models, tags, tasks) go into plotly's text, which reads a few HTML tags
(``<b>``, ``<br>``) and entities: :func:`label` escapes them, so a name shows as typed.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from typing import Any

from weightscape.report.figures import DIVERGING, METRIC_LABELS, PALETTE, SEQUENTIAL, T_AXIS

Spec = dict[str, Any]
GRID = "rgba(0,0,0,0.12)"  # light grid lines (neutral, not data)


def label(name: Any) -> str:
    """``name`` as plotly text that shows exactly as typed (``<`` as ``&lt;``)."""
    return html.escape(str(name), quote=False)


def color(i: int) -> str:
    """The ``i``-th palette colour (wrapping)."""
    return PALETTE[i % len(PALETTE)]


def layout(title: str, subtitle: str | None = None, **extra: Any) -> dict[str, Any]:
    """The shared look: white, light grid, the palette, titles that name what is plotted (at
    the left, clear of the tool bar), and an optional smaller second line."""
    axis = {"gridcolor": GRID, "zerolinecolor": GRID, "automargin": True}
    text = label(title) + (f"<br><sub>{label(subtitle)}</sub>" if subtitle else "")
    base: dict[str, Any] = {
        "title": {"text": text, "font": {"size": 14}, "x": 0.01, "xanchor": "left"},
        "colorway": list(PALETTE),
        "font": {"family": "system-ui, -apple-system, Segoe UI, sans-serif", "size": 12},
        "paper_bgcolor": "white",
        "plot_bgcolor": "white",
        "margin": {"l": 60, "r": 20, "t": 70 if subtitle else 50, "b": 50},
        "hovermode": "closest",
        "xaxis": dict(axis),
        "yaxis": dict(axis),
        "legend": {"orientation": "h", "y": -0.2},
    }
    base.update(extra)
    return base


def curves(
    series: Sequence[dict[str, Any]],
    title: str,
    x_title: str = T_AXIS,
    y_titles: tuple[str, str] | None = None,
) -> Spec:
    """Loss (left) and accuracy (right) along t for each series, the loss barrier marked.

    Each series: ``name``, ``t``, ``loss``, ``accuracy`` (lists), and optionally ``barrier``
    (``{"t", "value"}``: where the loss rises most above its chord, and by how much).
    Hovering a point shows the series (the pair), t, loss and accuracy. ``y_titles`` names the
    two axes (default: classification loss and accuracy; a language model's walk passes its
    token-mean NLL and token accuracy).
    """
    loss_title, accuracy_title = y_titles or (METRIC_LABELS["loss"], METRIC_LABELS["accuracy"])
    data: list[dict[str, Any]] = []
    for i, s in enumerate(series):
        name, ts = label(s["name"]), list(s["t"])
        extra = [[name, a, b] for a, b in zip(s["loss"], s["accuracy"], strict=True)]
        hover = (
            "%{customdata[0]}<br>t=%{x:.4g}<br>loss=%{customdata[1]:.6g}"
            "<br>accuracy=%{customdata[2]:.4g}<extra></extra>"
        )
        common = {"type": "scatter", "mode": "lines+markers", "x": ts, "customdata": extra}
        style = {"color": color(i)}
        data.append(
            {**common, "y": list(s["loss"]), "name": name, "legendgroup": f"s{i}",
             "line": style, "marker": {**style, "size": 5}, "hovertemplate": hover}
        )  # fmt: skip
        data.append(
            {**common, "y": list(s["accuracy"]), "name": name, "legendgroup": f"s{i}",
             "showlegend": False, "xaxis": "x2", "yaxis": "y2", "line": style,
             "marker": {**style, "size": 5}, "hovertemplate": hover}
        )  # fmt: skip
        barrier = s.get("barrier")
        if barrier and barrier.get("value"):
            at = ts.index(barrier["t"]) if barrier["t"] in ts else None
            data.append(
                {"type": "scatter", "mode": "markers+text", "x": [barrier["t"]],
                 "y": [s["loss"][at] if at is not None else None],
                 "marker": {"symbol": "x", "size": 11, "color": color(i)},
                 "text": [f"barrier {barrier['value']:.3g}"], "textposition": "top center",
                 "showlegend": False, "legendgroup": f"s{i}", "hoverinfo": "skip"}
            )  # fmt: skip
    axis = {"gridcolor": GRID, "automargin": True}
    return {
        "data": data,
        "layout": layout(
            title,
            xaxis={**axis, "domain": [0, 0.45], "title": {"text": x_title}},
            yaxis={**axis, "title": {"text": loss_title}},
            xaxis2={**axis, "domain": [0.55, 1], "anchor": "y2", "title": {"text": x_title}},
            yaxis2={**axis, "anchor": "x2", "title": {"text": accuracy_title}},
        ),
    }


def heatmap(
    matrix: Sequence[Sequence[float]],
    names: Sequence[str],
    title: str,
    *,
    order: Sequence[int] | None = None,
    value: str = "value",
    boundaries: Sequence[int] = (),
    columns: Sequence[str] | None = None,
    subtitle: str | None = None,
    axis_titles: tuple[str, str] = ("model", "model"),
    value_label: str | None = None,
    signed: bool = False,
) -> Spec:
    """An N x N (or N x M, with ``columns``) matrix, rows and columns in ``order``; hovering
    a cell shows its row model, column model and value. ``boundaries`` are positions in the
    sorted order where cluster lines are drawn."""
    order = list(range(len(names))) if order is None else list(order)
    rows = [label(names[i]) for i in order]
    cols = rows if columns is None else [label(c) for c in columns]
    z = (
        [[matrix[i][j] for j in order] for i in order]
        if columns is None
        else [list(matrix[i]) for i in order]
    )
    shapes = []
    for b in boundaries:
        for axis in ("x", "y"):
            line = {"type": "line", "xref": "x" if axis == "x" else "paper"}
            line.update({"yref": "paper" if axis == "x" else "y", "line": {"color": "white"}})
            if axis == "x":
                line.update({"x0": b - 0.5, "x1": b - 0.5, "y0": 0, "y1": 1})
            else:
                line.update({"y0": b - 0.5, "y1": b - 0.5, "x0": 0, "x1": 1})
            shapes.append(line)
    return {
        "data": [
            {
                "type": "heatmap",
                "z": z,
                "x": cols,
                "y": rows,
                # signed values (cosines) on the diverging map centred on 0, as the PNGs
                **(
                    {
                        # plotly.js names the map without matplotlib's "_r" (reversed) suffix
                        "colorscale": DIVERGING.removesuffix("_r"),
                        "reversescale": DIVERGING.endswith("_r"),
                        "zmid": 0,
                    }
                    if signed
                    else {"colorscale": SEQUENTIAL.capitalize()}
                ),
                "colorbar": {
                    "title": {"text": label(value_label or value), "side": "right"},
                    "tickformat": ".3g",  # plain numbers, not SI prefixes (100µ)
                },
                "hovertemplate": "row: %{y}<br>column: %{x}<br>"
                + label(value_label or value)
                + ": %{z:.6g}<extra></extra>",
            }
        ],
        "layout": layout(
            title,
            subtitle,
            xaxis={
                "type": "category",
                "tickangle": -60 if columns is None else 0,
                "automargin": True,
                "title": {"text": label(axis_titles[0])},
            },
            yaxis={
                "type": "category",
                "autorange": "reversed",
                "automargin": True,
                "title": {"text": label(axis_titles[1])},
            },
            shapes=shapes,
        ),
    }


def scatter(
    xy: Sequence[Sequence[float]],
    names: Sequence[str],
    groups: Sequence[Any],
    title: str,
    *,
    group_title: str = "group",
    axes: tuple[str, str] = ("x", "y"),
) -> Spec:
    """Points coloured by group (a tag's values); hovering shows the model's name and group."""
    data = []
    for i, group in enumerate(dict.fromkeys(str(g) for g in groups)):
        members = [k for k, g in enumerate(groups) if str(g) == group]
        data.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": label(group),
                "x": [xy[k][0] for k in members],
                "y": [xy[k][1] for k in members],
                "text": [label(names[k]) for k in members],
                "marker": {"size": 10, "color": color(i), "line": {"width": 0.5}},
                "hovertemplate": "%{text}<br>"
                + label(group_title)
                + ": "
                + label(group)
                + "<extra></extra>",
            }
        )
    return {
        "data": data,
        "layout": layout(
            title,
            xaxis={"title": {"text": axes[0]}, "gridcolor": GRID},
            yaxis={"title": {"text": axes[1]}, "gridcolor": GRID},
            legend={"title": {"text": label(group_title)}},
        ),
    }


def contour(
    xs: Sequence[float],
    ys: Sequence[float],
    z: Sequence[Sequence[float]],
    title: str,
    *,
    value: str,
    points: Sequence[Sequence[float]] = (),
    names: Sequence[str] = (),
) -> Spec:
    """A metric over a plane (``z[j][i]`` at ``(xs[i], ys[j])``), the models marked."""
    data: list[dict[str, Any]] = [
        {
            "type": "contour",
            "x": list(xs),
            "y": list(ys),
            "z": [list(row) for row in z],
            "colorscale": SEQUENTIAL.capitalize(),
            "colorbar": {"title": {"text": label(value), "side": "right"}, "tickformat": ".3g"},
            "contours": {"coloring": "heatmap", "showlabels": True},
            "hovertemplate": "u=%{x:.3g}<br>v=%{y:.3g}<br>"
            + label(value)
            + ": %{z:.6g}<extra></extra>",
        }
    ]
    if len(points):
        data.append(
            {
                "type": "scatter",
                "mode": "markers+text",
                "x": [p[0] for p in points],
                "y": [p[1] for p in points],
                "text": [label(n) for n in names],
                "textposition": "top center",
                "marker": {"color": "white", "size": 9, "line": {"color": "black", "width": 1}},
                "hovertemplate": "%{text}<extra></extra>",
                "showlegend": False,
            }
        )
    return {
        "data": data,
        "layout": layout(
            title,
            xaxis={"title": {"text": "u"}, "scaleanchor": "y"},
            yaxis={"title": {"text": "v"}},
        ),
    }


def lines(
    x: Sequence[Any],
    series: dict[str, Sequence[float | None]],
    title: str,
    *,
    x_title: str,
    y_title: str,
    bands: dict[str, tuple[Sequence[float], Sequence[float]]] | None = None,
) -> Spec:
    """One line per series over a shared x; ``bands`` shade ``(lower, upper)`` around the
    series of the same name."""
    data: list[dict[str, Any]] = []
    for i, (name, ys) in enumerate(series.items()):
        if bands and name in bands:
            lower, upper = bands[name]
            data.append(
                {"type": "scatter", "x": list(x) + list(x)[::-1],
                 "y": list(upper) + list(lower)[::-1], "fill": "toself", "opacity": 0.25,
                 "line": {"width": 0}, "fillcolor": color(i), "hoverinfo": "skip",
                 "showlegend": False}
            )  # fmt: skip
        data.append(
            {"type": "scatter", "mode": "lines+markers", "x": list(x), "y": list(ys),
             "name": label(name), "line": {"color": color(i)},
             "hovertemplate": label(name) + "<br>" + label(x_title) + "=%{x}<br>"
             + label(y_title) + "=%{y:.6g}<extra></extra>"}
        )  # fmt: skip
    return {
        "data": data,
        "layout": layout(
            title,
            xaxis={"title": {"text": label(x_title)}, "gridcolor": GRID},
            yaxis={"title": {"text": label(y_title)}, "gridcolor": GRID},
        ),
    }


def barrier_point(ts: Sequence[float], values: Sequence[float]) -> float | None:
    """The t where ``values`` rise most above the chord joining their ends (over the points
    in [0, 1]); None when they never rise above it. Only locates the stored barrier."""
    inside = [(t, v) for t, v in zip(ts, values, strict=True) if 0 <= t <= 1]
    if len(inside) < 3 or not all(_finite(v) for _, v in inside):
        return None
    (t0, v0), (t1, v1) = inside[0], inside[-1]
    if t1 == t0:
        return None
    gaps = [(v - (v0 + (t - t0) / (t1 - t0) * (v1 - v0)), t) for t, v in inside[1:-1]]
    gap, at = max(gaps)
    return at if gap > 0 else None


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)
