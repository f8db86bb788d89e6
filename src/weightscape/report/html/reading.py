"""One or two sentences per step that read its result, written from the stored numbers.

Every function takes the numbers a step wrote (parsed JSON, arrays) and returns sentences; none
holds a result of its own, so a sentence always says what the files say. Names are returned as
they are: the template escapes them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

BARRIER_THRESHOLD = 0.1  # a loss barrier above this is "a barrier" (Juneja et al.'s scale)


def fmt(value: Any, digits: int = 3) -> str:
    """A number to ``digits`` significant digits (``n/a`` when missing or not finite)."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "n/a"
    if not math.isfinite(value):
        return "n/a"
    return f"{value:.{digits}g}"


def plural(n: int, word: str, many: str | None = None) -> str:
    """``3 pairs``, ``1 pair``."""
    return f"{n} {word if n == 1 else many or word + 's'}"


def walk(path: dict[str, Any], barrier_t: float | None = None) -> list[str]:
    """A walked path (``path.json``): its loss barrier, where, and the accuracy it loses."""
    anchors = " to ".join(str(a) for a in path.get("anchors", []))
    summary = path.get("summary") or {}
    where = f"Along the {path.get('path', 'linear')} path from {anchors} on {path.get('task')}"
    if "loss" not in summary:
        return [f"{where}, no barrier is reported: {summary.get('note', 'no summary')}."]
    loss, accuracy = summary["loss"], summary.get("accuracy", {})
    at = f" at t = {fmt(barrier_t)}" if barrier_t is not None else ""
    if is_language_model_walk(path):
        return _lm_walk(path, where, at)
    first = (
        f"{where}, the loss barrier is {fmt(loss.get('barrier_height'))}{at} and accuracy drops "
        f"by {fmt(accuracy.get('barrier_height'))} below its chord."
    )
    if "best" not in accuracy:
        return [first]
    return [
        first,
        f"The best accuracy, {fmt(accuracy['best'])}, is at t = {fmt(accuracy.get('best_t'))}.",
    ]


def is_language_model_walk(path: dict[str, Any]) -> bool:
    """Whether a walk's points were scored by a language model's loss on a text task (they
    carry ``perplexity``, a metric defined for text tasks only)."""
    points = path.get("points") or []
    return bool(points) and all("perplexity" in (p.get("metrics") or {}) for p in points)


def _lm_walk(path: dict[str, Any], where: str, at: str) -> list[str]:
    """A language model's walk: the barrier of its token-mean NLL, and its perplexity."""
    summary, points = path["summary"], path["points"]
    accuracy = summary.get("accuracy", {})
    ppl = [p["metrics"]["perplexity"] for p in points]
    worst = max(range(len(ppl)), key=lambda i: ppl[i] if _finite(ppl[i]) else -1.0)
    return [
        f"{where} (documents scored by the language model's own loss), the loss barrier is "
        f"{fmt(summary['loss'].get('barrier_height'))}{at}, in nats of the token-mean negative "
        "log likelihood, and token accuracy (targets predicted by the argmax) drops by "
        f"{fmt(accuracy.get('barrier_height'))} below its chord.",
        f"Perplexity (exp of that loss) is {fmt(ppl[0])} at t = {fmt(points[0]['t'])}, "
        f"{fmt(ppl[-1])} at t = {fmt(points[-1]['t'])}, and highest, {fmt(ppl[worst])}, at "
        f"t = {fmt(points[worst]['t'])}.",
    ]


