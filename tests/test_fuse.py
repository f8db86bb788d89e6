"""Fuse (Gueta et al. 2023, §7): combinations saved as checkpoints, and BitFit from the centroid
of other datasets' models against BitFit from the base."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
import torch
from pydantic import ValidationError
from safetensors.torch import load_file

from weightscape.analyses.fuse import check_targets, datasets_in, run_fuse
from weightscape.cli.main import main
from weightscape.errors import WeightscapeError
from weightscape.evaluation import export
from weightscape.evaluation.export import PROVENANCE, read_provenance, save_combination
from weightscape.evaluation.working_model import WorkingModel
from weightscape.models.space import ParameterSpace, is_head
from weightscape.models.zoo import Zoo
from weightscape.report.fuse_report import gains_markdown, write_fuse_report
from weightscape.runtime.store import ResultStore
from weightscape.training.fuse import FuseSettings

NLI, LEXICAL, SUBSEQUENCE = "mnli_like", "hans_like_lexical_overlap", "hans_like_subsequence"
SETTINGS = FuseSettings(
    steps=2, batch_size=8, max_length=16, few_shot=(None, 8), seeds=(0,), eval_subset=16
)


def _tensors(checkpoint) -> dict[str, torch.Tensor]:
    return load_file(str(checkpoint.path / "model.safetensors"))


@pytest.fixture(scope="module")
def zoo_dir(tiny_models, tmp_path_factory):
    """A zoo finetuned from tiny_models[0]: two models on the 3-class NLI set (one with an
    intermediate checkpoint), one on each of two 2-class diagnostics."""
    from weightscape.data import load_task, split
    from weightscape.training.finetune import FinetuneConfig, finetune

    out = tmp_path_factory.mktemp("source-zoo")
    runs = [(NLI, "nli-0", 0, (1,)), (NLI, "nli-1", 1, ()), (LEXICAL, "lex", 0, ())]
    runs.append((SUBSEQUENCE, "sub", 0, ()))
    for task, name, seed, saves in runs:
        config = FinetuneConfig(
            name=name,
            base=str(tiny_models[0]),
            steps=2,
            batch_size=8,
            max_length=16,
            lr=1e-2,
            head_seed=seed,
            data_seed=seed,
            train_size=32,
            save_steps=saves,
        )
        finetune(config, split(load_task(task))["train"], out)
    return out


@pytest.fixture(scope="module")
def zoo(zoo_dir) -> Zoo:
    return Zoo.from_manifest(zoo_dir / "zoo.yaml")


def test_centroid_is_the_mean_of_the_encoders_with_the_reference_head(zoo, tmp_path):
    anchors = [zoo["nli-0"], zoo["lex"], zoo["sub"]]  # 3, 2 and 2 labels
    saved = save_combination(anchors, [1 / 3] * 3, tmp_path / "centroid", ignore_heads=True)
    got, parts = _tensors(saved), [_tensors(a) for a in anchors]
    assert got.keys() == parts[0].keys()
    for name, tensor in got.items():
        if is_head(name):
            assert torch.equal(tensor, parts[0][name]), name
        else:
            expected = sum(p[name].double() for p in parts) / 3
            torch.testing.assert_close(tensor.double(), expected, rtol=0, atol=1e-6)
    assert len(json.loads((saved.path / "config.json").read_text())["id2label"]) == 3
    provenance = read_provenance(saved.path)
    assert provenance["hashes"] == [a.content_hash() for a in anchors]
    assert provenance["coefficients"] == [1 / 3] * 3 and provenance["ignore_heads"] is True
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(saved.path), trust_remote_code=False)
    assert tokenizer("good movie")["input_ids"][0] == 2


def test_one_hot_coefficients_reproduce_an_anchor_bit_for_bit(zoo, tmp_path):
    anchors = [zoo["lex"], zoo["sub"]]
    saved = save_combination(anchors, [0.0, 1.0], tmp_path / "copy")
    got, want = _tensors(saved), _tensors(anchors[1])
    assert got.keys() == want.keys()
    assert all(torch.equal(got[n], want[n]) for n in want)


def test_export_equals_the_point_the_working_model_evaluates(zoo, tmp_path):
    anchors, coefficients = [zoo["lex"], zoo["sub"]], [0.3, 0.7]
    space = ParameterSpace(preset="biases")
    saved = save_combination(anchors, coefficients, tmp_path / "mix", space=space)
    working = WorkingModel(anchors[0])
    working.write(working.anchors(anchors), coefficients, space)
    got = _tensors(saved)
    assert all(torch.equal(got[n], t) for n, t in working.model.state_dict().items() if n in got)


def test_same_export_is_reused_and_another_refused(zoo, tmp_path, monkeypatch):
    anchors = [zoo["lex"], zoo["sub"]]
    first = save_combination(anchors, [0.5, 0.5], tmp_path / "mid")
    stamp = (first.path / "model.safetensors").stat().st_mtime_ns

    def no_rewrite(*args, **kwargs):
        raise AssertionError("a finished export was written again")

    monkeypatch.setattr(export, "_write_model", no_rewrite)
    again = save_combination(anchors, [0.5, 0.5], tmp_path / "mid")
    assert again.path == first.path
    assert (again.path / "model.safetensors").stat().st_mtime_ns == stamp
    with pytest.raises(WeightscapeError, match="already exists"):
        save_combination(anchors, [0.25, 0.75], tmp_path / "mid")


def test_other_label_counts_need_ignore_heads(zoo, tmp_path):
    with pytest.raises(WeightscapeError, match=r"(?s)classifier\.weight.*ignore_heads=True") as err:
        save_combination([zoo["nli-0"], zoo["lex"]], [0.5, 0.5], tmp_path / "bad")
    assert "expected [3, 32], got [2, 32]" in str(err.value)
    assert not (tmp_path / "bad").exists()
    with pytest.raises(WeightscapeError, match="2 finite numbers, one per anchor"):
        save_combination([zoo["nli-0"], zoo["lex"]], [1.0], tmp_path / "bad")


def test_zoo_datasets_drop_split_suffixes_and_intermediate_checkpoints(zoo):
    groups = datasets_in(zoo)
    assert {k: [m.name for m in v] for k, v in groups.items()} == {
        NLI: ["nli-0", "nli-1"],  # not nli-0@1
        LEXICAL: ["lex"],
        SUBSEQUENCE: ["sub"],
    }
    with pytest.raises(WeightscapeError, match=f"Available: {LEXICAL}, {SUBSEQUENCE}, {NLI}"):
        check_targets(["rotten_tomatoes"], groups)
    with pytest.raises(WeightscapeError, match="at least two datasets"):
        check_targets(None, {NLI: groups[NLI]})


def test_settings_are_checked():
    with pytest.raises(ValidationError) as err:
        FuseSettings(steps=0)
    (error,) = err.value.errors()
    assert (error["loc"], error["msg"], error["input"]) == (
        ("steps",),
        "Input should be greater than or equal to 1",
        0,
    )
    with pytest.raises(ValidationError, match=r"seeds\n.*values must be distinct; 0 repeat"):
        FuseSettings(seeds=(0, 0))
    for bad in ({"steps": True}, {"steps": 2.0}, {"few_shot": (None, 8, 8)}, {"lr": 0.0}):
        with pytest.raises(ValidationError, match=next(iter(bad))):
            FuseSettings(**bad)
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        FuseSettings(max_lenght=16)
    assert FuseSettings(few_shot=[None, 8], seeds=[1, 2]).few_shot == (None, 8)  # lists: tuples
    with pytest.raises(ValidationError, match="frozen"):
        SETTINGS.steps = 3


def test_study_fields_mirror_the_settings():
    """The command's training fields have FuseSettings' defaults and constraints, and build it."""
    from weightscape.studies.fuse import MIRRORED, Config

    for field, name in MIRRORED.items():
        ours, theirs = Config.model_fields[field], FuseSettings.model_fields[name]
        assert ours.default == theirs.default, field
        constraints = [m for m in theirs.metadata if type(m).__name__ != "Strict"]
        assert ours.metadata == constraints, field
    default = Config()
    assert default.fuse_settings() == FuseSettings()
    assert (default.max_length, default.fuse_settings().max_length) == (128, 64)
    config = Config(
        few_shot=["8,16", "8", "32"], full=False, seeds=["1", "2", "1"], train_max_length=16
    )
    settings = config.fuse_settings()
    assert (settings.few_shot, settings.seeds, settings.max_length) == ((8, 16, 32), (1, 2), 16)


def test_study_refuses_nothing_to_train(capsys, tmp_path):
    from weightscape.studies.fuse import Config

    with pytest.raises(ValidationError, match="--no-full and no --few-shot leave nothing"):
        Config(full=False, few_shot=())
    args = ["fuse", "--zoo", "z.yaml", "--no-full", "--few-shot", "0", "--steps", "0"]
    assert main([*args, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "--few-shot[0]: Input should be greater than or equal to 1. Got '0'." in err
    assert "--steps: Input should be greater than or equal to 1. Got '0'." in err
    assert main(["fuse", "--out", str(tmp_path / "o")]) == 2
    assert "--zoo is required" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


@pytest.fixture(scope="module")
def study(zoo, tmp_path_factory):
    out = tmp_path_factory.mktemp("fuse")
    store = ResultStore(out / "results.sqlite")
    first = run_fuse(zoo, [SUBSEQUENCE, LEXICAL], SETTINGS, out, store, device="cpu")
    stored = len(store)
    second = run_fuse(zoo, [SUBSEQUENCE, LEXICAL], SETTINGS, out, store, device="cpu")
    return first, second, stored, len(store), out


def test_centroids_leave_out_the_targets_own_models(study, zoo):
    first, *_ = study
    hashes = {n: zoo[n].content_hash() for n in ("nli-0", "nli-0@1", "nli-1", "lex", "sub")}
    subsequence_centroid = read_provenance(first.centroids[SUBSEQUENCE].path)["hashes"]
    assert sorted(subsequence_centroid) == sorted([hashes[n] for n in ("nli-0", "nli-1", "lex")])
    lexical_centroid = read_provenance(first.centroids[LEXICAL].path)["hashes"]
    assert sorted(lexical_centroid) == sorted([hashes[n] for n in ("nli-0", "nli-1", "sub")])
    assert (first.centroids[LEXICAL].path / PROVENANCE).is_file()


def test_each_run_starts_where_it_says(study, zoo, tiny_models):
    first, *_ = study
    frozen = "bert.encoder.layer.0.attention.self.query.weight"  # BitFit leaves it as it starts
    runs = Zoo.from_manifest(study[4] / "runs" / "zoo.yaml")
    centroid = _tensors(first.centroids[SUBSEQUENCE])[frozen]
    base = load_file(str(tiny_models[0] / "model.safetensors"))[frozen]
    assert torch.equal(_tensors(runs[f"{SUBSEQUENCE}-centroid-8shot-seed0"])[frozen], centroid)
    assert torch.equal(_tensors(runs[f"{SUBSEQUENCE}-base-8shot-seed0"])[frozen], base)
    assert not torch.equal(centroid, base)
    assert runs[f"{SUBSEQUENCE}-base-8shot-seed0"].tags["train_size"] == 8


def test_table_has_both_starts_for_every_target_and_regime(study, tmp_path):
    first, *_ = study
    cells = {(r["target"], r["regime"], r["start"]) for r in first.rows}
    assert cells == {
        (t, regime, start)
        for t in (SUBSEQUENCE, LEXICAL)
        for regime in ("full", "8shot")
        for start in ("base", "centroid")
    }
    assert all(0 <= r["accuracy"] <= 1 and math.isfinite(r["loss"]) for r in first.rows)
    assert len(first.gains) == 4
    for g in first.gains:
        assert g["gain"] == pytest.approx(g["centroid_accuracy"] - g["base_accuracy"])
    assert {g["n_train"] for g in first.gains if g["regime"] == "8shot"} == {8}
    table = gains_markdown(first.gains)
    assert table.count("| **mean** |") == 2 and SUBSEQUENCE in table and LEXICAL in table
    files = write_fuse_report(first, tmp_path)
    assert all(path.is_file() for path in files.values())
    assert len(files["gains"].read_text().strip().splitlines()) == 1 + 4 + 2


def test_second_run_trains_and_evaluates_nothing(study):
    first, second, stored_after_first, stored_after_second, _ = study
    assert len(first.trained) == 8 and first.skipped == []
    assert second.trained == [] and sorted(second.skipped) == sorted(first.trained)
    assert stored_after_second == stored_after_first == 8
    assert second.rows == first.rows


def test_cli_end_to_end(zoo_dir, tmp_path, capsys):
    args = ["fuse", "--zoo", str(zoo_dir / "zoo.yaml"), "--targets", LEXICAL, "--steps", "2"]
    args += ["--few-shot", "8", "--no-full", "--batch-size-train", "8", "--max-length", "16"]
    args += ["--train-max-length", "16"]  # training truncation: its own flag since the port
    args += ["--subset", "16", "--out", str(tmp_path), "--no-progress", "--device", "cpu"]
    assert main(args) == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    assert "trained 2 run(s), 0 already finished" in printed
    gains = json.loads((tmp_path / "fuse.json").read_text())["gains"]
    assert [(g["target"], g["regime"]) for g in gains] == [(LEXICAL, "8shot")]
    assert (tmp_path / "fuse-gains.png").is_file() and (tmp_path / "results.sqlite").is_file()


def test_cli_unknown_target_lists_the_zoos_datasets(zoo_dir, tmp_path, capsys):
    args = ["fuse", "--zoo", str(zoo_dir / "zoo.yaml"), "--targets", "mnli", "--out"]
    assert main([*args, str(tmp_path), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "Unknown target dataset 'mnli'" in err
    assert f"Available: {LEXICAL}, {SUBSEQUENCE}, {NLI}" in err


def test_fuse_help_does_not_import_torch():
    code = (
        "import sys; from weightscape.cli.main import build_parser; "
        "build_parser('fuse').parse_args(['fuse', '--zoo', 'z.yaml']); "
        "sys.exit('torch' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
