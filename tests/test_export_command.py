"""``weightscape export``: every kind of point written as a folder that plain transformers loads
with no missing or unexpected keys and that computes what the engine computes for the point.

The reference for "what the engine computes" is the engine's own working model with the same
coefficients written into it (``Engine.working``), run on the same inputs: the exported model's
logits must equal it bit for bit (float32 weights are saved and loaded without a cast). The
engine's per-example losses (its own batching and padding) must match to 1e-6.
"""

from __future__ import annotations

import argparse
import json
import shutil

import numpy as np
import pytest
import torch
import yaml

from weightscape.cli.main import main, run_command
from weightscape.cli.registry import by_name
from weightscape.errors import WeightscapeError
from weightscape.models.checkpoint import Checkpoint

TEXTS = ["good movie", "bad film", "a good and fine story", "not bad", "boring plot"]


def load_export(folder):
    """The folder loaded by plain transformers; fails on any missing or unexpected key."""
    from transformers import AutoModelForSequenceClassification

    model, info = AutoModelForSequenceClassification.from_pretrained(
        str(folder), local_files_only=True, trust_remote_code=False, output_loading_info=True
    )
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    assert not info["mismatched_keys"] and not info["error_msgs"], info
    return model.eval()


def logits_of(model, tokenizer_dir) -> torch.Tensor:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(
        str(tokenizer_dir), local_files_only=True, trust_remote_code=False
    )
    with torch.no_grad():
        return model(**tokenizer(TEXTS, padding=True, return_tensors="pt")).logits


def engine_for(paths, task, **kwargs):
    from weightscape.evaluation.engine import Engine

    anchors = [Checkpoint.from_path(p) for p in paths]
    return Engine(anchors, task, device="cpu", **kwargs)


def engine_logits(engine, coefficients, tokenizer_dir) -> torch.Tensor:
    """The engine's working model with the point written in, on TEXTS."""
    engine.working.write(engine.anchors, list(coefficients), engine.space, engine.reference)
    return logits_of(engine.working.model, tokenizer_dir)


def assert_engine_point(folder, paths, coefficients, tiny_task, tokenizer_dir, **kwargs):
    """The export equals the engine's point: identical logits, per-example losses to 1e-6."""
    exported = load_export(folder)
    engine = engine_for(paths, tiny_task, **kwargs)
    assert torch.equal(
        logits_of(exported, tokenizer_dir), engine_logits(engine, coefficients, tokenizer_dir)
    )
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(
        str(folder), local_files_only=True, trust_remote_code=False
    )
    losses = []
    with torch.no_grad():
        for text, label in zip(tiny_task.text_a, tiny_task.labels, strict=True):
            logits = exported(**tokenizer([text], return_tensors="pt")).logits
            losses.append(torch.nn.functional.cross_entropy(logits, torch.tensor([label])).item())
    np.testing.assert_allclose(engine.evaluate(list(coefficients)).losses, losses, atol=1e-6)


def provenance(folder) -> dict:
    return json.loads((folder / "weightscape_combination.json").read_text())


def run_export(argv_values: dict, typed: str = "weightscape export"):
    """The export command as the CLI runs it (validation, the output folder's marker and
    run.json, the renderer), for forms with no positional ANCHORS."""
    namespace = argparse.Namespace(**{k: v for k, v in argv_values.items()})
    return run_command(by_name()["export"], namespace, typed.split()[1:])