def grid(
    names: Sequence[str],
    barrier: Sequence[Sequence[float]],
    accuracy: Sequence[float] | None,
    task: str | None,
    threshold: float = BARRIER_THRESHOLD,
) -> list[str]:
    """An N x N grid: how many pairs cross a loss barrier above ``threshold``, the largest, and
    the range of the models' own accuracy."""
    pairs = [
        (barrier[i][j], names[i], names[j])
        for i in range(len(names))
        for j in range(i + 1, len(names))
        if _finite(barrier[i][j])
    ]
    if not pairs:
        return [f"The grid of {plural(len(names), 'model')} holds no finite loss barrier."]
    above = sum(value > threshold for value, _, _ in pairs)
    value, a, b = max(pairs, key=lambda p: p[0])
    sentences = [
        f"{above} of {plural(len(pairs), 'pair')} have a loss barrier above {threshold:g}; "
        f"the largest is {fmt(value)} between {a} and {b}."
    ]
    if accuracy is not None and len(accuracy):
        low = min(range(len(names)), key=lambda i: accuracy[i])
        high = max(range(len(names)), key=lambda i: accuracy[i])
        if accuracy[low] == accuracy[high]:
            sentences.append(f"On {task}, every model has accuracy {fmt(accuracy[low])}.")
        else:
            sentences.append(
                f"On {task}, the models' accuracy ranges from {fmt(accuracy[low])} "
                f"({names[low]}) to {fmt(accuracy[high])} ({names[high]})."
            )
    return sentences


def basins(result: dict[str, Any]) -> list[str]:
    """Clusters of a grid (``basins.json``) and how their margin tracks each diagnostic."""
    models = result.get("models", [])
    sizes: dict[Any, int] = {}
    for model in models:
        sizes[model.get("cluster")] = sizes.get(model.get("cluster"), 0) + 1
    listed = ", ".join(str(sizes[c]) for c in sorted(sizes, key=str))
    sentences = [
        f"The {plural(len(models), 'model')} fall into {plural(len(sizes), 'cluster')} by "
        f"{result.get('matrix', 'the grid')} (sizes {listed})."
    ]
    margin = result.get("margin")
    correlations = (result.get("margin_correlations") or {}).get(margin) or result.get(
        "correlations", {}
    )
    if correlations:
        name = min(correlations, key=_diagnostic_first)
        stats = correlations[name]
        kind = "the diagnostic " if not name.startswith("id_") else ""
        r = stats.get("pearson_r")
        strong = isinstance(r, (int, float)) and abs(r) >= 0.5
        verdict = "Clusters agree with" if strong else "Clusters barely predict"
        sentences.append(
            f"{verdict} {kind}{name}: r = {fmt(r, 2)} between "
            f"each model's {margin or 'cluster'} margin and it (Spearman rho = "
            f"{fmt(stats.get('spearman_rho'), 2)}, n = {stats.get('n')})."
        )
    return sentences


def _diagnostic_first(name: str) -> tuple[int, str]:
    """Diagnostic accuracies first (what the basins are meant to predict), then in-domain
    accuracy, then the rest."""
    if not name.startswith("id_") and name.endswith("accuracy"):
        return (0, name)
    return (1 if name == "id_accuracy" else 2, name)


def trajectories(result: dict[str, Any]) -> list[str]:
    """Runs clustered at every saved step (``trajectory.json``)."""
    runs, steps = result.get("runs", []), result.get("steps", [])
    switches = result.get("switches", {})
    moved = sorted(run for run, n in switches.items() if n)
    tail = (
        f"{plural(len(moved), 'run')} change cluster: {', '.join(map(str, moved))}."
        if moved
        else "no run changes cluster."
    )
    return [
        f"{plural(len(runs), 'run')} clustered at {plural(len(steps), 'saved step')} "
        f"({', '.join(map(str, steps))}); {tail}"
    ]


def similarity(result: dict[str, Any]) -> list[str]:
    """Spectral clusters of task vectors scored against each tag (``similarity.json``)."""
    out = []
    for tag, clustering in (result.get("clusterings") or {}).items():
        out.append(
            f"Clusters of the {plural(len(result.get('names', [])), 'task vector')} agree with "
            f"the tag '{tag}' with clustering accuracy {fmt(clustering.get('accuracy'))} "
            f"(k = {clustering.get('k')})."
        )
    clusters = result.get("clusters")
    if not out and clusters:  # a zoo without tags: clusters of a given k, scored against nothing
        sizes = [list(clusters["labels"]).count(c) for c in range(clusters["k"])]
        out.append(
            f"The {plural(len(result.get('names', [])), 'task vector')} fall into "
            f"{clusters['k']} clusters of {', '.join(map(str, sizes))} models (no tags to score "
            "them against)."
        )
    return out[:2] or ["No clustering was scored."]


