"""Option groups shared by subcommands, and their translation into API objects."""

from __future__ import annotations

import argparse
from pathlib import Path


def _values(text: str, kind: type, what: str) -> tuple:
    try:
        values = tuple(kind(x) for x in text.split(",") if x.strip())
    except ValueError:
        values = ()
    if not values:
        raise argparse.ArgumentTypeError(f"expected comma-separated {what}, got '{text}'")
    return values


def int_list(text: str) -> tuple[int, ...]:
    """``1,2,3`` -> (1, 2, 3): an argparse type for comma-separated integers."""
    return _values(text, int, "integers")


def float_list(text: str) -> tuple[float, ...]:
    """``0,0.5,1`` -> (0.0, 0.5, 1.0): an argparse type for comma-separated numbers."""
    return _values(text, float, "numbers")


def name_list(text: str) -> tuple[str, ...]:
    """``a, b`` -> ("a", "b"): an argparse type for comma-separated names."""
    return _values(text, str.strip, "names")


def add_anchor_options(
    parser: argparse.ArgumentParser, nargs: int | str, help: str, tokenizer: bool = True
) -> None:
    """The checkpoints a command combines (paths, or names in --zoo), and how to read them."""
    parser.add_argument("anchors", nargs=nargs, help=help)
    parser.add_argument("--zoo", type=Path, default=None, help="zoo manifest to resolve names")
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help="reference config folder for bare .safetensors/.bin files",
    )
    if tokenizer:
        parser.add_argument("--tokenizer", type=Path, default=None, help="tokenizer folder")


def add_task_options(parser: argparse.ArgumentParser, default_split: str) -> None:
    """--task and how to split and subset it."""
    group = parser.add_argument_group("data")
    group.add_argument(
        "--task",
        default="rotten_tomatoes",
        help="built-in dataset name or a CSV/TSV/JSONL/parquet file or a saved "
        "datasets folder (default: rotten_tomatoes)",
    )
    group.add_argument(
        "--text-columns",
        default=None,
        help="input column(s) of a file task, comma-separated (one or a pair)",
    )
    group.add_argument(
        "--label-column", default=None, help="label column of a file task (default: label)"
    )
    group.add_argument(
        "--split",
        default=default_split,
        choices=("train", "validation", "test", "all"),
        help=f"which seeded 8:1:1 split to use (default: {default_split})",
    )
    group.add_argument("--split-seed", type=int, default=0, help="seed of the 8:1:1 split")
    group.add_argument(
        "--subset",
        type=int,
        default=None,
        help="evaluate on this many random examples of the split (e.g. 512)",
    )
    group.add_argument("--subset-seed", type=int, default=0, help="seed of the subset")


def task_from_args(args: argparse.Namespace):
    """Load, split and subset the task the options describe."""
    from weightscape.data import load_task, split, subset

    task = load_task(args.task, **_table_options(args))
    if args.split != "all":
        task = split(task, seed=args.split_seed)[args.split]
    if args.subset is not None:
        task = subset(task, args.subset, seed=args.subset_seed)
    return task


def _table_options(args: argparse.Namespace) -> dict:
    options = {}
    if args.label_column:
        options["label_column"] = args.label_column
    if args.text_columns:
        options["text_columns"] = tuple(c.strip() for c in args.text_columns.split(","))
    return options


def add_probe_options(parser: argparse.ArgumentParser) -> None:
    """The generalised loss (Gueta et al. 2023) in place of the models' own heads."""
    group = parser.add_argument_group("generalised loss (linear probe)")
    group.add_argument(
        "--probe-train",
        type=int,
        default=None,
        help="score every point by a fresh linear head fitted on N examples of the task's train "
        "split over the point's frozen encoder (compares models of different datasets or label "
        "sets); off by default",
    )
    group.add_argument("--probe-c", type=float, default=1.0, help="its inverse L2 strength")