def test_t_on_the_line_loads_with_no_missing_keys_and_is_the_engines_point(
    tiny_models, tiny_task, tokenizer_dir, tmp_path, capsys
):
    out = tmp_path / "mid"
    a, b = tiny_models[:2]
    argv = ["export", str(a), str(b), "--t", "0.3", "--out", str(out), "--device", "cpu"]
    assert main(argv) == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    assert "t = 0.3 on the linear path" in printed
    assert "BertForSequenceClassification.from_pretrained" in printed
    assert provenance(out)["coefficients"] == [0.7, 0.3]
    assert_engine_point(out, [a, b], [0.7, 0.3], tiny_task, tokenizer_dir)
    assert (out / "tokenizer.json").is_file() or (out / "vocab.txt").is_file()
    described = json.loads((out / "export.json").read_text())
    assert described["point"] == {"kind": "path", "path": "linear", "t": 0.3}
    assert described["coefficients"] == [0.7, 0.3]
    assert (out / "run.json").is_file() and not list(out.glob(".*incomplete*"))
    # The same point again keeps the folder; another point there is refused, naming --out.
    assert main(argv) == 0
    assert "kept the identical export" in capsys.readouterr().out
    assert main([*argv[:4], "0.4", *argv[5:]]) == 2
    error = capsys.readouterr().err
    assert "--out: " in error and "already exists" in error


def test_extrapolated_t_on_the_line(tiny_models, tiny_task, tokenizer_dir, tmp_path, capsys):
    out = tmp_path / "past"
    a, b = tiny_models[:2]
    assert main(["export", str(a), str(b), "--t=-0.5", "--out", str(out), "--device", "cpu"]) == 0
    assert provenance(out)["coefficients"] == [1.5, -0.5]
    assert_engine_point(out, [a, b], [1.5, -0.5], tiny_task, tokenizer_dir)


def test_t_on_a_bezier_curve_and_explicit_coefficients(
    tiny_models, tiny_task, tokenizer_dir, tmp_path, capsys
):
    curve, given = tmp_path / "curve", tmp_path / "given"
    models = [str(m) for m in tiny_models]
    assert main(["export", *models, "--t", "0.5", "--path", "bezier", "--out", str(curve)]) == 0
    assert provenance(curve)["coefficients"] == [0.25, 0.5, 0.25]  # (1-t)^2, 2t(1-t), t^2
    assert_engine_point(curve, tiny_models, [0.25, 0.5, 0.25], tiny_task, tokenizer_dir)
    assert main(["export", *models, "--coefficients", "0.2,0.3,0.5", "--out", str(given)]) == 0
    assert provenance(given)["coefficients"] == [0.2, 0.3, 0.5]
    assert_engine_point(given, tiny_models, [0.2, 0.3, 0.5], tiny_task, tokenizer_dir)


def write_zoo(folder, models) -> object:
    manifest = {"models": [{"name": f"m{i}", "path": str(p)} for i, p in enumerate(models)]}
    path = folder / "zoo.yaml"
    path.write_text(yaml.safe_dump(manifest))
    return path


def test_centroid_of_a_zoo_and_of_named_anchors(
    tiny_models, tiny_task, tokenizer_dir, tmp_path, capsys
):
    zoo = write_zoo(tmp_path, tiny_models)
    whole = tmp_path / "centroid"
    lines = run_export({"zoo": str(zoo), "centroid": True, "out": str(whole), "device": "cpu"})
    assert "the centroid of the anchors" in lines[0]
    third = 1 / 3
    assert provenance(whole)["coefficients"] == [third] * 3
    assert (whole / "run.json").is_file()  # written by the command into the model folder
    assert_engine_point(whole, tiny_models, [third] * 3, tiny_task, tokenizer_dir)
    named = tmp_path / "two"
    assert main(["export", "--zoo", str(zoo), "m0", "m2", "--centroid", "--out", str(named)]) == 0
    assert provenance(named)["names"] == ["m0", "m2"]
    assert_engine_point(
        named, [tiny_models[0], tiny_models[2]], [0.5, 0.5], tiny_task, tokenizer_dir
    )


def test_centroid_of_a_study_files_zoo(tiny_models, tiny_task, tokenizer_dir, tmp_path, capsys):
    zoo = write_zoo(tmp_path, tiny_models[:2])
    study = tmp_path / "study.yaml"
    steps = [{"export": {"centroid": True, "device": "cpu"}}]
    study.write_text(
        yaml.safe_dump({"name": "s", "out": str(tmp_path / "o"), "zoo": str(zoo), "steps": steps})
    )
    assert main(["run", str(study)]) == 0, capsys.readouterr().err
    folder = tmp_path / "o" / "01-export"
    assert provenance(folder)["coefficients"] == [0.5, 0.5]
    assert_engine_point(folder, tiny_models[:2], [0.5, 0.5], tiny_task, tokenizer_dir)


