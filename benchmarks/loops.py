"""weightscape against the loops users write today: every pair of a zoo, interpolated and evaluated.

Four contenders do the same work, one after another in one run (API, CLI, Juneja, Qin): the
linear path between every pair (i < j) of a zoo of finetuned classifiers, ``--points`` evenly
spaced t per path (both ends included), each point's mean cross-entropy and accuracy on the same
examples: ``--subset`` of the task's seeded ``--split`` (seeds 0), drawn here as the CLI's
``--split``/``--subset`` draw them (``--task`` is a built-in name or a table file).

1. Juneja-style loop (the structure of Juneja et al. 2023's ``interpolate_1d.py``): per pair,
   load both endpoint models with ``from_pretrained`` (the first twice: its weights and the model
   that is written into) and measure their Euclidean distance; then for each t a new state dict
   ``(1 - t) a + t b`` and ``load_state_dict``; t = 0 and t = 1 are evaluated for every pair (no
   reuse). Evaluation in fixed batches of ``--loop-batch-size`` (32) in the examples' order,
   each batch tokenised when evaluated with ``padding=True`` (to its longest input),
   ``truncation=True``, ``max_length``. (Their released script defaults to one batch of 512,
   padded to the longest of all.)
2. Qin-style loop (Qin et al. 2022): for each pair and each t, both models reloaded from disk,
   the interpolated parameters written into the first, evaluated as in 1.
3. weightscape API: ``connectivity_grid`` on an ``EngineSpec`` with a fresh results store,
   engine build and anchor hashing included (a fresh, empty digest cache).
4. weightscape CLI: ``python -m weightscape.cli.main grid`` in a fresh process (start-up, imports
   and hashing with an empty digest cache included; it also writes its report), wall clock.

Before any time is printed, every contender's loss per (pair, t) is checked against the API's
within ``--tolerance`` (1e-5) and its accuracy for equality. The in-process contenders run with
``torch.set_num_threads(--threads)`` (default: this machine's cores); the CLI keeps its default.
Before the first clock starts, model files are read once (no contender pays a cold disk) and
one model is loaded and run (no in-process contender pays a lazy import or first pass for
another); the CLI pays all of its own start-up.

The zoo is ``--zoo ZOO.yaml`` (a weightscape zoo manifest of finetuned classifier folders whose
``id2label`` names the task's labels in the task's order), or ``--make-zoo N``: N MiniLM
classifiers finetuned on the task by ``weightscape finetune --zoo-file`` (seeds 0..N-1 for head
and data order, ``--finetune-steps`` steps) into ``--zoo-dir``; finished runs there are reused.

Run (15-20 minutes of two quiet cores for 4 models, 11 points, 512 examples; ``--make-zoo``
finetunes first, a few minutes per model): ``.venv/bin/python benchmarks/loops.py --make-zoo 4``
or ``... --zoo ZOO.yaml [--models K]`` (the manifest's first K models). Check that the script
works in half a minute: ``... --zoo TINY.yaml --task FILE.csv --quick`` (at most 3 models, 3
points, 32 examples: start-up dominates, so its ratios mean nothing).
"""

from __future__ import annotations

import argparse
import importlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import numpy as np

