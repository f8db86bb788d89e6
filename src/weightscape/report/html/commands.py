"""The interactive figures, tables and reading of each command's outputs.

One builder per command (:data:`BUILDERS`), each ``builder(view)`` with a
:class:`~weightscape.report.html.sections.StepView`: it reads the files that command writes (the
same ones its static report draws) and adds figures as the papers draw them, with the PNG of the
same figure as the printed fallback. Whatever a builder does not show, the section shows as it is.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from weightscape.report.figures import METRIC_LABELS
from weightscape.report.grid_report import SIGNED, VALUE_LABELS
from weightscape.report.html import plots, reading

TITLES = {
    "loss_barrier": "Loss barrier height",
    "loss_convexity_gap": "Loss convexity gap",
    "loss_auc": "Loss AUC per unit Euclidean distance",
    "loss_auc_t": "Loss AUC per unit t",
    "accuracy_drop": "Accuracy drop (barrier on accuracy)",
    "accuracy_convexity_gap": "Accuracy convexity gap",
    "euclidean": "Euclidean distance",
    "task_vector_cosine": "Cosine similarity of task vectors",
}


# A language model's walk: the loss is the mean NLL over all target tokens, accuracy over them.
LM_AXES = (
    "loss (token-mean negative log likelihood, nats)",
    "token accuracy (fraction of targets predicted)",
)


def _series(path: dict[str, Any], name: str | None = None) -> dict[str, Any]:
    """A walk (``path.json``) as a curve series, its loss barrier located."""
    points = path["points"]
    ts = [p["t"] for p in points]
    loss = [p["metrics"]["loss"] for p in points]
    value = ((path.get("summary") or {}).get("loss") or {}).get("barrier_height")
    at = plots.barrier_point(ts, loss)
    return {
        "name": name or " -> ".join(map(str, path.get("anchors", []))),
        "t": ts,
        "loss": loss,
        "accuracy": [p["metrics"].get("accuracy") for p in points],
        "barrier": {"t": at, "value": value} if at is not None and value else None,
    }


def interpolate(view) -> None:
    path = view.json("path.json")
    series = _series(path)
    view.say(reading.walk(path, series["barrier"]["t"] if series["barrier"] else None))
    title = f"{path.get('path', 'linear')} path on {path.get('task')}"
    axes = LM_AXES if reading.is_language_model_walk(path) else None
    view.plot("path", plots.curves([series], title, y_titles=axes), fallback="path.png")


def demo(view) -> None:
    walks = {f[len("path-") : -len(".json")]: view.json(f) for f in view.matching("path-*.json")}
    series = [_series(walk, name.replace("-", " ")) for name, walk in walks.items()]
    for name, walk in walks.items():
        view.say([f"{name.replace('-', ' ').capitalize()}: " + reading.walk(walk)[0]])
    title = "Linear paths between the demo's models"
    view.plot("paths", plots.curves(series, title), fallback="paths.png")
    models = (view.json("summary.json") or {}).get("models") or {}
    if models:
        rows = [[m, v.get("test_accuracy"), v.get("test_loss")] for m, v in models.items()]
        columns = ["model", "test accuracy", "test loss"]
        view.table("Each model on the test sentences", columns, rows, "models.csv")


def mean_path(view) -> None:
    result = view.json("mean-path.json")
    view.say(reading.mean_path(result))
    for metric in ("loss", "accuracy"):
        curve = result["curves"].get(metric)
        if not curve:
            continue
        if result.get("band") == "std":  # mean +- sample std, as the static figure
            mean, std = curve["mean"], curve["std"]
            band = (
                [m - d for m, d in zip(mean, std, strict=True)],
                [m + d for m, d in zip(mean, std, strict=True)],
            )
        else:
            band = (curve["min"], curve["max"])
        title = f"Mean {metric} over {len(result['pairs'])} pairs"
        spec = plots.lines(
            result["ts"], {"mean": curve["mean"]}, title,
            x_title="t", y_title=METRIC_LABELS.get(metric, metric), bands={"mean": band},
        )  # fmt: skip
        view.plot(f"mean {metric}", spec, fallback="mean-path.png" if metric == "loss" else None)


def curve(view) -> None:
    view.say(reading.curve(view.json("curve-summary.json") or {}))
    series = [
        _series(view.json(f), label)
        for f, label in (("path-line.json", "line"), ("path-curve.json", "curve"))
        if view.has(f)
    ]
    if series:
        spec = plots.curves(series, "The line and the fitted curve (dev)")
        view.plot("curve vs line", spec, fallback="curve-vs-line.png")


def combine(view) -> None:
    rows = view.json("combine.json") or []
    view.say(reading.combine(rows))  # the table of methods is combine.md
    alphas = {}
    for name in view.matching("combination-*.json"):
        alphas[name[len("combination-") : -len(".json")]] = view.json(name).get("alphas", {})
    for grouping, values in alphas.items():
        rows = [[group, value] for group, value in values.items()]
        view.table(
            f"Learned weight of the second model per {grouping} (alpha)",
            ["group", "alpha"],
            rows,
            f"alphas-{grouping}.csv",
        )


def grid(view) -> None:
    meta, arrays = view.json("grid.json"), view.arrays("grid.npz")
    names = meta["names"]
    accuracy = arrays.get("endpoint_accuracy")
    order = [int(i) for i in accuracy.argsort(kind="stable")] if accuracy is not None else None
    barrier = arrays.get("matrix_loss_barrier")
    if barrier is not None:
        view.say(reading.grid(names, barrier.tolist(), _list(accuracy), meta.get("task")))
    for key in [k for k in arrays if k.startswith("matrix_")]:
        matrix = key[len("matrix_") :]
        spec = plots.heatmap(
            arrays[key].tolist(), names, TITLES.get(matrix, matrix), order=order, value=matrix,
            subtitle=f"models sorted by {meta.get('task')} accuracy",
            value_label=VALUE_LABELS.get(matrix), signed=matrix in SIGNED,
        )  # fmt: skip
        small = len(names) <= 12
        view.plot(matrix, spec, fallback=f"{matrix}.png", height=_square(len(names)), half=small)
    if "curve_loss" in arrays:
        ts = arrays["ts"].tolist()
        series = [
            {"name": f"{names[i]} / {names[j]}", "t": ts,
             "loss": arrays["curve_loss"][i, j].tolist(),
             "accuracy": arrays["curve_accuracy"][i, j].tolist()}
            for i in range(len(names)) for j in range(i + 1, len(names))
        ]  # fmt: skip
        view.plot("pair curves", plots.curves(series, "Every pair's path"), height=460)


def basins(view) -> None:
    result = view.json("basins.json")
    view.say(reading.basins(result))
    models = result.get("models", [])
    grid_folder = view.config.get("grid")
    candidates = (
        [Path(grid_folder), view.folder.parent / Path(grid_folder).name] if grid_folder else []
    )
    npz = next((c / "grid.npz" for c in candidates if (c / "grid.npz").is_file()), None)
    if npz is not None and result.get("matrix"):
        _cluster_heatmap(view, npz, models, result["matrix"])
    correlations = result.get("margin_correlations") or {"": result.get("correlations", {})}
    rows = [
        [margin or result.get("margin"), metric, s.get("pearson_r"), s.get("pearson_p"),
         s.get("spearman_rho"), s.get("spearman_p"), s.get("n")]
        for margin, by_metric in correlations.items() for metric, s in by_metric.items()
    ]  # fmt: skip
    columns = ["margin", "metric", "pearson r", "p", "spearman rho", "p", "n"]
    view.table("Cluster margin against each metric", columns, rows, "correlations.csv")


def _cluster_heatmap(view, npz: Path, models: list[dict[str, Any]], matrix: str) -> None:
    import json

    import numpy as np

    names = json.loads((npz.parent / "grid.json").read_text())["names"]
    with np.load(npz) as data:
        values = data[f"matrix_{matrix}"].tolist()
    cluster = {m["name"]: m.get("cluster") for m in models}
    order = sorted(range(len(names)), key=lambda i: (str(cluster.get(names[i])), names[i]))
    labels = [cluster.get(names[i]) for i in order]
    boundaries = [k for k in range(1, len(labels)) if labels[k] != labels[k - 1]]
    spec = plots.heatmap(
        values, names, TITLES.get(matrix, matrix), order=order, value=matrix,
        boundaries=boundaries, subtitle="models sorted by cluster (white lines between clusters)",
    )  # fmt: skip
    fallback = f"{matrix}_by_cluster.png"
    view.plot(f"{matrix} by cluster", spec, fallback=fallback, height=_square(len(names)))


def trajectories(view) -> None:
    result = view.json("trajectory.json")
    view.say(reading.trajectories(result))
    steps = [str(s) for s in result["steps"]]
    spec = plots.heatmap(
        result["labels"], result["runs"], "Cluster of each run at each saved step",
        columns=steps, value="cluster", axis_titles=("saved training step", "run"),
    )  # fmt: skip
    view.plot("clusters per step", spec, fallback="trajectory.png", height=_square(len(steps)))


def similarity(view) -> None:
    result, arrays = view.json("similarity.json"), view.arrays("similarity.npz")
    view.say(reading.similarity(result))
    names, tags = result["names"], result.get("tags", [])
    for tag in result.get("clusterings", {}):
        _embeddings(view, arrays, names, [t.get(tag) for t in tags], tag, f"-{tag}")
    clusters = result.get("clusters")
    if not result.get("clusterings") and clusters:  # no tags: colour by the k clusters
        groups = [f"cluster {c}" for c in clusters["labels"]]
        _embeddings(view, arrays, names, groups, "cluster", "")
    if "cosine" in arrays:
        spec = plots.heatmap(
            arrays["cosine"].tolist(), names, "Cosine similarity of task vectors",
            value="cosine", value_label="cosine similarity (-1 to 1)", signed=True,
        )  # fmt: skip
        view.plot("cosine", spec, fallback="cosine.png", height=_square(len(names)))


def _embeddings(view, arrays, names, groups, group: str, suffix: str) -> None:
    """The t-SNE and PCA scatters of the task vectors, coloured by ``groups``."""
    for method in ("tsne", "pca"):
        xy = arrays.get(f"embedding_{method}")
        if xy is None:
            continue
        title = f"{method.upper().replace('TSNE', 't-SNE')} of task vectors, coloured by {group}"
        axes = ("t-SNE 1", "t-SNE 2") if method == "tsne" else ("PC 1", "PC 2")
        spec = plots.scatter(xy.tolist(), names, groups, title, group_title=group, axes=axes)
        view.plot(f"{method} {group}", spec, fallback=f"{method}{suffix}.png")


def region(view) -> None:
    result = view.json("regions.json")
    view.say(reading.region(result))
    interpolation = result.get("interpolation") or {}
    series = [
        {"name": f"{c['from']} -> {c['to']} ({c.get('category')}, on {c.get('target')})",
         "t": interpolation["t"], "loss": c["loss"], "accuracy": c["accuracy"]}
        for c in interpolation.get("curves", [])
    ]  # fmt: skip
    if series:
        spec = plots.curves(series, "Interpolation across data")
        view.plot("interpolation", spec, fallback="region-interpolation.png")


def plane(view) -> None:
    meta, arrays = view.json("plane.json"), view.arrays("plane.npz")
    names = meta["names"]
    xs, ys = arrays["xs"].tolist(), arrays["ys"].tolist()
    loss = arrays.get("surface_loss")
    if loss is not None:
        view.say(reading.plane(names, loss.tolist(), xs, ys))
    for metric in ("loss", "accuracy"):
        surface = arrays.get(f"surface_{metric}")
        if surface is None:
            continue
        spec = plots.contour(
            xs, ys, surface.tolist(), f"{metric} on the plane through the three models",
            value=metric, points=arrays["coordinates"].tolist(), names=names,
        )  # fmt: skip
        view.plot(f"plane {metric}", spec, fallback=f"plane_{metric}.png", height=520)


def knowledge(view) -> None:
    result = view.json("knowledge.json")
    view.say(reading.knowledge(result))
    steps = result.get("steps") or []
    if steps:
        ts = [s["t"] for s in steps]
        series = {
            "forgotten (source)": [s.get("forgotten") for s in steps],
            "learned (target)": [s.get("learned") for s in steps],
        }
        spec = plots.lines(ts, series, "Examples forgotten and learned along the path",
                           x_title="t", y_title="examples")  # fmt: skip
        view.plot("forgotten and learned", spec, fallback="knowledge-steps.png")


def pretraining(view) -> None:
    result = view.json("pretraining.json")
    view.say(reading.pretraining(result))
    checkpoints = result.get("checkpoints") or []
    if checkpoints:
        steps = [c["step"] for c in checkpoints]
        same = [(c.get("same_task") or {}) for c in checkpoints]
        series = {
            "loss barrier A-A": [s.get("loss_barrier") for s in same],
            "accuracy drop A-A": [s.get("accuracy_barrier") for s in same],
        }
        spec = plots.lines(steps, series, "Barrier between two finetuned copies per checkpoint",
                           x_title="pretraining step", y_title="barrier")  # fmt: skip
        view.plot("barriers", spec, fallback="pretraining-barriers.png")
    lines = result.get("mlm_paths") or []
    if lines:
        series = {f"{r['from_step']} -> {r['to_step']}": r["loss"] for r in lines}
        spec = plots.lines(lines[0]["t"], series,
                           "Masked-LM loss along the line between consecutive checkpoints",
                           x_title="t (0: earlier checkpoint, 1: later)",
                           y_title=LM_AXES[0].replace("loss", "masked-LM loss", 1))  # fmt: skip
        view.plot("masked-LM paths", spec, fallback="pretraining-mlm-paths.png")


def fuse(view) -> None:
    result = view.json("fuse.json")
    view.say(reading.fuse(result))


def finetune(view) -> None:
    import yaml

    zoo = view.folder / "zoo.yaml"
    models = (yaml.safe_load(zoo.read_text()) or {}).get("models") or [] if zoo.is_file() else []
    final = {}
    for log in view.matching("*/train_log.json"):
        entries = (view.json(log) or {}).get("log") or []
        final[log.split("/")[0]] = entries[-1].get("loss") if entries else None
    # The checkpoints of the runs this step trained (a zoo may hold earlier steps' runs too).
    mine = [m for m in models if (m.get("tags") or {}).get("run") in final] or models
    view.say(reading.finetune(len(mine), list(final.items()), zoo_size=len(models)))
    rows = []
    for model in mine:
        tags = dict(model.get("tags") or {})
        run, step = tags.pop("run", None), tags.pop("step", None)
        last = step is not None and step == tags.get("steps")
        tags.pop("base", None)
        described = ", ".join(f"{k}={v}" for k, v in tags.items())
        rows.append(
            [
                model.get("name"),
                model.get("path"),
                step,
                final.get(run) if last else None,
                described,
            ]
        )
    columns = ["model", "path", "step", "final training loss", "tags"]
    view.table("Checkpoints this step trained", columns, rows, "models.csv")


def run_distance(view) -> None:
    result = view.json("run-distance.json")
    view.say(reading.run_distance(result))
    spec = plots.lines(
        result["steps"], {"distance": result["distance"]}, "Distance between the runs per step",
        x_title="training step", y_title="Euclidean distance",
    )  # fmt: skip
    view.plot("distance", spec, fallback="run-distance.png")


def _square(n: int) -> int:
    """A heatmap's height in pixels for ``n`` rows."""
    return int(min(900, max(380, 140 + 22 * n)))


def _list(values: Any) -> list[float] | None:
    return None if values is None else values.tolist()


BUILDERS: dict[str, Callable[[Any], None]] = {
    "interpolate": interpolate,
    "demo": demo,
    "mean-path": mean_path,
    "curve": curve,
    "combine": combine,
    "grid": grid,
    "basins": basins,
    "trajectories": trajectories,
    "similarity": similarity,
    "region": region,
    "plane": plane,
    "knowledge": knowledge,
    "pretrain": pretraining,
    "fuse": fuse,
    "finetune": finetune,
    "run-distance": run_distance,
}
"""Each command's builder; a command without one gets the generic section."""
