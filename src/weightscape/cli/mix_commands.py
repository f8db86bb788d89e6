"""``weightscape curve`` and ``weightscape combine``: better models between two minima."""

from __future__ import annotations

import argparse
from pathlib import Path

from weightscape.cli.options import (
    add_anchor_options,
    add_eval_options,
    add_space_options,
    checkpoints_from_args,
    space_from_args,
)


def _add_pair_options(p: argparse.ArgumentParser) -> None:
    add_anchor_options(p, 2, "the two checkpoints (paths, or names in --zoo)", tokenizer=False)
    p.add_argument("--task", default="rotten_tomatoes", help="built-in task or table file")
    p.add_argument("--split-seed", type=int, default=0, help="seed of the 8:1:1 split")
    p.add_argument(
        "--train-examples",
        type=int,
        default=None,
        help="train on this many random training examples (default: all)",
    )
    p.add_argument(
        "--subset",
        type=int,
        default=512,
        help="evaluate on this many random examples of each split",
    )
    p.add_argument("--points", type=int, default=11, help="points per walked path")
    p.add_argument("--steps", type=int, default=200, help="optimisation steps")
    p.add_argument("--batch-size-train", type=int, default=32, help="training batch size")
    p.add_argument("--seed", type=int, default=0, help="seed of data order and dropout")
    add_space_options(p)
    add_eval_options(p)


def _splits(args: argparse.Namespace):
    from weightscape.data import load_task, split, subset

    parts = split(load_task(args.task), seed=args.split_seed)
    train = parts["train"]
    if args.train_examples:
        train = subset(train, args.train_examples, seed=args.seed)
    return (
        train,
        subset(parts["validation"], args.subset, seed=0),
        subset(parts["test"], args.subset, seed=0),
    )


def add_curve(sub) -> None:
    """``weightscape curve``: fit a Bezier curve / polygonal chain between two minima."""
    p = sub.add_parser(
        "curve", help="fit a low-loss curve between two checkpoints and compare it with the line"
    )
    _add_pair_options(p)
    p.add_argument("--path", default="bezier", choices=("bezier", "polychain"))
    p.add_argument("--controls", type=int, default=1, help="control points (bends)")
    p.add_argument("--lr", type=float, default=1e-4, help="learning rate of the controls")
    p.add_argument("--eval-every", type=int, default=50, help="dev evaluation every N steps")
    p.add_argument("--out", type=Path, default=Path("weightscape-out/curve"))
    p.set_defaults(run=run_curve)


def run_curve(args: argparse.Namespace) -> None:
    from weightscape.cli.options import settings_from_args
    from weightscape.report.mix_report import run_curve_study
    from weightscape.runtime.store import ResultStore
    from weightscape.training.curve_fit import CurveConfig

    a, b = checkpoints_from_args(args)
    train, dev, _ = _splits(args)
    config = CurveConfig(
        path=args.path,
        controls=args.controls,
        steps=args.steps,
        batch_size=args.batch_size_train,
        lr=args.lr,
        seed=args.seed,
        eval_every=args.eval_every,
        max_length=args.max_length,
    )
    summary = run_curve_study(
        a,
        b,
        train,
        dev,
        args.out,
        config=config,
        points=args.points,
        space=space_from_args(args),
        settings=settings_from_args(args),
        device=args.device,
        store=ResultStore(args.store or args.out / "results.sqlite"),
        progress=not args.no_progress,
    )
    for name in ("line", "curve"):
        s = summary[name]
        print(
            f"{name:>5}: highest loss {s['max_loss']:.4f}, lowest accuracy "
            f"{s['min_accuracy']:.4f}, loss barrier {s['loss_barrier']:.4f}"
        )
    print(f"wrote {args.out}: curve-vs-line.png, path-line.*, path-curve.*, curve/control-*")


def add_combine(sub) -> None:
    """``weightscape combine``: learned per-group mixes against the best linear point."""
    p = sub.add_parser(
        "combine",
        help="learn per-layer/module/matrix mixes of two checkpoints "
        "and compare them with the best point on the line",
    )
    _add_pair_options(p)
    p.add_argument(
        "--group-by",
        default="layer,module,matrix",
        help="groupings to learn, comma-separated (layer, module, matrix)",
    )
    p.add_argument("--lr", type=float, default=0.05, help="learning rate of the mix logits")
    p.add_argument("--out", type=Path, default=Path("weightscape-out/combine"))
    p.set_defaults(run=run_combine)


def run_combine(args: argparse.Namespace) -> None:
    from weightscape.cli.options import settings_from_args
    from weightscape.errors import WeightscapeError
    from weightscape.models.space import GROUPINGS
    from weightscape.report.mix_report import run_combine_study, table_markdown
    from weightscape.runtime.store import ResultStore
    from weightscape.training.learned_mix import CombineConfig

    groupings = [g.strip() for g in args.group_by.split(",") if g.strip()]
    unknown = [g for g in groupings if g not in GROUPINGS]
    if unknown or not groupings:
        raise WeightscapeError(
            f"Unknown grouping(s) {unknown or args.group_by!r} in --group-by. "
            f"Available: {', '.join(GROUPINGS)}."
        )
    a, b = checkpoints_from_args(args)
    train, dev, test = _splits(args)
    config = CombineConfig(
        steps=args.steps,
        batch_size=args.batch_size_train,
        lr=args.lr,
        seed=args.seed,
        max_length=args.max_length,
    )
    rows = run_combine_study(
        a,
        b,
        train,
        dev,
        test,
        args.out,
        groupings=groupings,
        config=config,
        points=args.points,
        space=space_from_args(args),
        settings=settings_from_args(args),
        device=args.device,
        store=ResultStore(args.store or args.out / "results.sqlite"),
        progress=not args.no_progress,
    )
    print(table_markdown(rows))
    print(f"wrote {args.out}: combine.json, combine.md, combination-*.json")