PYTHON = sys.executable
QUICK = {"models": 3, "points": 3, "subset": 32}
FULL = {"models": None, "points": 11, "subset": 512}
TARGET = 8.0  # the bar: the CLI at least this many times faster than each loop


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--zoo", type=Path, help="zoo manifest (YAML/JSON) of classifier folders")
    source.add_argument("--make-zoo", type=int, metavar="N", help="finetune N MiniLM classifiers")
    parser.add_argument(
        "--zoo-dir",
        type=Path,
        default=Path("weightscape-out/loops-zoo"),
        help="where --make-zoo trains (finished runs are reused)",
    )
    parser.add_argument("--finetune-steps", type=int, default=60, help="--make-zoo steps per model")
    parser.add_argument("--models", type=int, help="use the zoo's first K models (default: all)")
    parser.add_argument("--points", type=int, help="points per path (default: 11)")
    parser.add_argument("--subset", type=int, help="examples (default: 512)")
    parser.add_argument(
        "--task", default="rotten_tomatoes", help="built-in task name or table file (CSV, ...)"
    )
    parser.add_argument(
        "--split",
        default="test",
        choices=["train", "validation", "test", "all"],
        help="seeded split",
    )
    parser.add_argument("--max-length", type=int, default=128, help="truncate inputs to N tokens")
    parser.add_argument("--loop-batch-size", type=int, default=32, help="the loops' fixed batches")
    parser.add_argument(
        "--threads",
        type=int,
        default=len(os.sched_getaffinity(0)),
        help="torch threads of the in-process contenders (default: this machine's cores)",
    )
    parser.add_argument("--tolerance", type=float, default=1e-5, help="largest loss difference")
    parser.add_argument("--quick", action="store_true", help="3 models, 3 points, 32 examples")
    args = parser.parse_args()
    for key, value in (QUICK if args.quick else FULL).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def make_zoo(args: argparse.Namespace) -> Path:
    """Finetune ``args.make_zoo`` MiniLM classifiers through the CLI; their zoo manifest."""
    import yaml

    runs = [{"name": f"rt-{i}", "head_seed": i, "data_seed": i} for i in range(args.make_zoo)]
    sweep = {
        "name": "rt",
        "task": {"name": args.task, "split": "train", "split_seed": 0},
        "base": {"base": "minilm", "steps": args.finetune_steps, "lr": 1.0e-4, "batch_size": 32},
        "runs": runs,
    }
    args.zoo_dir.mkdir(parents=True, exist_ok=True)
    zoo_file = args.zoo_dir / "runs.yaml"
    zoo_file.write_text(yaml.safe_dump(sweep, sort_keys=False))
    command = [PYTHON, "-m", "weightscape.cli.main", "finetune", "--zoo-file", str(zoo_file)]
    command += ["--out", str(args.zoo_dir), "--no-progress"]
    print(f"finetuning {args.make_zoo} MiniLM classifiers into {args.zoo_dir} ...", flush=True)
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return args.zoo_dir / "zoo.yaml"


def load_examples(args: argparse.Namespace):
    """The examples every contender evaluates, selected as the CLI's --split/--subset do."""
    from weightscape.data import load_task, split, subset

    task = load_task(args.task)
    if args.split != "all":
        task = split(task, seed=0)[args.split]
    return subset(task, args.subset, seed=0)


def check_zoo(checkpoints, task) -> None:
    """Every model a folder whose output columns are the task's labels, in the task's order:
    the plain loops read column k as class k, as weightscape does after matching by name."""
    from transformers import AutoConfig

    for checkpoint in checkpoints:
        if not checkpoint.path.is_dir():
            sys.exit(f"'{checkpoint.path}' ({checkpoint.name}) is no model folder.")
        config = AutoConfig.from_pretrained(str(checkpoint.path), trust_remote_code=False)
        names = [str(config.id2label[k]) for k in range(config.num_labels)]
        if names != list(task.label_names):
            sys.exit(
                f"{checkpoint.name}'s id2label names {names}, the task {list(task.label_names)}: "
                "the plain loops need the task's labels in the task's order."
            )


def warm_up(checkpoints, tokenizer, task, args) -> None:
    """Read every model file once, so no contender pays a cold disk, and run what loads lazily
    (the model classes, the first forward pass, the metrics' imports), so no in-process
    contender pays another's one-off start-up: the CLI is the one that pays its own."""
    from weightscape.metrics.classification import classification_metrics

    for checkpoint in checkpoints:
        for f in checkpoint.path.iterdir():
            if f.is_file():
                f.read_bytes()
    FixedBatchEval(tokenizer, task, args.loop_batch_size, args.max_length)(
        load_model(checkpoints[0].path)
    )
    classification_metrics(np.array([0, 1]), np.array([0, 0]), np.array([0.1, 0.2]), 2)


# ---- the loops users write ----------------------------------------------------------------


def load_model(path: Path):
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(str(path), trust_remote_code=False)
    return model.eval()


