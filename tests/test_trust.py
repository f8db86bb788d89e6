"""Checkpoints and names are untrusted input: no checkpoint code runs, run names stay inside
--out, and weights whose header lies about their dtype or that hold NaN/inf are refused before
any point is evaluated or stored (issue "Trust first", items 4-6)."""

from __future__ import annotations

import ast
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from pydantic import ValidationError
from safetensors.torch import load_file, save_file

from weightscape.cli.main import main
from weightscape.errors import WeightscapeError
from weightscape.models.architecture import build_model, check_compatible
from weightscape.models.checkpoint import Checkpoint, TensorReader
from weightscape.training.finetune import FinetuneConfig

ROOT = Path(__file__).parents[1]
EMBEDDINGS = "bert.embeddings.word_embeddings.weight"  # not near the head: a whole-model check

# --- item 4: code from a checkpoint never runs ---------------------------------------------

LOADERS = ("from_pretrained", "from_config")


def _receiver(call: ast.Call) -> str:
    """``AutoConfig`` in ``AutoConfig.from_pretrained(...)``; '' for an expression."""
    value = call.func.value  # type: ignore[union-attr]
    if isinstance(value, ast.Name):
        return value.id
    return value.attr if isinstance(value, ast.Attribute) else ""


def _may_run_code(call: ast.Call) -> bool:
    """A load on an Auto* or model class, or on a variable (which could hold one)."""
    name = _receiver(call)
    return (
        not name[:1].isupper() or name.startswith("Auto") or "For" in name or name.endswith("Model")
    )


def _unguarded_loads(folder: Path) -> list[str]:
    """``file:line`` of every such load without ``trust_remote_code=False``."""
    found = []
    for path in sorted(folder.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in LOADERS
                and _may_run_code(node)
            ):
                continue
            refused = any(
                k.arg == "trust_remote_code"
                and isinstance(k.value, ast.Constant)
                and k.value.value is False
                for k in node.keywords
            )
            if not refused:
                found.append(f"{path.relative_to(folder)}:{node.lineno}")
    return found


@pytest.mark.parametrize("folder", ["src", "tests", "benchmarks"])
def test_every_transformers_load_passes_trust_remote_code_false(folder):
    assert _unguarded_loads(ROOT / folder) == [], "add trust_remote_code=False to these calls"


def test_the_scan_finds_an_unguarded_load(tmp_path):
    (tmp_path / "bad.py").write_text(
        "AutoModel.from_pretrained(p)\n"
        "BertForSequenceClassification.from_pretrained(p, trust_remote_code=True)\n"
        "cls.from_config(c)\n"
        "AutoConfig.from_pretrained(p, trust_remote_code=False)\n"
        "BertTokenizerFast.from_pretrained(p)\n"
    )
    assert _unguarded_loads(tmp_path) == ["bad.py:1", "bad.py:2", "bad.py:3"]


EVIL_CODE = """
from pathlib import Path

Path({marker!r}).write_text("checkpoint code ran")

from transformers import PretrainedConfig, PreTrainedModel, PreTrainedTokenizerFast


class EvilConfig(PretrainedConfig):
    model_type = "evil_unknown"


class EvilModel(PreTrainedModel):
    config_class = EvilConfig


class EvilTokenizer(PreTrainedTokenizerFast):
    pass
"""


@pytest.fixture
def evil(tiny_models, tmp_path) -> tuple[Path, Path]:
    """A tiny model folder whose config and tokenizer config map to its own ``evil.py``, which
    writes a marker file when imported; returns (folder, marker)."""
    folder = tmp_path / "evil"
    shutil.copytree(tiny_models[1], folder)
    marker = tmp_path / "MARKER"
    config = json.loads((folder / "config.json").read_text())
    config["model_type"] = "evil_unknown"
    config["auto_map"] = {
        "AutoConfig": "evil.EvilConfig",
        "AutoModelForSequenceClassification": "evil.EvilModel",
    }
    (folder / "config.json").write_text(json.dumps(config))
    tokenizer_config = json.loads((folder / "tokenizer_config.json").read_text())
    tokenizer_config.pop("tokenizer_class", None)  # else transformers' own class would do
    tokenizer_config["auto_map"] = {"AutoTokenizer": ["evil.EvilTokenizer", None]}
    (folder / "tokenizer_config.json").write_text(json.dumps(tokenizer_config))
    (folder / "evil.py").write_text(EVIL_CODE.format(marker=str(marker)))
    return folder, marker


def _commands(evil_folder: Path, good: list[Path], csv: Path) -> dict[str, list[str]]:
    """The three ways a folder reaches transformers: anchor, finetuning base, tokenizer."""
    task = ["--task", str(csv)]
    walk = [*task, "--split", "all", "--points", "2", "--device", "cpu"]
    evil = str(evil_folder)
    return {
        "interpolate": ["interpolate", evil, str(good[0]), *walk],
        "finetune": ["finetune", "--name", "x", "--base", evil, *task, "--steps", "1"],
        "tokenizer": ["interpolate", str(good[0]), str(good[1]), *walk, "--tokenizer", evil],
    }


