"""Masked-LM pretraining, its checkpoints as finetuning bases, the pretraining study and its CLI.

Tiny sizes throughout (hidden 32, 2 layers, a few steps) over the conftest's tiny vocabulary.
"""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import yaml

from conftest import generated_texts
from weightscape.errors import WeightscapeError

TINY = {"hidden_size": 32, "num_layers": 2, "num_heads": 2, "max_length": 16, "batch_size": 8}


def corpus(n: int = 64) -> list[str]:
    """A small repetitive corpus over the tiny vocabulary (an MLM learns it fast)."""
    return generated_texts(n, seed=3)[0]


def three_label_task(n: int = 60):
    from weightscape.data import make_task

    texts, _ = generated_texts(n, seed=4)
    labels = [i % 3 for i in range(n)]
    return make_task("three", texts, labels, ("x", "y", "z"))


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, tokenizer_dir):
    from weightscape.training.pretrain import PretrainConfig, pretrain

    out = tmp_path_factory.mktemp("pretrain")
    config = PretrainConfig(steps=4, save_steps=(0, 2), tokenizer=str(tokenizer_dir), **TINY)
    return config, out, pretrain(config, corpus(), out)


def test_pretrain_saves_checkpoints_with_zoo_entries(tiny_run):
    _, out, saved = tiny_run
    assert [c.tags["step"] for c in saved] == [0, 2, 4]
    for checkpoint in saved:
        assert (checkpoint.path / "model.safetensors").is_file()
        assert (checkpoint.path / "config.json").is_file()
        assert (checkpoint.path / "tokenizer_config.json").is_file()
    entries = yaml.safe_load((out / "zoo.yaml").read_text())["models"]
    assert [e["name"] for e in entries] == ["mlm@0", "mlm@2", "mlm"]
    assert entries[0]["path"] == "mlm/step-0"
    log = json.loads((out / "mlm" / "pretrain_log.json").read_text())
    assert len(log["log"]) == 4 and all(math.isfinite(r["loss"]) for r in log["log"])


def test_mlm_loss_decreases_on_a_repetitive_corpus(tmp_path, tokenizer_dir):
    from weightscape.training.pretrain import PretrainConfig, pretrain

    config = PretrainConfig(steps=60, lr=3e-3, tokenizer=str(tokenizer_dir), **TINY)
    pretrain(config, corpus(), tmp_path)
    losses = [
        r["loss"] for r in json.loads((tmp_path / "mlm/pretrain_log.json").read_text())["log"]
    ]
    assert np.mean(losses[-10:]) < np.mean(losses[:10]) - 0.3


def test_finished_run_is_read_back_not_retrained(tiny_run):
    from weightscape.training.pretrain import pretrained_checkpoints

    config, out, saved = tiny_run
    stamps = [(c.path / "model.safetensors").stat().st_mtime_ns for c in saved]
    again = pretrained_checkpoints(config, corpus(), out)
    assert [c.path for c in again] == [c.path for c in saved]
    assert [(c.path / "model.safetensors").stat().st_mtime_ns for c in again] == stamps


def test_mlm_checkpoint_is_a_finetune_base(tiny_run, tiny_task, tmp_path):
    from safetensors.torch import load_file

    from weightscape.training.finetune import FinetuneConfig, finetune, initial_model

    _, _, saved = tiny_run
    config = FinetuneConfig(name="ft", base=str(saved[-1].path), steps=2, batch_size=8)
    model, _ = initial_model(config, tiny_task)
    pretrained = load_file(str(saved[-1].path / "model.safetensors"))
    name = "bert.embeddings.word_embeddings.weight"
    assert np.allclose(model.state_dict()[name].numpy(), pretrained[name].numpy())
    assert model.classifier.out_features == 2
    checkpoint = finetune(config, tiny_task, tmp_path)[-1]
    assert (checkpoint.path / "model.safetensors").is_file()


def test_pretrain_config_rejects_bad_values(tokenizer_dir):
    from pydantic import ValidationError

    from weightscape.training.pretrain import PretrainConfig

    with pytest.raises(ValidationError, match="steps"):
        PretrainConfig(steps=0, tokenizer=str(tokenizer_dir))
    with pytest.raises(ValidationError, match="multiple of num_heads"):
        PretrainConfig(hidden_size=30, num_heads=4, tokenizer=str(tokenizer_dir))


def test_study_gives_one_barrier_per_checkpoint_and_resumes(tiny_run, tiny_task, tmp_path):
    from weightscape.analyses.pretraining import PretrainingStudy, pretrain_and_study

    config, _, _ = tiny_run
    study = PretrainingStudy(
        finetune_steps=3, batch_size=8, train_size=None, eval_size=8, probe_train=40, points=3
    )
    tasks = (tiny_task, three_label_task())
    result = pretrain_and_study(config, study, tmp_path, texts=corpus(), tasks=tasks)
    rows = result["checkpoints"]
    assert [r["step"] for r in rows] == [0, 2, 4]
    for row in rows:
        assert math.isfinite(row["same_task"]["loss_barrier"])
        for key in ("task_a", "task_b"):
            curve = row["cross_task"][key]
            assert curve["t"] == [0.0, 0.5, 1.0]
            assert all(math.isfinite(v) for v in curve["loss"])
    again = pretrain_and_study(config, study, tmp_path, texts=corpus(), tasks=tasks)
    assert all(r["same_task"]["computed"] == 0 for r in again["checkpoints"])
    assert again["checkpoints"][0]["same_task"]["loss"] == rows[0]["same_task"]["loss"]