class FixedBatchEval:
    """Mean cross-entropy and accuracy in fixed batches of the examples in their order, each
    batch tokenised when it is evaluated, padded to its longest input."""

    def __init__(self, tokenizer, task, batch_size: int, max_length: int) -> None:
        self.tokenizer, self.batch_size, self.max_length = tokenizer, batch_size, max_length
        self.text_a, self.text_b = list(task.text_a), task.text_b and list(task.text_b)
        self.labels = np.array(task.labels, dtype=np.int64)  # writable, for torch
        self.forward_passes = 0

    def __call__(self, model) -> tuple[float, float]:
        import torch
        import torch.nn.functional as F

        loss_sum, correct, n = 0.0, 0, len(self.labels)
        with torch.no_grad():
            for start in range(0, n, self.batch_size):
                end = min(start + self.batch_size, n)
                pair = (self.text_b[start:end],) if self.text_b else ()
                inputs = self.tokenizer(
                    self.text_a[start:end],
                    *pair,
                    padding=True,
                    truncation=True,
                    max_length=self.max_length,
                    return_tensors="pt",
                )
                logits = model(**inputs).logits.float()
                labels = torch.from_numpy(self.labels[start:end])
                loss_sum += F.cross_entropy(logits, labels, reduction="sum").item()
                correct += int((logits.argmax(-1) == labels).sum())
                self.forward_passes += 1
        return loss_sum / n, correct / n


def juneja_loop(paths, pairs, ts, evaluate) -> np.ndarray:
    """(pairs, len(ts), 2) loss and accuracy: a new state dict and load_state_dict per point."""
    import torch

    out = np.empty((len(pairs), len(ts), 2))
    for p, (i, j) in enumerate(pairs):
        a = load_model(paths[i]).state_dict()
        model = load_model(paths[i])
        b = load_model(paths[j]).state_dict()
        # Their script measures each pair's length too (weightscape's grid has it: euclidean).
        sum(float(torch.sum((a[name] - b[name]) ** 2)) for name in a)
        for k, t in enumerate(ts):
            mixed = {
                name: (1 - t) * a[name] + t * b[name] if a[name].is_floating_point() else a[name]
                for name in a
            }
            model.load_state_dict(mixed)
            out[p, k] = evaluate(model)
    return out


def qin_loop(paths, pairs, ts, evaluate) -> np.ndarray:
    """(pairs, len(ts), 2) loss and accuracy: both models reloaded from disk for every t."""
    import torch

    out = np.empty((len(pairs), len(ts), 2))
    for p, (i, j) in enumerate(pairs):
        for k, t in enumerate(ts):
            model, other = load_model(paths[i]), load_model(paths[j])
            theirs = other.state_dict()
            with torch.no_grad():
                for name, tensor in model.state_dict().items():
                    if tensor.is_floating_point():
                        tensor.copy_((1 - t) * tensor + t * theirs[name])
            out[p, k] = evaluate(model)
    return out


# ---- weightscape --------------------------------------------------------------------------


def api_grid(zoo_path: Path, names: list[str], task, args, scratch: Path):
    """(pairs, points, 2) loss and accuracy from ``connectivity_grid``, and its stats."""
    from weightscape.analyses.connectivity import connectivity_grid
    from weightscape.evaluation.engine import EngineSpec
    from weightscape.evaluation.evaluator import EvalSettings
    from weightscape.models.zoo import Zoo
    from weightscape.runtime.store import ResultStore

    zoo = Zoo.from_manifest(zoo_path)
    spec = EngineSpec(
        tuple(zoo[name] for name in names),
        task,
        settings=EvalSettings(max_length=args.max_length),
        device="cpu",
        tokenizer=zoo.tokenizer,
    )
    store = ResultStore(scratch / "api.sqlite")
    grid = connectivity_grid(spec, points=args.points, store=store)
    return grid_curves(grid.curves, len(names)), grid.stats