def interpolate(models, csv, out) -> None:
    argv = ["interpolate", str(models[0]), str(models[1]), "--task", str(csv), "--split", "all"]
    assert (
        main([*argv, "--points", "5", "--out", str(out), "--no-progress", "--device", "cpu"]) == 0
    )


def test_best_point_of_an_interpolate_run(
    tiny_models, tiny_csv, tiny_task, tokenizer_dir, tmp_path
):
    run_dir, out = tmp_path / "walk", tmp_path / "best"
    interpolate(tiny_models, tiny_csv, run_dir)
    lines = run_export({"from_run": str(run_dir), "out": str(out), "device": "cpu"})
    walk = json.loads((run_dir / "path.json").read_text())
    best = max(p["metrics"]["accuracy"] for p in walk["points"])
    exported = json.loads((out / "export.json").read_text())["point"]
    chosen = next(p for p in walk["points"] if p["t"] == exported["t"])
    assert chosen["metrics"]["accuracy"] == best and exported["metrics"] == chosen["metrics"]
    assert provenance(out)["coefficients"] == chosen["coefficients"]
    assert "of the interpolate run" in lines[0]
    assert_engine_point(out, tiny_models[:2], chosen["coefficients"], tiny_task, tokenizer_dir)
    # Any t on the run's path, too.
    other = tmp_path / "quarter"
    run_export({"from_run": str(run_dir), "t": 0.25, "out": str(other), "device": "cpu"})
    assert provenance(other)["coefficients"] == [0.75, 0.25]
    assert_engine_point(other, tiny_models[:2], [0.75, 0.25], tiny_task, tokenizer_dir)


def test_a_checkpoint_changed_since_the_run_is_refused(tiny_models, tiny_csv, tmp_path):
    models = [tmp_path / "a", tmp_path / "b"]
    for source, copy in zip(tiny_models, models, strict=False):
        shutil.copytree(source, copy)
    interpolate(models, tiny_csv, tmp_path / "walk")
    shutil.copy(tiny_models[2] / "model.safetensors", models[1] / "model.safetensors")
    with pytest.raises(WeightscapeError, match=r"--from-run: the checkpoint .* content changed"):
        run_export({"from_run": str(tmp_path / "walk"), "out": str(tmp_path / "x")})
    assert not (tmp_path / "x").exists()


def pair_run(command, models, csv, out, *extra) -> None:
    argv = [command, str(models[0]), str(models[1]), "--task", str(csv), "--steps", "2"]
    argv += ["--points", "3", "--subset", "10", "--batch-size-train", "8", "--out", str(out)]
    assert main([*argv, "--no-progress", "--device", "cpu", *extra]) == 0


def test_best_point_of_a_fitted_curve_and_of_its_line(
    tiny_models, tiny_csv, tiny_task, tokenizer_dir, tmp_path
):
    from weightscape.geometry.paths import get_path

    run_dir = tmp_path / "curve-run"
    pair_run("curve", tiny_models, tiny_csv, run_dir, "--eval-every", "0")
    rows = json.loads((run_dir / "curve-table.json").read_text())
    curved, line = tmp_path / "curved", tmp_path / "line"
    run_export({"from_run": str(run_dir), "out": str(curved), "device": "cpu"})
    expected = get_path("bezier", 3).coefficients([rows[1]["t"]])[0].tolist()
    assert provenance(curved)["coefficients"] == expected
    control = run_dir / "curve" / "control-1"
    assert provenance(curved)["hashes"][1] == Checkpoint.from_path(control).content_hash()
    anchors = [tiny_models[0], control, tiny_models[1]]
    assert_engine_point(curved, anchors, expected, tiny_task, tokenizer_dir)
    run_export({"from_run": str(run_dir), "mix": "line", "out": str(line), "device": "cpu"})
    assert provenance(line)["coefficients"] == [1 - rows[0]["t"], rows[0]["t"]]


