"""The ``weightscape`` command: subcommands generated from the studies' configs.

Imports stay lazy: ``weightscape --help`` imports neither torch nor transformers. This is the one
error edge: every validation problem of a command line is listed at once, naming the flag, and
any user mistake (:class:`~weightscape.errors.WeightscapeError`) prints one message; both exit
with status 2, never a traceback. Each command runs recorded (:mod:`weightscape.provenance`): it
ends with what it computed and reused, and leaves ``run.json`` in its output folder.
"""

from __future__ import annotations

import argparse
import importlib
import os
import shlex
import sys
from collections.abc import Sequence

from weightscape import __version__
from weightscape.cli.registry import COMMANDS, CUSTOM, by_name


def build_parser(chosen: str | None = None) -> argparse.ArgumentParser:
    """The parser; only ``chosen``'s flags are generated (the others' modules stay unimported)."""
    parser = argparse.ArgumentParser(
        prog="weightscape",
        description="Measure the geometry of the weight space between finetuned models.",
    )
    parser.add_argument("--version", action="version", version=f"weightscape {__version__}")
    parser.add_argument(
        "--rehash",
        action="store_true",
        help="hash every checkpoint file again instead of trusting the digest cache (kept by "
        "path, size, times and inode in $WEIGHTSCAPE_CACHE), and recompute the weight-space "
        "matrices kept there by content hash",
    )
    add_log_flags(parser, top=True)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        p = sub.add_parser(command.name, help=command.help, description=command.help)
        if command.name == chosen:
            from weightscape.cli.flags import add_flags

            add_flags(p, command.module().Config)
    for adder in CUSTOM.values():
        module, function = adder.split(":")
        getattr(importlib.import_module(f"weightscape.cli.{module}"), function)(sub)
    for subparser in sub.choices.values():
        add_log_flags(subparser, top=False)
    return parser


def add_log_flags(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """``--verbose`` / ``--quiet``: how much the ``weightscape`` logger says on stderr.

    Accepted before the command (``top``) and after it; a subcommand's copy has no default, so
    it does not undo the same flag given before the command.
    """
    default: object = False if top else argparse.SUPPRESS
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--verbose",
        action="store_true",
        default=default,
        help="also print debug lines (and transformers' and datasets' own messages) on stderr",
    )
    group.add_argument(
        "--quiet",
        action="store_true",
        default=default,
        help="print only warnings and errors on stderr, and no progress bars (results still "
        "print on stdout)",
    )


def log_verbosity(args: argparse.Namespace) -> str:
    """``quiet``, ``normal`` or ``verbose`` from the parsed flags (both given: the error edge)."""
    from weightscape.errors import WeightscapeError

    if args.verbose and args.quiet:
        raise WeightscapeError("--verbose and --quiet contradict each other: give one.")
    return "verbose" if args.verbose else "quiet" if args.quiet else "normal"


# The command line's own process keeps Hugging Face libraries offline and quiet (library use sets
# none of these: weightscape.logs). Environment variables, because each library reads them once,
# at import: no import here, so `weightscape show` stays fast. A user's own values win.
CLI_ENVIRONMENT = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
CLI_QUIET_ENVIRONMENT = {
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
    "TRANSFORMERS_VERBOSITY": "error",
    "DATASETS_VERBOSITY": "error",
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
}


def _quiet_process(verbose: bool) -> None:
    """Offline, and (unless ``--verbose``) no load reports or progress bars from transformers,
    datasets and the Hub; weightscape's own bars follow ``--no-progress``."""
    quiet = {} if verbose else CLI_QUIET_ENVIRONMENT
    for name, value in {**CLI_ENVIRONMENT, **quiet}.items():
        os.environ.setdefault(name, value)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 ok, 2 user error, 130 interrupted)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    chosen = next((a for a in argv if not a.startswith("-")), None)
    args = build_parser(chosen).parse_args(argv)
    if args.rehash:  # this process only: models.hash_cache reads it
        os.environ["WEIGHTSCAPE_REHASH"] = "1"
    from weightscape.errors import WeightscapeError
    from weightscape.logs import cli_logging

    try:
        verbosity = log_verbosity(args)
        _quiet_process(verbose=verbosity == "verbose")
        with cli_logging(verbosity):
            command = by_name().get(args.command)
            if command is None:  # a custom command (run)
                args.command_line = shlex.join(["weightscape", *argv])
                args.run(args)
            else:
                for line in run_command(command, args, argv):
                    print(line)
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


def run_command(command, args: argparse.Namespace, argv: Sequence[str] = ()) -> list[str]:
    """Validate the flags into the study's Config, run it, render it; the terminal's lines."""
    from pydantic import ValidationError

    from weightscape.cli.flags import flag_names, problems, raw_values
    from weightscape.errors import WeightscapeError
    from weightscape.outputs import writing
    from weightscape.provenance import RunRecord, summary_lines

    module = command.module()
    raw = raw_values(args, module.Config)
    if getattr(args, "quiet", False) and "progress" in module.Config.model_fields:
        raw["progress"] = False  # --quiet means no bars too
    try:
        config = module.Config.model_validate(raw)
    except ValidationError as err:
        lines = problems(err, flag_names(module.Config))
        raise WeightscapeError("\n  ".join(["invalid options:", *lines])) from None
    typed = shlex.join(["weightscape", *argv])
    record = RunRecord(command.name, typed, config.model_dump(mode="json"))
    out = getattr(config, "out", None)
    # A folder a command is writing says so until the command finishes (a killed run's is marked).
    with writing(out, typed, record):
        lines = command.renderer()(module.run(config), config)
    lines += summary_lines(record, out)
    if getattr(module, "WRITES_REPORT", False) and out is not None:  # the demo ends on its page
        from weightscape.report.html import write_report

        lines.append(f"report: {write_report(out)}  (open it in a browser)")
    return lines


if __name__ == "__main__":
    sys.exit(main())
