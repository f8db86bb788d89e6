"""``weightscape run STUDY.yaml [key=value ...] [--check]``: a whole study file."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_run(sub) -> None:
    """The ``run`` subcommand."""
    p = sub.add_parser(
        "run",
        help="run a study file (a zoo and an ordered list of steps), resumably",
        description="Run a study file: every step in order, each into OUT/NN-STEP, sharing one "
        "results store. The whole file is validated first; a rerun recomputes nothing stored.",
    )
    p.add_argument("study", type=Path, help="the study file (YAML)")
    p.add_argument(
        "overrides",
        nargs="*",
        metavar="KEY=VALUE",
        help="override a value of the file, e.g. steps.0.grid.points=26",
    )
    p.add_argument("--check", action="store_true", help="validate and print the plan; run nothing")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> None:
    from weightscape.cli.registry import by_name
    from weightscape.studies.study_file import load_study, plan, run_study

    study = load_study(args.study, args.overrides)
    for line in plan(study):
        print(line)
    if args.check:
        return
    commands = by_name()

    def render(name, result, config):
        return commands[name].renderer()(result, config)

    for line in run_study(study, render, getattr(args, "command_line", None)):
        print(line)
    from weightscape.report.html import write_report

    print(f"report: {write_report(study.out)}")
