"""Plots and tables of a task-vector similarity study, from its stored results only.

* cosine and Euclidean heatmaps, models sorted by the scored tags with lines between blocks
  (Gueta et al., Fig. 8: datasets by data size);
* t-SNE and PCA scatters per tag: the fill is the model's tag value, the ring the value most
  common in its cluster (Gueta et al., Figs. 2, 7, 9), so a model in the wrong cluster shows two
  colours;
* ``clustering.csv`` and ``summary.md``: clustering accuracy and per-group F1 per tag;
* ``models.csv``: each model's task-vector norm, tags, clusters and 2-D coordinates.

A zoo without tags, clustered into ``--k`` clusters, has its heatmaps sorted by cluster and its
scatters (``tsne.png``, ``pca.png``) coloured by cluster; nothing is scored.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from weightscape.analyses.similarity import Similarity, TagClustering
from weightscape.outputs import md_cell
from weightscape.report.figures import DISTANCE, FONT_MIN, PALETTE, finish, label_axes, pyplot
from weightscape.report.heatmaps import plot_heatmap, write_matrix_csv

EMBEDDING_TITLES = {"tsne": "t-SNE", "pca": "PCA"}
EMBEDDING_AXES = {
    "tsne": "t-SNE dimension {} (unitless)",
    "pca": "principal component {} (weight space)",
}
MARKERS = "os^DvPX*"  # past the palette's colours, groups differ by marker too


def render_similarity(similarity: Similarity, config) -> list[str]:
    """Write the tables and plots into ``config.out`` (the study saved the matrices there);
    the lines the terminal shows."""
    out = Path(config.out)
    files = {"npz": out / "similarity.npz", "json": out / "similarity.json"}
    files.update(write_similarity_figures(similarity, out))
    norms = similarity.norms
    lines = [
        f"{len(similarity.names)} task vectors from {similarity.base}: norms {norms.min():.4g} "
        f"to {norms.max():.4g}"
    ]
    for tag, c in similarity.clusterings.items():
        f1 = ", ".join(f"{g}={v:.2f}" for g, v in c.f1.items())
        lines.append(f"{tag}: k={c.k}, clustering accuracy {c.accuracy:.3f} (per-group F1: {f1})")
    if similarity.clusters is not None:
        lines.append(cluster_line(similarity))
    lines.append(f"wrote {out}: " + ", ".join(sorted(p.name for p in files.values())))
    return lines


def cluster_line(similarity: Similarity) -> str:
    """The unscored clusters in one line: ``k=2 clusters (cosine): {a, b} {c, d}``."""
    clusters = similarity.clusters
    groups = " ".join("{" + ", ".join(m) + "}" for m in clusters.members(similarity.names))
    return f"k={clusters.k} clusters ({clusters.distance}): {groups}"


def write_similarity_report(similarity: Similarity, out: str | Path) -> dict[str, Path]:
    """Save the study and write its CSVs, PNGs and ``summary.md`` into ``out``.

    Returns:
        File kind -> path, e.g. ``cosine_png`` or ``tsne_dataset_png``.
    """
    out = Path(out)
    similarity.save(out)
    files = {"npz": out / "similarity.npz", "json": out / "similarity.json"}
    return {**files, **write_similarity_figures(similarity, out)}


def write_similarity_figures(similarity: Similarity, out: str | Path) -> dict[str, Path]:
    """Write the CSVs, PNGs and ``summary.md`` of a saved study into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    tags = list(similarity.clusterings)
    order, boundaries = tag_order(similarity, tags)
    sort_label = ", ".join(tags) or None
    if not tags and similarity.clusters is not None:
        order, boundaries = cluster_order(similarity.clusters.labels)
        sort_label = "cluster"
    matrices = {"cosine": similarity.cosine, "euclidean": similarity.euclidean}
    titles = {
        "cosine": "Cosine similarity of task vectors between models",
        "euclidean": "Euclidean distance between models",
    }
    value_labels = {"cosine": "cosine similarity (-1 to 1)", "euclidean": DISTANCE}
    for name, matrix in matrices.items():
        files[f"{name}_csv"] = write_matrix_csv(matrix, similarity.names, out / f"{name}.csv")
        files[f"{name}_png"] = plot_heatmap(
            matrix,
            similarity.names,
            out / f"{name}.png",
            title=titles[name],
            order=order,
            sort_label=sort_label,
            boundaries=boundaries,
            value_label=value_labels[name],
            signed=name == "cosine",
        )
    for kind in similarity.embeddings:
        for tag in tags or [None]:
            png = out / f"{kind}{f'-{tag}' if tag else ''}.png"
            files[f"{kind}_{tag or 'models'}_png"] = plot_embedding(similarity, kind, tag, png)
    files["models_csv"] = write_models_csv(similarity, out / "models.csv")
    files["clustering_csv"] = write_clustering_csv(similarity, out / "clustering.csv")
    files["summary"] = write_summary(similarity, out / "summary.md")
    return files