def test_raw_texts_sources(tmp_path):
    from weightscape.data.raw_text import raw_texts, wordnet_glosses

    file = tmp_path / "texts.txt"
    file.write_text("\n".join(f"text number {i}" for i in range(20)) + "\n\n")
    assert len(raw_texts(str(file))) == 20
    assert raw_texts(str(file), 5, seed=1) == raw_texts(str(file), 5, seed=1)
    assert len(raw_texts(f"{file}+{file}", 30)) == 30
    with pytest.raises(WeightscapeError, match=r"raw text source 'bbc_nwes'\. Did you mean"):
        raw_texts("bbc_nwes")
    with pytest.raises(WeightscapeError, match="'n' parameter of raw_texts must be an int >= 1"):
        raw_texts(str(file), 0)
    with pytest.raises(WeightscapeError, match="wordnet-base"):
        wordnet_glosses(tmp_path)


def _write_csv(path, texts, labels):
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows(zip(texts, labels, strict=True))
    return path


def test_cli_end_to_end(tmp_path, tokenizer_dir, tiny_csv, capsys):
    from weightscape.cli.main import main

    texts = tmp_path / "corpus.txt"
    texts.write_text("\n".join(corpus()))
    task_b = three_label_task()
    labels = [task_b.label_names[i] for i in task_b.labels]
    csv_b = _write_csv(tmp_path / "three.csv", list(task_b.text_a), labels)
    out = tmp_path / "out"
    argv = [
        "pretrain", "--out", str(out), "--tokenizer", str(tokenizer_dir),
        "--text-source", str(texts), "--texts", "0", "--steps", "2", "--save-steps", "0",
        "--hidden", "32", "--layers", "2", "--heads", "2", "--max-length", "16",
        "--batch-size", "8", "--task-a", str(tiny_csv), "--task-b", str(csv_b),
        "--finetune-steps", "2", "--train-size", "0", "--eval-size", "8",
        "--probe-train", "40", "--points", "3", "--no-progress",
    ]  # fmt: skip
    assert main(argv) == 0
    result = json.loads((out / "pretraining.json").read_text())
    assert [r["step"] for r in result["checkpoints"]] == [0, 2]
    assert all(r["same_task"]["loss_barrier"] is not None for r in result["checkpoints"])
    for name in ("pretraining-barriers.png", "pretraining-cross-task.png", "pretraining.md"):
        assert (out / name).is_file()
    assert "| 0 |" in capsys.readouterr().out


def test_cli_bad_option_exits_2(tmp_path, capsys):
    from weightscape.cli.main import main

    assert main(["pretrain", "--out", str(tmp_path), "--steps", "0", "--tokenizer", "x"]) == 2
    err = capsys.readouterr().err
    assert "weightscape pretrain: error: invalid options:" in err
    assert "--steps: Input should be greater than or equal to 1. Got '0'." in err
    assert main(["pretrain", "--out", str(tmp_path), "--steps", "many"]) == 2
    err = capsys.readouterr().err
    assert "--steps: Input should be a valid integer" in err and "Got 'many'." in err


def test_cli_cross_field_problems_name_the_flags(tmp_path, capsys):
    from weightscape.cli.main import main

    assert main(["pretrain", "--out", str(tmp_path), "--hidden", "30", "--heads", "4"]) == 2
    assert "--hidden (30) must be a multiple of --heads (4)" in capsys.readouterr().err
    assert main(["pretrain", "--out", str(tmp_path), "--save-steps", "0,-5"]) == 2
    assert "--save-steps: save steps must be >= 0" in capsys.readouterr().err
    assert main(["pretrain", "--out", str(tmp_path), "--name", ".."]) == 2
    assert "--name: must be one folder name" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # nothing ran


def test_study_config_builds_the_training_configs_without_drift(tokenizer_dir):
    from weightscape.analyses.pretraining import PretrainingStudy
    from weightscape.studies.pretraining import Config
    from weightscape.training.pretrain import PretrainConfig

    tokenizer = str(tokenizer_dir)
    assert Config(tokenizer=tokenizer).pretrain_config() == PretrainConfig(tokenizer=tokenizer)
    assert Config().study() == PretrainingStudy()
    # study field -> (model, field): one default and the same bounds
    same = {
        "name": (PretrainConfig, "name"),
        "steps": (PretrainConfig, "steps"),
        "save_steps": (PretrainConfig, "save_steps"),
        "hidden": (PretrainConfig, "hidden_size"),
        "layers": (PretrainConfig, "num_layers"),
        "heads": (PretrainConfig, "num_heads"),
        "intermediate": (PretrainConfig, "intermediate_size"),
        "max_length": (PretrainConfig, "max_length"),
        "batch_size": (PretrainConfig, "batch_size"),
        "lr": (PretrainConfig, "lr"),
        "mask_probability": (PretrainConfig, "mask_probability"),
        "seed": (PretrainConfig, "seed"),
        "task_a": (PretrainingStudy, "task_a"),
        "task_b": (PretrainingStudy, "task_b"),
        "finetune_steps": (PretrainingStudy, "finetune_steps"),
        "finetune_lr": (PretrainingStudy, "lr"),
        "eval_size": (PretrainingStudy, "eval_size"),
        "probe_train": (PretrainingStudy, "probe_train"),
        "points": (PretrainingStudy, "points"),
        "mlm_eval_size": (PretrainingStudy, "mlm_eval_size"),
    }
    for field, (model, name) in same.items():
        ours, theirs = Config.model_fields[field], model.model_fields[name]
        assert ours.default == theirs.default, field
        assert ours.metadata == theirs.metadata, field
    max_length = Config.model_fields["max_length"].metadata
    assert max_length == PretrainingStudy.model_fields["max_length"].metadata
    # 0 on the command line is None (all rows / all texts) in the API
    assert Config(train_size=0).study().train_size is None