@pytest.mark.parametrize("answer", ["y\n", None], ids=["answers-yes", "stdin-closed"])
@pytest.mark.parametrize("command", ["interpolate", "finetune", "tokenizer"])
def test_checkpoint_code_never_runs(command, answer, evil, tiny_models, tiny_csv, tmp_path):
    folder, marker = evil
    out = tmp_path / "out"
    argv = [*_commands(folder, tiny_models, tiny_csv)[command], "--out", str(out)]
    run = subprocess.run(
        [sys.executable, "-m", "weightscape.cli.main", *argv, "--no-progress"],
        input=answer,
        stdin=subprocess.DEVNULL if answer is None else None,
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        timeout=300,
    )
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr
    assert str(folder) in run.stderr and "auto_map" in run.stderr
    assert "never runs code from a checkpoint" in run.stderr
    assert "[y/N]" not in run.stdout + run.stderr  # no prompt was shown
    assert not marker.exists()


def test_build_model_refuses_checkpoint_code(evil):
    folder, marker = evil
    with pytest.raises(WeightscapeError, match="asks to run its own Python code"):
        build_model(Checkpoint.from_path(folder))
    assert not marker.exists()


# --- item 5: run names stay inside --out ---------------------------------------------------


def _tree(folder: Path) -> set[Path]:
    return set(folder.rglob("*"))