def probe_from_args(args: argparse.Namespace):
    """The Probe the options describe, or None when --probe-train is not given."""
    if args.probe_train is None:
        return None
    from weightscape.data import load_task, split, subset
    from weightscape.errors import WeightscapeError
    from weightscape.evaluation.probe import Probe, ProbeSettings

    if args.probe_train < 1:
        raise WeightscapeError(f"--probe-train must be an int >= 1. Got {args.probe_train}.")
    if args.split in ("train", "all"):
        raise WeightscapeError(
            f"--probe-train fits the probe on the train split, so evaluate on another split "
            f"(--split validation or test), not '{args.split}'."
        )
    train = split(load_task(args.task, **_table_options(args)), seed=args.split_seed)["train"]
    train = subset(train, args.probe_train, seed=args.subset_seed)
    return Probe(train, ProbeSettings(c=args.probe_c))


def add_eval_options(parser: argparse.ArgumentParser) -> None:
    """Evaluation settings and where results go."""
    group = parser.add_argument_group("evaluation")
    group.add_argument("--batch-size", type=int, default=64, help="evaluation batch size")
    group.add_argument("--max-length", type=int, default=128, help="truncate inputs to N tokens")
    group.add_argument("--device", default="auto", help="auto (GPU if present), cpu, cuda, cuda:N")
    group.add_argument(
        "--label-map",
        default=None,
        help="map model classes to the task's, e.g. mnli_to_hans (3-class NLI "
        "models on 2-class diagnostics)",
    )
    group.add_argument(
        "--model-labels",
        default=None,
        type=_names,
        metavar="A,B,...",
        help="the class each output column of the model means, in column order, for checkpoints "
        "whose config.json names no labels (LABEL_0, ...); default: read from config.json's "
        "id2label and matched to the task's labels by name",
    )
    group.add_argument(
        "--store",
        type=Path,
        default=None,
        help="results store (SQLite); default: OUT/results.sqlite",
    )
    group.add_argument("--no-progress", action="store_true", help="hide progress bars")


def settings_from_args(args: argparse.Namespace):
    """The EvalSettings the options describe."""
    from weightscape.evaluation.evaluator import EvalSettings

    return EvalSettings(
        batch_size=args.batch_size,
        max_length=args.max_length,
        label_map=args.label_map,
        model_labels=args.model_labels,
    )


def _names(text: str) -> tuple[str, ...]:
    """A comma-separated list of names."""
    return tuple(name.strip() for name in text.split(","))


def add_space_options(parser: argparse.ArgumentParser, default: str = "all") -> None:
    """Which tensors are mixed."""
    group = parser.add_argument_group("parameter space")
    group.add_argument(
        "--space",
        default=default,
        help="all, no-head, biases or tuned (LoRA/adapter tensors and the head); "
        f"default: {default}",
    )
    group.add_argument(
        "--include",
        action="append",
        default=[],
        help="only mix tensors whose name matches this regex (repeatable)",
    )
    group.add_argument(
        "--exclude",
        action="append",
        default=[],
        help="never mix tensors whose name matches this regex (repeatable)",
    )


def space_from_args(args: argparse.Namespace):
    """The ParameterSpace the options describe."""
    from weightscape.models.space import ParameterSpace

    return ParameterSpace(
        preset=args.space, include=tuple(args.include), exclude=tuple(args.exclude)
    )


def checkpoints_from_args(args: argparse.Namespace):
    """The checkpoints named by ``args.anchors``: paths, or names in ``--zoo`` (a path that
    exists wins). Bare weight files take ``--config``; the zoo's tokenizer fills ``--tokenizer``
    when that is not given."""
    from weightscape.models.checkpoint import Checkpoint
    from weightscape.models.zoo import Zoo

    zoo = Zoo.from_manifest(args.zoo) if getattr(args, "zoo", None) else None
    if zoo is not None and getattr(args, "tokenizer", None) is None and zoo.tokenizer:
        args.tokenizer = zoo.tokenizer
    config = getattr(args, "config", None)
    return [
        zoo[a]
        if zoo is not None and not Path(a).exists()
        else Checkpoint.from_path(a, config=config)
        for a in args.anchors
    ]
