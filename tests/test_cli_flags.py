"""Every command, every field of its config: the flag exists, defaults to the field's default, and
an ill-typed or out-of-range value exits 2 with one message naming the flag (no traceback)."""

from __future__ import annotations

import argparse
import types
import typing
from pathlib import Path

import pytest
from annotated_types import Ge, Gt, Le, Lt, MaxLen, MinLen

from weightscape.cli.flags import flag_names, is_sequence, raw_values
from weightscape.cli.main import build_parser, main
from weightscape.cli.registry import COMMANDS

# Values for fields a command cannot go without (positionals, or rules such as "--name or
# --zoo-file"), so that one bad flag at a time is what fails.
MINIMAL: dict[str, list[str]] = {
    "interpolate": ["a", "b"],
    "basins": ["grid-folder"],
    "finetune": ["--name", "run"],
    "grid": ["--zoo", "zoo.yaml"],
    "similarity": ["--zoo", "zoo.yaml"],
    "region": ["--zoo", "zoo.yaml"],
    "fuse": ["--zoo", "zoo.yaml"],
    "trajectories": ["--zoo", "zoo.yaml"],
    "curve": ["a", "b"],
    "combine": ["a", "b"],
    "plane": ["a", "b", "c"],
    "knowledge": ["a", "b", "--source-task", "s", "--target-task", "t"],
    "mean-path": ["a:b", "c:d"],
    "run-distance": ["a", "b", "--zoo", "zoo.yaml"],
    "show": ["store.sqlite"],
    "report": ["."],  # an existing folder
    "export": ["a", "b", "--t", "0.5"],
}
# Fields whose default is computed from other fields when left out (None means "derived").
DERIVED = {("basins", "out")}


def _fields():
    for command in COMMANDS:
        config = command.module().Config
        for name, info in config.model_fields.items():
            extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
            if extra.get("cli") is False:
                continue
            yield command, config, name, info


FIELDS = list(_fields())


def _subparser(command_name: str) -> argparse.ArgumentParser:
    parser = build_parser(command_name)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[command_name]


def _inner(annotation):
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        return rest[0] if len(rest) == 1 else annotation
    return annotation


def _bad_values(info) -> list[str]:
    """Values the field must refuse: ill-typed, and just past each numeric bound."""
    kind = _inner(info.annotation)
    if typing.get_origin(kind) in (tuple, list):
        items = typing.get_args(kind)
        item = items[0] if items else str
        bad = ["x,y"] if item in (int, float) else []
        for bound in info.metadata:
            if isinstance(bound, MinLen) and bound.min_length > 1:
                bad.append("1" if item in (int, float) else "a")
            if isinstance(bound, MaxLen):
                bad.append(
                    ",".join(["1" if item in (int, float) else "a"] * (bound.max_length + 1))
                )
        return bad
    if typing.get_origin(kind) is typing.Literal:
        return ["no-such-choice"]
    if kind not in (int, float):
        return []
    bad = ["not-a-number"]
    for bound in info.metadata:
        if isinstance(bound, Ge):
            bad.append(str(bound.ge - 1))
        elif isinstance(bound, Gt):
            bad.append(str(bound.gt))
        elif isinstance(bound, Le):
            bad.append(str(bound.le + 1))
        elif isinstance(bound, Lt):
            bad.append(str(bound.lt))
    return bad


@pytest.mark.parametrize(
    ("command", "config", "field", "info"),
    FIELDS,
    ids=[f"{c.name}:{n}" for c, _, n, _ in FIELDS],
)
def test_each_field_is_a_flag_with_the_field_default(command, config, field, info):
    parser = _subparser(command.name)
    flag = flag_names(config)[field]
    dests = {a.dest: a for a in parser._actions}
    assert field in dests, f"{command.name} has no flag for {field}"
    action = dests[field]
    if flag.isupper():
        return  # a positional: required, no default
    assert flag in action.option_strings
    assert action.default is argparse.SUPPRESS  # the only default is the config's
    minimal = MINIMAL.get(command.name, [])
    parsed = config.model_validate(raw_values(parser.parse_args(minimal), config))
    if flag in minimal or (command.name, field) in DERIVED:
        return
    assert getattr(parsed, field) == info.get_default(call_default_factory=True)


BAD = [
    (command, config, field, info, value)
    for command, config, field, info in FIELDS
    for value in _bad_values(info)
]


@pytest.mark.parametrize(
    ("command", "config", "field", "info", "value"),
    BAD,
    ids=[f"{c.name}:{n}={v}" for c, _, n, _, v in BAD],
)
def test_each_bad_value_exits_2_naming_the_flag(command, config, field, info, value, capsys):
    flag = flag_names(config)[field]
    argv = [command.name, *MINIMAL.get(command.name, [])]
    if flag.isupper():  # a positional: replace the minimal values with the bad one
        pytest.skip("positionals are checked by their own tests")
    code = main([*argv, f"{flag}={value}"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    # pydantic's errors name the flag (an item of a list as --flag[i]); argparse's its argument
    assert f"{flag}:" in err or f"{flag}[" in err or f"argument {flag}" in err, err


def test_coverage_is_reported(capsys):
    """How many (command, field) pairs the two tests above cover (shown with -s)."""
    commands = {c.name for c, *_ in FIELDS}
    with capsys.disabled():
        print(
            f"\n{len(FIELDS)} (command, field) pairs over {len(commands)} commands; "
            f"{len(BAD)} bad values over {len({(c.name, f) for c, _, f, _, _ in BAD})} fields"
        )
    assert len(FIELDS) >= len(commands)


def test_sequences_are_comma_separated():
    from weightscape.studies.interpolate import Config

    assert is_sequence(Config.model_fields["t"].annotation)
    args = _subparser("interpolate").parse_args(["a", "b", "--t", "0,0.5,1"])
    assert Config.model_validate(raw_values(args, Config)).t == (0.0, 0.5, 1.0)


def test_help_imports_no_torch():
    import subprocess
    import sys

    code = (
        "import sys; from weightscape.cli.main import build_parser; build_parser(None)."
        "format_help(); print('torch' in sys.modules, 'transformers' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.split() == ["False", "False"], out.stderr


def test_paths_are_paths():
    from weightscape.studies.interpolate import Config

    assert Config.model_validate({"anchors": ["a", "b"], "out": "x"}).out == Path("x")


def test_a_positional_with_a_default_may_be_left_out():
    """export's ANCHORS default to none (``--from-run``, ``--zoo --centroid``); required
    positionals stay required."""
    from weightscape.studies import export

    parser = _subparser("export")
    left_out = raw_values(parser.parse_args(["--zoo", "z.yaml", "--centroid"]), export.Config)
    assert "anchors" not in left_out and left_out["centroid"] is True
    given = raw_values(parser.parse_args(["a", "b", "--t", "0.5"]), export.Config)
    assert given["anchors"] == ["a", "b"]
    with pytest.raises(SystemExit):
        _subparser("interpolate").parse_args([])  # ANCHORS are required there