def region(result: dict[str, Any]) -> list[str]:
    """PB of the region comparisons (``regions.json``), per level."""
    rows = result.get("comparisons") or []
    if not rows:
        return ["No region comparison was measured (the PB section did not run)."]
    out = []
    for level in dict.fromkeys(r.get("level") for r in rows):
        values = [
            r["pb_in_ex"] for r in rows if r.get("level") == level and _finite(r.get("pb_in_ex"))
        ]
        if values:
            out.append(
                f"At the {level} level, PB(In, Ex) averages {fmt(sum(values) / len(values))} over "
                f"{plural(len(values), 'group')} (from {fmt(min(values))} to {fmt(max(values))}; "
                "1: every In model has a lower loss than every Ex model)."
            )
    return out[:2]


def plane(names: Sequence[str], loss: Sequence[Sequence[float]], xs, ys) -> list[str]:
    """The loss over the plane through three models: its range and lowest point."""
    cells = [
        (v, xs[i], ys[j]) for j, row in enumerate(loss) for i, v in enumerate(row) if _finite(v)
    ]
    if not cells:
        return ["The plane holds no finite loss."]
    low, x, y = min(cells)
    high = max(c[0] for c in cells)
    return [
        f"On the plane through {', '.join(map(str, names))}, the loss ranges from {fmt(low)} to "
        f"{fmt(high)}; its lowest point is at (u, v) = ({fmt(x)}, {fmt(y)})."
    ]


def mean_path(result: dict[str, Any]) -> list[str]:
    """The mean of several walks (``mean-path.json``)."""
    barrier = (result.get("summaries") or {}).get("loss", {}).get("barrier_height")
    pairs = len(result.get("pairs", []))
    if not isinstance(barrier, dict):
        return [f"The mean curve of {plural(pairs, 'pair')} is shown with its band."]
    return [
        f"Over {plural(pairs, 'pair')}, the loss barrier is {fmt(barrier.get('mean'))} +- "
        f"{fmt(barrier.get('std'))} (from {fmt(barrier.get('min'))} to {fmt(barrier.get('max'))})."
    ]


def curve(summary: dict[str, Any]) -> list[str]:
    """A fitted curve against the line (``curve-summary.json``)."""
    line, fitted = summary.get("line", {}), summary.get("curve", {})
    return [
        f"The fitted curve's loss barrier is {fmt(fitted.get('loss_barrier'))} against "
        f"{fmt(line.get('loss_barrier'))} on the line; its lowest accuracy is "
        f"{fmt(fitted.get('min_accuracy'))} against {fmt(line.get('min_accuracy'))}."
    ]