def test_best_line_point_of_a_combine_run(
    tiny_models, tiny_csv, tiny_task, tokenizer_dir, tmp_path
):
    run_dir, out = tmp_path / "combine-run", tmp_path / "best"
    pair_run("combine", tiny_models, tiny_csv, run_dir, "--group-by", "layer")
    t = json.loads((run_dir / "combine.json").read_text())[0]["t"]
    run_export({"from_run": str(run_dir), "out": str(out), "device": "cpu"})
    assert provenance(out)["coefficients"] == [1 - t, t]
    assert_engine_point(out, tiny_models[:2], [1 - t, t], tiny_task, tokenizer_dir)
    with pytest.raises(
        WeightscapeError,
        match=r"--mix: the points of the combine run in .* lie on line.*; got 'curve'",
    ):
        run_export({"from_run": str(run_dir), "mix": "curve", "out": str(tmp_path / "x")})


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["m0", "nope", "--t", "0.5"], "ANCHORS: The zoo has no model named 'nope'"),
        (["m0", "m1", "--coefficients", "0.2,0.3,0.5"], "--coefficients: give one weight per"),
        (["m0", "m1", "m2", "--path", "bezier", "--t", "1.5"], "--t: The 't' values of path"),
        (["m0", "m1", "--t", "nan"], "--t: Input should be a finite number"),
        (["m0", "m1"], "give the point to export: one of --t, --coefficients"),
        (["m0", "m1", "--t", "0.5", "--centroid"], "not --t and --centroid"),
        (["m0", "m1", "--path", "bezeir", "--t", "0.5"], "--path: Unknown path 'bezeir'"),
        (["m0", "m1", "--t", "0.5", "--reference", "2"], "--reference: 2 is no anchor index"),
        (["m0", "m1", "--t", "0.5", "--mix", "line"], "--mix chooses a path of a --from-run"),
        (["m0", "--centroid"], "--centroid: name 2 or more ANCHORS"),
    ],
)
def test_bad_input_exits_2_naming_the_flag(tiny_models, tmp_path, capsys, extra, message):
    zoo = write_zoo(tmp_path, tiny_models)
    out = tmp_path / "o"
    assert main(["export", "--zoo", str(zoo), *extra, "--out", str(out), "--device", "cpu"]) == 2
    error = capsys.readouterr().err
    assert message in error and "Traceback" not in error
    assert not out.exists()


def test_an_existing_folder_that_is_no_export_is_refused(tiny_models, tmp_path, capsys):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    argv = ["export", str(tiny_models[0]), str(tiny_models[1]), "--t", "0.5", "--out", str(out)]
    assert main(argv) == 2
    assert "--out: " in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


def test_from_run_refuses_what_is_no_finished_run(tiny_models, tmp_path):
    with pytest.raises(WeightscapeError, match=r"--from-run: .* holds no run\.json"):
        run_export({"from_run": str(tiny_models[0]), "out": str(tmp_path / "x")})
    with pytest.raises(WeightscapeError, match="--from-run uses the run's settings; leave out"):
        run_export({"from_run": str(tmp_path), "space": "no-head", "out": str(tmp_path / "x")})
    with pytest.raises(WeightscapeError, match="--from-run exports with the run's own anchors"):
        run_export({"from_run": str(tmp_path), "anchors": ["a"], "out": str(tmp_path / "x")})


def tiny_encoder_decoder(kind: str, seed: int, folder):
    """A tiny T5 or BART classifier (tied input/output embeddings) saved as a model folder."""
    from transformers import (
        BartConfig,
        BartForSequenceClassification,
        T5Config,
        T5ForSequenceClassification,
    )

    labels = {"id2label": {0: "negative", 1: "positive"}}
    labels["label2id"] = {"negative": 0, "positive": 1}
    torch.manual_seed(seed)
    if kind == "t5":
        config = T5Config(
            vocab_size=64, d_model=16, d_kv=8, d_ff=32, num_layers=1, num_heads=2,
            decoder_start_token_id=0, pad_token_id=0, eos_token_id=1, **labels,
        )  # fmt: skip
        model = T5ForSequenceClassification(config)
    else:
        config = BartConfig(
            vocab_size=64, d_model=16, encoder_layers=1, decoder_layers=1,
            encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32,
            decoder_ffn_dim=32, max_position_embeddings=32, pad_token_id=1, bos_token_id=0,
            eos_token_id=2, **labels,
        )  # fmt: skip
        model = BartForSequenceClassification(config)
    model.save_pretrained(str(folder))
    return folder