@pytest.mark.parametrize("name", ["../x", "ABSOLUTE", "a/b", "a\nb", "..", ".", "a\\b", "a\0b"])
def test_finetune_name_must_be_one_folder(name, tiny_models, tiny_csv, tmp_path, capsys):
    root = tmp_path / "root"
    out = root / "out"
    out.mkdir(parents=True)
    if name == "ABSOLUTE":
        name = str(root / "elsewhere" / "run")
    before = _tree(tmp_path)
    argv = ["finetune", "--name", name, "--base", str(tiny_models[0]), "--task", str(tiny_csv)]
    assert main([*argv, "--steps", "1", "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "--name" in err and "one folder name" in err and "Traceback" not in err
    # The shared error edge heads the problems with one line; the problem is one line too, even
    # for a name with a newline (it is shown escaped).
    header, problem = err.splitlines()
    assert header == "weightscape finetune: error: invalid options:"
    assert problem.startswith("  --name: ") and "one folder name" in problem
    assert _tree(tmp_path) == before
    assert not (root / "x").exists() and not (root / "elsewhere").exists()


@pytest.mark.parametrize("name", ["../x", "/abs/run", "", "a\tb"])
def test_python_api_refuses_run_names_outside_out(name):
    with pytest.raises(ValidationError, match="one folder name"):
        FinetuneConfig(name=name)


@pytest.mark.parametrize(
    "zoo",
    [
        {"name": "z", "runs": [{"name": "../../outside"}]},
        {"name": "..", "base": {"steps": 1}},
        {"name": "z", "runs": [{"name": "/tmp/outside"}]},
    ],
    ids=["run-name", "prefix", "absolute-run-name"],
)
def test_zoo_file_names_stay_inside_out(zoo, tiny_models, tiny_csv, tmp_path, capsys):
    root = tmp_path / "a" / "b"
    out = root / "out"
    out.mkdir(parents=True)
    base = {"base": str(tiny_models[0]), "steps": 1, **zoo.get("base", {})}
    zoo_file = tmp_path / "zoo.yaml"
    zoo_file.write_text(yaml.safe_dump({**zoo, "base": base}))
    before = _tree(tmp_path)
    argv = ["finetune", "--zoo-file", str(zoo_file), "--task", str(tiny_csv), "--out", str(out)]
    assert main([*argv, "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert str(zoo_file) in err and "one folder name" in err and "Traceback" not in err
    assert _tree(tmp_path) == before
    assert not (tmp_path / "outside").exists()


# --- item 6: lying dtypes and non-finite weights ------------------------------------------


def _relabel_dtype(file: Path, tensor: str, dtype: str = "I32") -> None:
    """Rewrite ``file``'s safetensors header so ``tensor`` claims ``dtype`` (same byte width),
    leaving every data byte where it was."""
    raw = file.read_bytes()
    size = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + size])
    assert header[tensor]["dtype"] == "F32"
    header[tensor]["dtype"] = dtype
    encoded = json.dumps(header).encode()
    encoded += b" " * (-len(encoded) % 8)  # offsets count from the end of the header
    file.write_bytes(len(encoded).to_bytes(8, "little") + encoded + raw[8 + size :])


def _copy(model: Path, folder: Path) -> Path:
    shutil.copytree(model, folder)
    return folder


def _walk(anchors: list[Path], csv: Path, out: Path) -> int:
    argv = ["interpolate", *map(str, anchors), "--task", str(csv), "--split", "all"]
    return main([*argv, "--points", "3", "--out", str(out), "--device", "cpu", "--no-progress"])


def _stored_points(out: Path) -> int:
    store = out / "results.sqlite"
    if not store.exists():
        return 0
    with sqlite3.connect(store) as db:
        return db.execute("SELECT COUNT(*) FROM points").fetchone()[0]


@pytest.mark.parametrize("tensor", ["classifier.weight", EMBEDDINGS])
def test_lying_dtype_header_is_refused(tensor, tiny_models, tiny_csv, tmp_path, capsys):
    liar = _copy(tiny_models[1], tmp_path / "liar")
    _relabel_dtype(liar / "model.safetensors", tensor)
    assert TensorReader(Checkpoint.from_path(liar)).dtype(tensor) == "int32"  # it does read
    out = tmp_path / "out"
    assert _walk([tiny_models[0], liar], tiny_csv, out) == 2
    err = capsys.readouterr().err
    assert f"dtype of {tensor}: expected float32, got int32" in err
    assert "'liar'" in err and "Traceback" not in err
    assert _stored_points(out) == 0
    assert not (out / "path.json").exists()


@pytest.mark.parametrize("value", [float("nan"), float("inf")], ids=["nan", "inf"])
@pytest.mark.parametrize("tensor", ["classifier.bias", EMBEDDINGS])
def test_nonfinite_weights_are_refused(value, tensor, tiny_models, tiny_csv, tmp_path, capsys):
    broken = _copy(tiny_models[1], tmp_path / "broken")
    file = broken / "model.safetensors"
    state = load_file(file)
    state[tensor].view(-1)[1] = value
    save_file(state, str(file), metadata={"format": "pt"})
    out = tmp_path / "out"
    assert _walk([tiny_models[0], broken], tiny_csv, out) == 2
    err = capsys.readouterr().err
    assert "not finite" in err and "Traceback" not in err
    assert f"{tensor} in {file}" in err and "'broken'" in err
    assert _stored_points(out) == 0


def test_check_compatible_lists_every_dtype_mismatch(tiny_models, tmp_path):
    first = _copy(tiny_models[1], tmp_path / "first")
    _relabel_dtype(first / "model.safetensors", EMBEDDINGS)
    _relabel_dtype(first / "model.safetensors", "classifier.weight")
    # A torch state dict whose float tensor was stored as its int32 bit pattern.
    state = load_file(tiny_models[2] / "model.safetensors")
    state["classifier.bias"] = state["classifier.bias"].view(torch.int32)
    second = tmp_path / "second.pt"
    torch.save(state, second)
    checkpoints = [
        Checkpoint.from_path(first),
        Checkpoint.from_path(second, config=tiny_models[2]),
    ]
    model = build_model(Checkpoint.from_path(tiny_models[0]))
    with pytest.raises(WeightscapeError) as err:
        check_compatible(model, [TensorReader(c) for c in checkpoints])
    message = str(err.value)
    for line in (
        f"checkpoint 'first' ({first})",
        f"dtype of {EMBEDDINGS}: expected float32, got int32",
        "dtype of classifier.weight: expected float32, got int32",
        f"checkpoint 'second' ({second})",
        "dtype of classifier.bias: expected float32, got int32",
    ):
        assert line in message, (line, message)


def test_half_precision_anchors_stay_compatible(tiny_models, tmp_path):
    state = load_file(tiny_models[1] / "model.safetensors")
    save_file({k: v.half() for k, v in state.items()}, str(tmp_path / "half.safetensors"))
    half = Checkpoint.from_path(tmp_path / "half.safetensors", config=tiny_models[1])
    check_compatible(build_model(half), [TensorReader(half)])  # float16 for float32 is fine


def test_finiteness_verdict_is_cached_per_file_version(tiny_models, tmp_path, monkeypatch):
    from weightscape.models import checkpoint as checkpoint_module
    from weightscape.models import hash_cache
    from weightscape.models.checkpoint import nonfinite_tensors

    monkeypatch.setenv(hash_cache.CACHE_ENV, str(tmp_path / "cache"))
    scans = []
    scan = checkpoint_module._scan_nonfinite
    monkeypatch.setattr(
        checkpoint_module, "_scan_nonfinite", lambda file: scans.append(file) or scan(file)
    )
    folder = _copy(tiny_models[1], tmp_path / "m")
    checkpoint = Checkpoint.from_path(folder)
    assert nonfinite_tensors(checkpoint) == []
    assert len(scans) == 1
    hash_cache.forget_session()  # a new command: answered from the cache file
    assert nonfinite_tensors(checkpoint) == []
    assert len(scans) == 1  # not read again
    file = folder / "model.safetensors"
    stat = file.stat()
    state = load_file(file)
    state["classifier.bias"][0] = float("nan")
    save_file(state, str(file), metadata={"format": "pt"})
    os.utime(file, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))  # a new version
    assert nonfinite_tensors(checkpoint) == [("classifier.bias", file)]