def cli_grid(zoo_path: Path, args, scratch: Path):
    """The CLI's curves and stats; its manifest names exactly the benchmarked models."""
    import json

    out = scratch / "cli-out"
    command = [PYTHON, "-m", "weightscape.cli.main", "grid", "--zoo", str(zoo_path)]
    command += ["--task", args.task, "--split", args.split, "--subset", str(args.subset)]
    command += ["--points", str(args.points), "--max-length", str(args.max_length)]
    command += ["--out", str(out), "--device", "cpu", "--no-progress"]
    env = {**os.environ, "WEIGHTSCAPE_CACHE": str(scratch / "cli-cache")}  # empty: hashes all
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"the CLI failed ({done.returncode}):\n{done.stderr}")
    with np.load(out / "grid.npz") as data:
        curves = {"loss": data["curve_loss"], "accuracy": data["curve_accuracy"]}
    stats = json.loads((out / "grid.json").read_text())["stats"]
    return grid_curves(curves, curves["loss"].shape[0]), stats


def grid_curves(curves: dict, n: int) -> np.ndarray:
    """(pairs, points, 2): each upper-triangle pair's curve from i (t = 0) to j (t = 1)."""
    pairs = upper_pairs(n)
    return np.stack([[curves[m][i, j] for i, j in pairs] for m in ("loss", "accuracy")], -1)


def upper_pairs(n: int) -> list[tuple[int, int]]:
    return [(i, j) for i in range(n) for j in range(i + 1, n)]


def cli_manifest(zoo_path: Path, names: list[str], scratch: Path) -> Path:
    """The manifest the CLI reads: the zoo's own when every model takes part, else a copy
    naming the first models only (paths and relative ``base`` tags made absolute)."""
    import yaml

    raw = yaml.safe_load(zoo_path.read_text())
    if [m["name"] for m in raw["models"]] == names:
        return zoo_path
    root = zoo_path.parent

    def absolute(p: str) -> str:
        return str((root / p).expanduser().resolve())

    models = []
    for m in (m for m in raw["models"] if m["name"] in names):
        m = {**m, "path": absolute(m["path"])}
        if m.get("config"):
            m["config"] = absolute(m["config"])
        base = m.get("tags", {}).get("base")
        if isinstance(base, str) and (root / base).exists():
            m["tags"] = {**m["tags"], "base": absolute(base)}
        models.append(m)
    kept = {k: absolute(raw[k]) for k in ("base", "config", "tokenizer") if raw.get(k)}
    path = scratch / "zoo.yaml"
    path.write_text(yaml.safe_dump({**kept, "models": models}, sort_keys=False))
    return path


# ---- the run ------------------------------------------------------------------------------


def timed(fn, *args):
    start = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - start


def check_same(label: str, got: np.ndarray, reference: np.ndarray, tolerance: float) -> str:
    """Stop unless the losses agree within ``tolerance`` and the accuracies exactly."""
    loss_diff = float(np.abs(got[..., 0] - reference[..., 0]).max())
    acc_diff = float(np.abs(got[..., 1] - reference[..., 1]).max())
    line = f"{label:18s} max |loss - API| {loss_diff:.2e}   max |accuracy - API| {acc_diff:.2e}"
    if not loss_diff <= tolerance or acc_diff > 1e-12:
        sys.exit(f"NOT IDENTICAL: {line} (tolerance {tolerance:g} on the loss, 0 on accuracy)")
    return line


@dataclass
class Bench:
    """What every contender gets: the models, the examples, the pairs and the t grid."""

    args: argparse.Namespace
    zoo_path: Path
    names: list[str]
    paths: list[Path]
    task: Any
    tokenizer: Any
    scratch: Path

    @property
    def pairs(self) -> list[tuple[int, int]]:
        return upper_pairs(len(self.paths))

    @property
    def ts(self) -> np.ndarray:
        return np.linspace(0.0, 1.0, self.args.points)  # as the loops' authors write it


def prepare(args: argparse.Namespace, scratch: Path) -> Bench:
    """The zoo, the examples and the tokenizer, checked and warmed up; no clock runs here."""
    from transformers import AutoTokenizer

    from weightscape.evaluation.engine import tokenizer_dir
    from weightscape.models.zoo import Zoo

    zoo_path = Path(make_zoo(args) if args.make_zoo else args.zoo)
    zoo = Zoo.from_manifest(zoo_path)
    checkpoints = list(zoo)[: args.models]
    task = load_examples(args)
    check_zoo(checkpoints, task)
    tokenizer = AutoTokenizer.from_pretrained(
        str(zoo.tokenizer or tokenizer_dir(checkpoints[0])), trust_remote_code=False
    )
    warm_up(checkpoints, tokenizer, task, args)
    names = [c.name for c in checkpoints]
    paths = [c.path for c in checkpoints]
    return Bench(args, zoo_path, names, paths, task, tokenizer, scratch)


