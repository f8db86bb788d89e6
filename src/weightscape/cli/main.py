"""The ``weightscape`` command: thin subcommands over the Python API.

Imports stay lazy: ``weightscape --help`` imports neither torch nor transformers. User mistakes
(:class:`~weightscape.errors.WeightscapeError`) print one message and exit with status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from weightscape import __version__
from weightscape.cli import (
    commands,
    fuse_command,
    knowledge_command,
    mix_commands,
    plane_command,
    pretrain_command,
    region_command,
    similarity_command,
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="weightscape",
        description="Measure the geometry of the weight space between finetuned models.",
    )
    parser.add_argument("--version", action="version", version=f"weightscape {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_finetune(sub)
    commands.add_interpolate(sub)
    commands.add_grid(sub)
    commands.add_basins(sub)
    commands.add_trajectories(sub)
    mix_commands.add_curve(sub)
    mix_commands.add_combine(sub)
    plane_command.add_plane(sub)
    fuse_command.add_fuse(sub)
    similarity_command.add_similarity(sub)
    region_command.add_region(sub)
    knowledge_command.add_knowledge(sub)
    pretrain_command.add_pretrain(sub)
    commands.add_demo(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 ok, 2 user error, 130 interrupted)."""
    args = build_parser().parse_args(argv)
    from weightscape.errors import WeightscapeError

    try:
        args.run(args)
    except WeightscapeError as err:
        print(f"weightscape {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            f"weightscape {args.command}: interrupted; stored results are kept, rerun to resume.",
            file=sys.stderr,
        )
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
