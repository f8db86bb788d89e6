"""``weightscape knowledge``: what the path from a source to a target minimum forgets and learns.

Both checkpoints must come from runs finetuned with ``--dynamics-examples N``: the examples
their runs tracked are the ones evaluated, with the runs' cartography statistics. The tasks are
loaded whole (every split), and the tracked rows are picked out by id.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from weightscape.cli.options import (
    add_eval_options,
    add_space_options,
    checkpoints_from_args,
    settings_from_args,
    space_from_args,
)


def add_knowledge(sub) -> None:
    """Register ``weightscape knowledge`` on the subcommand parsers ``sub``."""
    p = sub.add_parser(
        "knowledge",
        help="source examples forgotten and target examples learned along the line between "
        "two minima, with dataset cartography (Qin et al. 2022, Fig. 8)",
    )
    p.add_argument("source", help="source checkpoint (a path or a name in --zoo)")
    p.add_argument("target", help="target checkpoint (a path or a name in --zoo)")
    p.add_argument(
        "--source-task",
        required=True,
        help="the data the source was finetuned on: a built-in name or a table file",
    )
    p.add_argument("--target-task", required=True, help="the data the target was finetuned on")
    p.add_argument("--steps", type=int, default=5, help="steps J; points t = j/J (default 5)")
    p.add_argument(
        "--head",
        default="auto",
        help="own: each point's own mixed head (tasks with one label set); probe: a linear head "
        "fitted per task over the frozen encoder (label sets differ); auto (default): own "
        "when the label names agree, else probe",
    )
    p.add_argument(
        "--probe-train",
        type=int,
        default=256,
        help="untracked rows of each task the probe is fitted on (default 256)",
    )
    p.add_argument("--probe-c", type=float, default=1.0, help="the probe's inverse L2 strength")
    p.add_argument("--zoo", type=Path, default=None, help="zoo manifest to resolve names")
    p.add_argument("--config", type=Path, default=None, help="config for bare weight files")
    p.add_argument("--tokenizer", type=Path, default=None, help="tokenizer folder")
    p.add_argument("--out", type=Path, default=Path("weightscape-out/knowledge"))
    add_space_options(p)
    add_eval_options(p)
    p.set_defaults(run=run_knowledge)


def run_knowledge(args: argparse.Namespace) -> None:
    from weightscape.analyses.knowledge import knowledge_along_path
    from weightscape.data import load_task
    from weightscape.evaluation.probe import ProbeSettings
    from weightscape.report.knowledge_report import write_knowledge_report
    from weightscape.runtime.store import ResultStore

    args.anchors = [args.source, args.target]
    source, target = checkpoints_from_args(args)
    result = knowledge_along_path(
        source,
        target,
        load_task(args.source_task),
        load_task(args.target_task),
        steps=args.steps,
        head=args.head,
        probe_train=args.probe_train,
        probe_settings=ProbeSettings(c=args.probe_c),
        space=space_from_args(args),
        settings=settings_from_args(args),
        device=args.device,
        tokenizer=args.tokenizer,
        store=ResultStore(args.store or args.out / "results.sqlite"),
        progress=not args.no_progress,
    )
    files = write_knowledge_report(result, args.out)
    print(
        f"{'j':>3} {'t':>6} {'F_j':>5} {'conf F':>7} {'var F':>7} {'M_j':>5} {'conf M':>7} "
        f"{'var M':>7}"
    )
    for r in result.steps():
        print(
            f"{r['step']:>3} {r['t']:>6.3g} {r['forgotten']:>5} {r['forgotten_confidence']:>7.3f} "
            f"{r['forgotten_variability']:>7.3f} {r['learned']:>5} "
            f"{r['learned_confidence']:>7.3f} {r['learned_variability']:>7.3f}"
        )
    print(f"heads: {result.head}; computed {result.computed} point(s)")
    print(f"wrote {args.out}: " + ", ".join(p.name for p in files.values()))