def run_contenders(bench: Bench) -> list[tuple[str, np.ndarray, float, int, int]]:
    """Each contender's curves, seconds, points and forward passes, the API's first."""
    args = bench.args
    loop_points = len(bench.pairs) * args.points
    cli_zoo = cli_manifest(bench.zoo_path, bench.names, bench.scratch)
    (api, api_stats), api_s = timed(
        api_grid, bench.zoo_path, bench.names, bench.task, args, bench.scratch
    )
    (cli, cli_stats), cli_s = timed(cli_grid, cli_zoo, args, bench.scratch)
    rows = [
        ("weightscape API", api, api_s, api_stats["computed_points"], api_stats["forward_passes"]),
        ("weightscape CLI", cli, cli_s, cli_stats["computed_points"], cli_stats["forward_passes"]),
    ]
    for label, loop in (("Juneja-style loop", juneja_loop), ("Qin-style loop", qin_loop)):
        evaluate = FixedBatchEval(
            bench.tokenizer, bench.task, args.loop_batch_size, args.max_length
        )
        curves, seconds = timed(loop, bench.paths, bench.pairs, bench.ts, evaluate)
        rows.append((label, curves, seconds, loop_points, evaluate.forward_passes))
    return rows


def report(rows, tolerance: float) -> None:
    """Check every contender against the API, then the times side by side."""
    api, api_s = rows[0][1], rows[0][2]
    cli_s = rows[1][2]
    for label, curves, *_ in rows[1:]:
        print(check_same(label, curves, api, tolerance))
    print(
        f"\n{'contender':18s} {'seconds':>8s} {'points':>7s} {'passes':>7s} "
        f"{'/ CLI':>7s} {'/ API':>7s}"
    )
    for label, _, seconds, points, passes in (rows[1], rows[0], *rows[2:]):
        print(
            f"{label:18s} {seconds:8.2f} {points:7d} {passes!s:>7s} "
            f"{seconds / cli_s:6.2f}x {seconds / api_s:6.2f}x"
        )
    faster_loop = min(row[2] for row in rows[2:])
    verdict = "met" if faster_loop / cli_s >= TARGET else "NOT met"
    print(
        f"\n(/ CLI, / API: the contender's seconds over theirs.) The CLI is "
        f"{faster_loop / cli_s:.2f}x faster than the faster loop (target >= {TARGET:g}x: "
        f"{verdict}); load average {os.getloadavg()[0]:.2f}"
    )


def main() -> None:
    args = parse_args()
    import torch
    from transformers import logging

    # Imported before any clock starts, as the loops' transformers is: the CLI alone pays
    # imports (start-up), the API its engine build, hashing and grid.
    for module in ("weightscape.analyses.connectivity", "weightscape.runtime.store"):
        importlib.import_module(module)
    logging.set_verbosity_error()
    logging.disable_progress_bar()  # transformers 5 draws one per from_pretrained
    torch.set_num_threads(args.threads)
    scratch = Path(tempfile.mkdtemp(prefix="ws-loops-"))
    # This process's digest cache starts empty, so the API pays the anchors' hashing as a first
    # run on a zoo does (the CLI gets an empty one of its own).
    os.environ["WEIGHTSCAPE_CACHE"] = str(scratch / "api-cache")
    try:
        bench = prepare(args, scratch)
        print(
            f"{len(bench.paths)} models ({len(bench.pairs)} pairs) x {args.points} points on "
            f"{bench.task.name} [{len(bench.task)} examples], max length {args.max_length}; loops "
            f"in fixed batches of {args.loop_batch_size}; torch threads {args.threads} in "
            f"process, the CLI's default; load average {os.getloadavg()[0]:.2f}",
            flush=True,
        )
        report(run_contenders(bench), args.tolerance)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