def tag_order(similarity: Similarity, tags: Sequence[str]) -> tuple[np.ndarray, list[int]]:
    """Models sorted by the tags in turn (numbers numerically), and where the first tag changes.

    >>> s = Similarity(["a", "b", "c"], [{"n": 800}, {"n": 200}, {"n": 800}], np.eye(3))
    >>> order, boundaries = tag_order(s, ["n"])
    >>> order.tolist(), boundaries
    ([1, 0, 2], [1])
    """
    if not tags:
        return np.arange(len(similarity.names)), []
    keys = [tuple(_sort_key(t.get(tag)) for tag in tags) for t in similarity.tags]
    order = np.array(sorted(range(len(keys)), key=lambda i: keys[i]))
    first = [keys[i][0] for i in order]
    boundaries = [p for p in range(1, len(first)) if first[p] != first[p - 1]]
    return order, boundaries


def cluster_order(labels: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """Models sorted by cluster (stable within one), and where the cluster changes.

    >>> order, boundaries = cluster_order(np.array([0, 1, 0, 1]))
    >>> order.tolist(), boundaries
    ([0, 2, 1, 3], [2])
    """
    order = np.argsort(labels, kind="stable")
    sorted_labels = labels[order]
    return order, [p for p in range(1, len(order)) if sorted_labels[p] != sorted_labels[p - 1]]


def _sort_key(value: object) -> tuple[int, float, str]:
    """Numbers before text, numbers by value: 200 < 800 < 3200, not '200' < '3200' < '800'."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (0, float(value), "")
    return (1, 0.0, str(value))


def plot_embedding(similarity: Similarity, kind: str, tag: str | None, png: str | Path) -> Path:
    """Scatter of the models' 2-D coordinates, filled by tag value, ringed by cluster majority."""
    plt = pyplot()
    points = similarity.embeddings[kind]
    clustering = similarity.clusterings.get(tag) if tag else None
    values = clustering.truth if clustering else [""] * len(similarity.names)
    if tag is None and similarity.clusters is not None:  # no tags: colour by cluster
        values = [f"cluster {c}" for c in similarity.clusters.labels]
    groups = sorted(set(values), key=lambda v: _sort_key(_number(v)))
    colours = {g: PALETTE[i % len(PALETTE)] for i, g in enumerate(groups)}
    markers = {g: MARKERS[i // len(PALETTE) % len(MARKERS)] for i, g in enumerate(groups)}
    rings = [colours[v] for v in _cluster_majority(clustering)] if clustering else None
    fig, ax = plt.subplots(figsize=(6.4, 5.2))
    for group in groups:
        mask = np.array([v == group for v in values])
        ax.scatter(
            points[mask, 0],
            points[mask, 1],
            s=60,
            marker=markers[group],
            color=colours[group],
            edgecolors=[rings[i] for i in np.flatnonzero(mask)] if rings else "black",
            linewidths=2.0 if rings else 0.5,
            label=group or None,
        )
    if len(similarity.names) <= 30:
        for name, (x, y) in zip(similarity.names, points, strict=True):
            ax.annotate(name, (x, y), fontsize=FONT_MIN, xytext=(3, 3), textcoords="offset points")
    name = EMBEDDING_TITLES.get(kind, kind)
    title = f"{name} of the task vectors of {len(similarity.names)} models"
    if clustering:
        title += f"\nfill: {tag}; ring: cluster majority (accuracy {clustering.accuracy:.2f})"
        ax.legend(title=tag)
    elif tag is None and similarity.clusters is not None:
        title += f"\ncolour: cluster (k = {similarity.clusters.k}, {similarity.clusters.distance})"
        ax.legend(title="cluster")
    axis = EMBEDDING_AXES.get(kind, f"{name} {{}}")
    label_axes(ax, axis.format(1), axis.format(2), title)
    ax.set_xticks([])  # the coordinates' values mean nothing on their own
    ax.set_yticks([])
    return finish(fig, png)


def _number(text: str) -> object:
    """Tag text back to a number where it is one, for sorting legends."""
    try:
        return float(text)
    except ValueError:
        return text


def _cluster_majority(clustering: TagClustering) -> list[str]:
    """For each model, the tag value most common in its cluster (ties: first seen)."""
    majority = {}
    for cluster in np.unique(clustering.labels):
        inside = clustering.labels == cluster
        members = [v for v, i in zip(clustering.truth, inside, strict=True) if i]
        majority[cluster] = Counter(members).most_common(1)[0][0]
    return [majority[c] for c in clustering.labels]


def write_models_csv(similarity: Similarity, path: str | Path) -> Path:
    """One row per model: task-vector norm, tags, cluster per scored tag, 2-D coordinates."""
    path = Path(path)
    tag_names = sorted({key for t in similarity.tags for key in t})
    header = ["name", "norm", *tag_names, *(f"cluster_{t}" for t in similarity.clusterings)]
    if similarity.clusters is not None:
        header.append("cluster")
    header += [f"{kind}_{axis}" for kind in similarity.embeddings for axis in ("x", "y")]
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for i, name in enumerate(similarity.names):
            row = [name, f"{similarity.norms[i]:.6g}"]
            row += [similarity.tags[i].get(t, "") for t in tag_names]
            row += [int(c.labels[i]) for c in similarity.clusterings.values()]
            if similarity.clusters is not None:
                row.append(int(similarity.clusters.labels[i]))
            row += [f"{v:.6g}" for p in similarity.embeddings.values() for v in p[i]]
            writer.writerow(row)
    return path


def write_clustering_csv(similarity: Similarity, path: str | Path) -> Path:
    """One row per (tag, group): k, distance, accuracy, the group's size and F1."""
    path = Path(path)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["tag", "k", "distance", "accuracy", "group", "size", "f1"])
        for tag, c in similarity.clusterings.items():
            sizes = Counter(c.truth)
            for group, f1 in c.f1.items():
                row = [tag, c.k, c.distance, f"{c.accuracy:.6g}", group, sizes[group]]
                writer.writerow([*row, f"{f1:.6g}"])
    return path


def write_summary(similarity: Similarity, path: str | Path) -> Path:
    """A markdown summary: the zoo, per tag the clustering accuracy and per-group F1, and the
    unscored clusters' members when ``k`` was given."""
    path = Path(path)
    norms = similarity.norms
    lines = [
        "# Task-vector similarity",
        "",
        f"{len(similarity.names)} models; task vectors from base `{similarity.base}` over the "
        f"parameter space `{similarity.space.get('preset', '?')}`; norms "
        f"{norms.min():.4g} to {norms.max():.4g} (mean {norms.mean():.4g}).",
        "",
    ]
    if similarity.clusterings:
        lines += [
            "| tag | k | distance | clustering accuracy | per-group F1 |",
            "|---|---|---|---|---|",
        ]
    else:
        lines.append("No tags to score the clusters against.")
    for tag, c in similarity.clusterings.items():
        f1 = ", ".join(f"{md_cell(g)}: {v:.2f}" for g, v in c.f1.items())
        lines.append(f"| {md_cell(tag)} | {c.k} | {c.distance} | {c.accuracy:.3f} | {f1} |")
    clusters = similarity.clusters
    if clusters is not None:
        lines += ["", f"Clusters (k = {clusters.k}, {clusters.distance} distance):", ""]
        members = clusters.members(similarity.names)
        lines += [f"- cluster {i}: {', '.join(map(md_cell, m))}" for i, m in enumerate(members)]
    path.write_text("\n".join(lines) + "\n")
    return path