@pytest.mark.parametrize("kind", ["t5", "bart"])
def test_encoder_decoders_with_tied_embeddings_export_with_no_missing_keys(kind, tmp_path, capsys):
    from weightscape.evaluation.working_model import WorkingModel

    a, b = (tiny_encoder_decoder(kind, seed, tmp_path / f"{kind}{seed}") for seed in (0, 1))
    out = tmp_path / "mid"
    assert main(["export", str(a), str(b), "--t", "0.5", "--out", str(out)]) == 0, (
        capsys.readouterr().err
    )
    exported = load_export(out)
    working = WorkingModel(Checkpoint.from_path(a))
    anchors = working.anchors([Checkpoint.from_path(a), Checkpoint.from_path(b)])
    working.write(anchors, [0.5, 0.5], working_space())
    ids = torch.tensor([[5, 9, 13, 0], [7, 11, 12, 0]])
    ids[:, -1] = exported.config.eos_token_id  # one eos per example, last
    with torch.no_grad():
        assert torch.equal(
            exported(input_ids=ids).logits, working.model.eval()(input_ids=ids).logits
        )


def working_space():
    from weightscape.models.space import ParameterSpace

    return ParameterSpace()


def test_learned_mix_of_a_combine_run(tiny_models, tiny_csv, tiny_task, tokenizer_dir, tmp_path):
    from weightscape.evaluation.grouped import GroupedPoint

    run_dir, out = tmp_path / "combine-run", tmp_path / "layer-mix"
    pair_run("combine", tiny_models, tiny_csv, run_dir, "--group-by", "layer")
    alphas = json.loads((run_dir / "combination-layer.json").read_text())["alphas"]
    lines = run_export({"from_run": str(run_dir), "mix": "layer", "out": str(out)})
    assert "the learned layer-wise mix" in lines[0] and "layer groups" in lines[1]
    groups = {g: [a, 1.0 - a] for g, a in alphas.items()}
    assert provenance(out)["coefficients"] == {"group_by": "layer", "groups": groups}
    assert len({round(a, 9) for a in alphas.values()}) > 1  # a real per-layer mix, not a line
    point = GroupedPoint.from_mapping("layer", groups)
    exported = load_export(out)
    engine = engine_for(tiny_models[:2], tiny_task)
    engine.working.write(engine.anchors, point, engine.space, engine.reference)
    expected = logits_of(engine.working.model, tokenizer_dir)
    assert torch.equal(logits_of(exported, tokenizer_dir), expected)
    with pytest.raises(WeightscapeError, match="--t: a learned layer-wise mix is no path"):
        run_export({"from_run": str(run_dir), "mix": "layer", "t": 0.5, "out": str(out)})


def test_bottleneck_adapter_models_are_refused_not_silently_dropped(tiny_models, tmp_path, capsys):
    """transformers cannot load bottleneck adapters: an exported folder would load without them,
    silently another model, so the command refuses and says what it can export."""
    import shutil

    from weightscape.cli.main import main
    from weightscape.models.tuning.adapter import AdapterSpec
    from weightscape.models.tuning_spec import write_tuning_spec

    adapted = tmp_path / "adapted"
    shutil.copytree(tiny_models[0], adapted)
    write_tuning_spec(adapted, AdapterSpec(bottleneck=4))
    argv = ["export", str(adapted), str(tiny_models[1]), "--t", "0.5", "--out", str(tmp_path / "o")]
    assert main([*argv, "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "bottleneck adapters" in err and "adapted" in err  # names the anchor
    assert "Traceback" not in err
    assert not (tmp_path / "o" / "model.safetensors").exists()