def combine(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Learned mixes against the best point on the line (``combine.json``)."""
    learned = [r for r in rows if str(r.get("method", "")).startswith("learned")]
    line = next((r for r in rows if str(r.get("method", "")).startswith("linear")), None)
    if not learned:
        return ["No learned mix was evaluated."]
    best = max(learned, key=lambda r: _value(r.get("test", {}).get("accuracy")))
    tail = ""
    if line is not None:
        tail = f", against {fmt(line.get('test', {}).get('accuracy'))} at the line's best t"
    return [
        f"The best learned mix, {best['method']}, reaches test accuracy "
        f"{fmt(best.get('test', {}).get('accuracy'))}{tail}."
    ]


def knowledge(result: dict[str, Any]) -> list[str]:
    """Forgotten source and learned target examples along the path (``knowledge.json``)."""
    steps = result.get("steps") or []
    if not steps:
        return ["No step of the path was measured."]
    last = steps[-1]
    return [
        f"From {result.get('source')} to {result.get('target')}, by t = {fmt(last.get('t'))} "
        f"{plural(int(last.get('forgotten') or 0), 'source example')} are forgotten and "
        f"{plural(int(last.get('learned') or 0), 'target example')} learned; source accuracy "
        f"ends at {fmt(last.get('source_accuracy'))}, target accuracy at "
        f"{fmt(last.get('target_accuracy'))}."
    ]


def pretraining(result: dict[str, Any]) -> list[str]:
    """The barrier between finetuned copies at each pretraining checkpoint."""
    checkpoints = result.get("checkpoints") or []
    if not checkpoints:
        return ["No checkpoint was studied."]
    first, last = checkpoints[0], checkpoints[-1]

    def barrier(c: dict[str, Any]) -> str:
        return fmt((c.get("same_task") or {}).get("loss_barrier"))

    sentences = [
        f"The loss barrier between two finetuned copies is {barrier(first)} from the checkpoint "
        f"at pretraining step {first.get('step')} and {barrier(last)} from step "
        f"{last.get('step')} ({plural(len(checkpoints), 'checkpoint')} studied)."
    ]
    lines = result.get("mlm_paths") or []
    if lines:
        worst = max(lines, key=lambda r: _value(r.get("loss_barrier")))
        sentences.append(
            "Along the line between consecutive pretraining checkpoints, the masked-LM loss "
            "(token-mean negative log likelihood on a fixed mask) goes from "
            f"{fmt(lines[0]['loss'][0])} (step {lines[0]['from_step']}) to "
            f"{fmt(lines[-1]['loss'][-1])} (step {lines[-1]['to_step']}); its largest barrier "
            f"is {fmt(worst.get('loss_barrier'))}, between steps {worst['from_step']} and "
            f"{worst['to_step']}."
        )
    return sentences


def fuse(result: dict[str, Any]) -> list[str]:
    """Accuracy gained by starting from the centroid instead of the base (``fuse.json``)."""
    out = []
    gains = result.get("gains") or []
    for regime in dict.fromkeys(g.get("regime") for g in gains):
        values = [g["gain"] for g in gains if g.get("regime") == regime and _finite(g.get("gain"))]
        if values:
            out.append(
                f"In the {regime} regime, starting from the centroid changes test accuracy by "
                f"{sum(values) / len(values):+.3g} on average over "
                f"{plural(len(values), 'target')} (from {min(values):+.3g} to "
                f"{max(values):+.3g})."
            )
    return out[:2] or ["No target was trained."]


def finetune(
    models: int, runs: Sequence[tuple[str, float | None]], zoo_size: int | None = None
) -> list[str]:
    """The checkpoints a finetune step saved, the runs' final training loss, and the zoo's size
    when the zoo holds more (several steps into one zoo)."""
    losses = [loss for _, loss in runs if _finite(loss)]
    sentence = (
        f"This step trained {plural(len(runs), 'run')}, saving {plural(models, 'checkpoint')}"
    )
    if zoo_size is not None and zoo_size > models:
        sentence += f"; the zoo now holds {zoo_size}"
    sentence += "."
    if not losses:
        return [sentence]
    return [
        sentence,
        f"The final training loss ranges from {fmt(min(losses))} to {fmt(max(losses))}.",
    ]


def run_distance(result: dict[str, Any]) -> list[str]:
    """The distance between two runs over their saved steps (``run-distance.json``)."""
    steps, distance = result.get("steps") or [], result.get("distance") or []
    if not steps:
        return ["No common step was compared."]
    a, b = [*result.get("runs", []), "a", "b"][:2]
    return [
        f"{a} and {b} are {fmt(distance[0])} apart at step {steps[0]} and {fmt(distance[-1])} "
        f"at step {steps[-1]} (cosine {fmt((result.get('cosine') or [None])[-1])})."
    ]


def generic(command: str, figures: int, tables: int) -> list[str]:
    """The sentence of a command the report has no reading for."""
    return [
        f"This {command} step wrote {plural(figures, 'figure')} and {plural(tables, 'table')}, "
        "shown below as they are."
    ]


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _value(value: Any) -> float:
    return value if _finite(value) else -math.inf
