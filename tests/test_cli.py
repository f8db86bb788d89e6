"""End-to-end CLI tests on tiny models: outputs, exact endpoints, resume, and clean errors."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from weightscape.cli.main import main

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}


def _interpolate(models, csv, out, *extra):
    return main(
        [
            "interpolate",
            str(models[0]),
            str(models[1]),
            "--task",
            str(csv),
            "--split",
            "all",
            "--out",
            str(out),
            "--no-progress",
            "--device",
            "cpu",
            *extra,
        ]
    )


def test_interpolate_writes_outputs_and_evaluates_both_ends(
    tiny_models, tiny_csv, tmp_path, capsys
):
    assert _interpolate(tiny_models, tiny_csv, tmp_path, "--points", "5") == 0
    for name in ("path.json", "path.csv", "path.png", "results.sqlite"):
        assert (tmp_path / name).is_file()
    walk = json.loads((tmp_path / "path.json").read_text())
    ts = [p["t"] for p in walk["points"]]
    assert ts == [0.0, 0.25, 0.5, 0.75, 1.0]
    losses = [p["metrics"]["loss"] for p in walk["points"]]
    assert all(np.isfinite(losses))
    names = walk["anchors"]
    assert walk["points"][0]["metrics"] == walk["endpoints"][names[0]]
    assert walk["points"][-1]["metrics"] == walk["endpoints"][names[1]]
    assert walk["computed"] == 5  # 5 points; the endpoints are t=0 and t=1 themselves
    assert "loss barrier" in capsys.readouterr().out


def test_interpolate_on_a_builtin_task(tiny_models, tmp_path, capsys):
    """Built-in tasks take no table options; the generated HANS-like set needs no network."""
    code = main(
        [
            "interpolate",
            str(tiny_models[0]),
            str(tiny_models[1]),
            "--task",
            "hans_like_lexical_overlap",
            "--split",
            "test",
            "--subset",
            "32",
            "--points",
            "3",
            "--out",
            str(tmp_path),
            "--no-progress",
            "--device",
            "cpu",
            # The tiny models are 2-class sentiment classifiers: say what their columns mean.
            "--model-labels",
            "entailment,non-entailment",
        ]
    )
    assert code == 0, capsys.readouterr().err
    walk = json.loads((tmp_path / "path.json").read_text())
    assert walk["task"].startswith("hans_like_lexical_overlap")
    assert len(walk["points"]) == 3


def test_rerun_reuses_everything(tiny_models, tiny_csv, tmp_path):
    assert _interpolate(tiny_models, tiny_csv, tmp_path, "--points", "4") == 0
    assert _interpolate(tiny_models, tiny_csv, tmp_path, "--points", "7") == 0
    walk = json.loads((tmp_path / "path.json").read_text())
    # The 7-point grid k/6 shares 0, 2/6 = 1/3, 4/6 = 2/3 and 1 with the 4-point grid k/3, so
    # only 1/6, 1/2 and 5/6 are new.
    assert walk["computed"] == 3
    assert _interpolate(tiny_models, tiny_csv, tmp_path, "--points", "7") == 0
    assert json.loads((tmp_path / "path.json").read_text())["computed"] == 0


def test_killed_interpolate_resumes_without_recomputing(tiny_models, tiny_csv, tmp_path):
    """SIGKILL a real interpolate process midway; the rerun computes only what is missing."""
    points = 40
    cmd = [
        sys.executable,
        "-m",
        "weightscape.cli.main",
        "interpolate",
        str(tiny_models[0]),
        str(tiny_models[1]),
        "--task",
        str(tiny_csv),
        "--split",
        "all",
        "--out",
        str(tmp_path),
        "--points",
        str(points),
        "--no-progress",
        "--device",
        "cpu",
    ]
    proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    store = tmp_path / "results.sqlite"
    deadline = time.time() + 120
    stored = 0
    while time.time() < deadline and proc.poll() is None:
        if store.exists():
            try:
                with sqlite3.connect(store) as db:
                    stored = db.execute("SELECT COUNT(*) FROM points").fetchone()[0]
            except sqlite3.OperationalError:
                stored = 0
            if stored >= 5:
                break
        time.sleep(0.05)
    assert proc.poll() is None, "the walk finished before it could be killed; add points"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with sqlite3.connect(store) as db:
        stored = db.execute("SELECT COUNT(*) FROM points").fetchone()[0]
    assert 5 <= stored < points
    assert not (tmp_path / "path.json").exists()
    done = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    walk = json.loads((tmp_path / "path.json").read_text())
    assert walk["computed"] == points - stored
    with sqlite3.connect(store) as db:
        assert db.execute("SELECT COUNT(*) FROM points").fetchone()[0] == points


def _error_of(argv, capsys) -> str:
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 2
    assert "Traceback" not in captured.err
    return captured.err


def test_missing_file(tiny_models, tiny_csv, capsys, tmp_path):
    err = _error_of(
        [
            "interpolate",
            str(tiny_models[0]),
            str(tmp_path / "nope"),
            "--task",
            str(tiny_csv),
            "--out",
            str(tmp_path),
        ],
        capsys,
    )
    assert "nope' does not exist" in err


def test_corrupt_safetensors(tiny_models, tiny_csv, capsys, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text((tiny_models[0] / "config.json").read_text())
    (bad / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not a header")
    err = _error_of(
        [
            "interpolate",
            str(tiny_models[0]),
            str(bad),
            "--task",
            str(tiny_csv),
            "--out",
            str(tmp_path),
            "--tokenizer",
            str(tiny_models[0]),
        ],
        capsys,
    )
    assert "Cannot read safetensors file" in err and "model.safetensors" in err


def test_pickle_refused_by_weights_only(tiny_models, tiny_csv, capsys, tmp_path):
    import argparse

    import torch

    evil = tmp_path / "evil.bin"  # an arbitrary object: weights_only must refuse to build it
    torch.save({"weight": torch.zeros(2), "extra": argparse.Namespace(x=1)}, evil)
    err = _error_of(
        [
            "interpolate",
            str(tiny_models[0]),
            str(evil),
            "--config",
            str(tiny_models[0]),
            "--task",
            str(tiny_csv),
            "--out",
            str(tmp_path),
        ],
        capsys,
    )
    assert "Refused to load" in err and "weights_only=True" in err


def test_state_dict_file_is_accepted(tiny_models, tiny_csv, tmp_path):
    import torch
    from safetensors.torch import load_file

    state = load_file(tiny_models[1] / "model.safetensors")
    torch.save(state, tmp_path / "m1.pt")
    code = main(
        [
            "interpolate",
            str(tiny_models[0]),
            str(tmp_path / "m1.pt"),
            "--config",
            str(tiny_models[0]),
            "--task",
            str(tiny_csv),
            "--split",
            "all",
            "--points",
            "3",
            "--out",
            str(tmp_path / "out"),
            "--no-progress",
            "--device",
            "cpu",
        ]
    )
    assert code == 0


def test_mismatched_architectures(tiny_models, tiny_csv, tokenizer_dir, capsys, tmp_path):
    from conftest import save_tiny_model

    wide = save_tiny_model(tmp_path / "wide", 0, tokenizer_dir, hidden=48)
    err = _error_of(
        [
            "interpolate",
            str(tiny_models[0]),
            str(wide),
            "--task",
            str(tiny_csv),
            "--out",
            str(tmp_path),
        ],
        capsys,
    )
    assert "shape of bert.encoder.layer.0.attention.self.query.weight" in err


def test_unknown_path_type_lists_valid_ones(tiny_models, tiny_csv, capsys, tmp_path):
    err = _error_of(
        [
            "interpolate",
            str(tiny_models[0]),
            str(tiny_models[1]),
            "--path",
            "bezeir",
            "--task",
            str(tiny_csv),
            "--out",
            str(tmp_path),
        ],
        capsys,
    )
    assert "Did you mean 'bezier'?" in err and "linear" in err and "polychain" in err


def test_fewer_than_two_points(tiny_models, tiny_csv, capsys, tmp_path):
    err = _error_of(
        [
            "interpolate",
            str(tiny_models[0]),
            str(tiny_models[1]),
            "--points",
            "1",
            "--task",
            str(tiny_csv),
            "--out",
            str(tmp_path),
        ],
        capsys,
    )
    assert "points" in err or "even_grid" in err


def test_single_anchor(tiny_models, tiny_csv, capsys, tmp_path):
    err = _error_of(
        ["interpolate", str(tiny_models[0]), "--task", str(tiny_csv), "--out", str(tmp_path)],
        capsys,
    )
    assert "at least 2 anchors" in err


def test_empty_dataset(tiny_models, capsys, tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("text,label\n")
    err = _error_of(
        [
            "interpolate",
            str(tiny_models[0]),
            str(tiny_models[1]),
            "--task",
            str(empty),
            "--split",
            "all",
            "--out",
            str(tmp_path),
        ],
        capsys,
    )
    assert "empty.csv" in err or "no examples" in err


def test_labels_outside_label_set(tiny_models, capsys, tmp_path):
    bad = tmp_path / "bad_labels.csv"
    bad.write_text("text,label\ngood film,0\nbad film,1\ndull plot,7\n")
    err = _error_of(
        [
            "interpolate",
            str(tiny_models[0]),
            str(tiny_models[1]),
            "--task",
            str(bad),
            "--split",
            "all",
            "--out",
            str(tmp_path),
        ],
        capsys,
    )
    assert "7" in err


def test_help_does_not_import_torch():
    code = (
        "import sys; from weightscape.cli.main import build_parser; build_parser(); "
        "print('torch' in sys.modules, 'transformers' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV)
    assert out.stdout.strip() == "False False"


@pytest.mark.parametrize("flag", ["--help"])
def test_help_exits_zero(flag):
    out = subprocess.run(
        [sys.executable, "-m", "weightscape.cli.main", flag],
        capture_output=True,
        text=True,
        env=ENV,
    )
    assert out.returncode == 0 and "interpolate" in out.stdout


def test_finetune_saves_checkpoints_and_manifest(
    tokenizer_dir, tiny_models, tiny_csv, tmp_path, capsys
):
    from weightscape.models.zoo import Zoo

    code = main(
        [
            "finetune",
            "--name",
            "tiny",
            "--base",
            str(tiny_models[0]),
            "--task",
            str(tiny_csv),
            "--steps",
            "6",
            "--save-steps",
            "3",
            "--batch-size",
            "8",
            "--lr",
            "1e-3",
            "--out",
            str(tmp_path),
            "--no-progress",
        ]
    )
    assert code == 0, capsys.readouterr().err
    zoo = Zoo.from_manifest(tmp_path / "zoo.yaml")
    assert zoo.names() == ["tiny@3", "tiny"]
    assert zoo["tiny"].tags["step"] == 6 and zoo["tiny@3"].tags["step"] == 3
    assert (Path(zoo["tiny"].path) / "model.safetensors").is_file()
    log = json.loads((tmp_path / "tiny" / "train_log.json").read_text())
    assert len(log["log"]) == 6
