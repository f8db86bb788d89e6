"""``weightscape plane``: the loss surface on the plane through three models."""

from __future__ import annotations

import argparse
from pathlib import Path

from weightscape.cli.options import (
    add_anchor_options,
    add_eval_options,
    add_probe_options,
    add_space_options,
    add_task_options,
    checkpoints_from_args,
    probe_from_args,
    settings_from_args,
    space_from_args,
    task_from_args,
)


def _resolution(text: str) -> tuple[int, int]:
    """``21`` for a 21 x 21 grid or ``21,15`` for 21 nodes along u and 15 along v."""
    try:
        values = tuple(int(x) for x in text.split(","))
    except ValueError:
        values = ()
    if len(values) not in (1, 2) or min(values) < 2:
        raise argparse.ArgumentTypeError(
            f"expected N or N,M with integers >= 2 (e.g. 21 or 21,15), got '{text}'"
        )
    return (values[0], values[-1])


def add_plane(sub) -> None:
    """Register ``weightscape plane`` on the subcommand parsers ``sub``."""
    p = sub.add_parser(
        "plane",
        help="evaluate a grid on the plane through three models (loss and accuracy contours)",
    )
    add_anchor_options(
        p,
        "+",
        "exactly 3 checkpoint paths (or names in --zoo): theta_1 (the origin), theta_2 "
        "(along the first axis), theta_3",
    )
    p.add_argument(
        "--resolution",
        type=_resolution,
        default=(21, 21),
        help="grid nodes along each axis: N, or N,M for N along u and M along v (default 21)",
    )
    p.add_argument(
        "--margin",
        type=float,
        default=0.2,
        help="how far the grid reaches past the models, as a fraction of their box (default 0.2)",
    )
    p.add_argument("--out", type=Path, default=Path("weightscape-out/plane"))
    add_task_options(p, default_split="validation")
    add_space_options(p)
    add_eval_options(p)
    add_probe_options(p)
    p.set_defaults(run=run_plane)


def run_plane(args: argparse.Namespace) -> None:
    from weightscape.analyses.plane import evaluate_plane
    from weightscape.errors import WeightscapeError
    from weightscape.evaluation.engine import EngineSpec
    from weightscape.report.plane_report import write_plane
    from weightscape.runtime.store import ResultStore

    if len(args.anchors) != 3:
        raise WeightscapeError(
            f"plane needs exactly 3 models (theta_1, theta_2, theta_3). Got "
            f"{len(args.anchors)}: {' '.join(args.anchors)}."
        )
    anchors = tuple(checkpoints_from_args(args))  # may take the zoo's tokenizer into args
    spec = EngineSpec(
        anchors,
        task_from_args(args),
        space=space_from_args(args),
        settings=settings_from_args(args),
        device=args.device,
        tokenizer=args.tokenizer,
        probe=probe_from_args(args),
    )
    result = evaluate_plane(
        spec,
        resolution=args.resolution,
        margin=args.margin,
        store=ResultStore(args.store or args.out / "results.sqlite"),
        progress=not args.no_progress,
    )
    files = write_plane(result, args.out)
    s = result.stats
    print(f"{'model':<24} {'x':>10} {'y':>10} {'loss':>9} {'acc':>7}")
    for k, name in enumerate(result.names):
        x, y = result.model_xy[k]
        own = result.model_metrics
        print(f"{name:<24} {x:10.4g} {y:10.4g} {own['loss'][k]:9.4f} {own['accuracy'][k]:7.4f}")
    print(
        f"{s['resolution'][0]}x{s['resolution'][1]} grid + 3 models: {s['computed_points']} "
        f"point(s) computed of {s['unique_points']} distinct, in {s['seconds']} s"
    )
    print(f"wrote {args.out}: " + ", ".join(p.name for p in files.values()))
