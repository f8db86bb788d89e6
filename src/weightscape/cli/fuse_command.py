"""``weightscape fuse``: BitFit from the centroid of other datasets' models vs. from the base.

Gueta et al. (2023, §7): for each target dataset of a zoo, the weight average of the models
finetuned on the other datasets is a starting point for finetuning on the target. A target is a
dataset name from the zoo's ``--tag`` (a trailing ``:train``/``:validation``/``:test`` dropped, so
``rotten_tomatoes:train`` is ``rotten_tomatoes``) and must be a built-in task: BitFit trains on its
seeded train split and is evaluated on its test split.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from weightscape.cli.options import add_eval_options, int_list, settings_from_args


def add_fuse(sub) -> None:
    """Register ``weightscape fuse`` on the subcommand parsers ``sub``."""
    p = sub.add_parser(
        "fuse",
        help="finetune (BitFit) from the centroid of the other datasets' models and from the "
        "base, per target dataset, and compare test accuracy",
    )
    p.add_argument("--zoo", type=Path, required=True, help="zoo manifest of finetuned models")
    p.add_argument(
        "--targets",
        default=None,
        help="target datasets, comma-separated (default: every dataset in the zoo)",
    )
    p.add_argument("--tag", default="dataset", help="the zoo tag naming a model's dataset")
    p.add_argument(
        "--base",
        default=None,
        help="pretrained model folder or 'minilm' (default: the zoo's base, else the 'base' "
        "tag its models share); it must agree with the models' 'base' tags",
    )
    train = p.add_argument_group("BitFit")
    train.add_argument("--steps", type=int, default=200, help="training steps (default 200)")
    train.add_argument("--lr", type=float, default=1e-3, help="learning rate (default 1e-3)")
    train.add_argument("--batch-size-train", type=int, default=16, help="training batch size")
    train.add_argument(
        "--few-shot",
        type=int_list,
        action="append",
        default=None,
        help="also train on N random training examples; repeatable or comma-separated "
        "(default: 64)",
    )
    train.add_argument("--no-full", action="store_true", help="skip the full-data regime")
    train.add_argument("--seeds", type=int_list, default=(0,), help="seeds, e.g. 0,1,2")
    train.add_argument("--split-seed", type=int, default=0, help="seed of the 8:1:1 split")
    p.add_argument(
        "--subset", type=int, default=None, help="evaluate on N random test examples (all)"
    )
    p.add_argument("--out", type=Path, default=Path("weightscape-out/fuse"))
    add_eval_options(p)
    p.set_defaults(run=run_fuse_command)


def run_fuse_command(args: argparse.Namespace) -> None:
    from weightscape.analyses.fuse import run_fuse
    from weightscape.models.zoo import Zoo
    from weightscape.report.fuse_report import gains_markdown, write_fuse_report
    from weightscape.runtime.store import ResultStore
    from weightscape.training.fuse import FuseSettings

    shots = [n for group in (args.few_shot or [(64,)]) for n in group]
    few_shot = tuple(dict.fromkeys(([] if args.no_full else [None]) + shots))
    settings = FuseSettings(
        tag=args.tag,
        steps=args.steps,
        lr=args.lr,
        batch_size=args.batch_size_train,
        max_length=args.max_length,
        few_shot=few_shot,
        seeds=tuple(dict.fromkeys(args.seeds)),
        split_seed=args.split_seed,
        eval_subset=args.subset,
    )
    targets = [t.strip() for t in args.targets.split(",") if t.strip()] if args.targets else None
    result = run_fuse(
        Zoo.from_manifest(args.zoo),
        targets,
        settings,
        args.out,
        ResultStore(args.store or args.out / "results.sqlite"),
        base=args.base,
        eval_settings=settings_from_args(args),
        device=args.device,
        progress=not args.no_progress,
    )
    files = write_fuse_report(result, args.out)
    print(gains_markdown(result.gains))
    print(f"trained {len(result.trained)} run(s), {len(result.skipped)} already finished")
    print(f"wrote {args.out}: " + ", ".join(p.name for p in files.values()))
