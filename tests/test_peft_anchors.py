"""Standard peft LoRA adapter folders as anchors, exports of adapter-space points, and
weightscape's own LoRA runs saved as peft folders.

The adapters are trained with peft itself (``get_peft_model`` on a tiny BERT classifier, a few
plain torch steps, ``save_pretrained``), and every expectation is the libraries' own model:
``PeftModel.from_pretrained(base, folder)`` for adapters, ``from_pretrained`` for merged models.
"""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
import torch
import yaml

from conftest import generated_texts
from weightscape.errors import WeightscapeError
from weightscape.models.checkpoint import Checkpoint
from weightscape.models.space import ParameterSpace

pytestmark = pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing`:FutureWarning")

LORA = {"r": 4, "lora_alpha": 8, "target_modules": ["query", "value"]}


def _plain(folder, **kwargs):
    from transformers import AutoModelForSequenceClassification

    return AutoModelForSequenceClassification.from_pretrained(
        str(folder), local_files_only=True, trust_remote_code=False, **kwargs
    )


def _train_with_peft(base, tokenizer_dir, folder, seed: int):
    """A LoRA adapter trained by peft itself: 12 AdamW steps on generated sentences."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoTokenizer

    torch.manual_seed(seed)
    model = get_peft_model(_plain(base), LoraConfig(task_type="SEQ_CLS", **LORA))
    tokenizer = AutoTokenizer.from_pretrained(
        str(tokenizer_dir), local_files_only=True, trust_remote_code=False
    )
    texts, labels = generated_texts(96, seed=10 + seed)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-2)
    model.train()
    for step in range(12):
        rows = slice(8 * step, 8 * step + 8)
        inputs = tokenizer(texts[rows], padding=True, return_tensors="pt")
        loss = model(**inputs, labels=torch.tensor(labels[rows])).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="module")
def adapters(tiny_models, tokenizer_dir, tmp_path_factory):
    """Two peft LoRA adapters over one tiny BERT base, and the base."""
    root = tmp_path_factory.mktemp("peft")
    base = tiny_models[0]
    folders = [_train_with_peft(base, tokenizer_dir, root / f"adapter{s}", s) for s in (0, 1)]
    return base, folders


def _peft_model(base, folder):
    """The adapter as peft itself loads it, over the base as transformers loads it."""
    from peft import PeftModel

    model = PeftModel.from_pretrained(
        _plain(base), str(folder), local_files_only=True, trust_remote_code=False
    )
    return model.eval()


def _evaluate(model, tiny_task, tokenizer_dir):
    from weightscape.evaluation.evaluator import Evaluator, load_tokenizer

    return Evaluator(load_tokenizer(tokenizer_dir), tiny_task).evaluate(model)


def _logits(model, tiny_task, tokenizer_dir) -> torch.Tensor:
    """Plain transformers logits of the task's sentences (one padded batch)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(
        str(tokenizer_dir), local_files_only=True, trust_remote_code=False
    )
    inputs = tokenizer(list(tiny_task.text_a), padding=True, return_tensors="pt")
    with torch.no_grad():
        return model.eval()(**inputs).logits


def test_peft_adapters_interpolate_and_endpoints_reproduce_peft(adapters, tiny_task, tokenizer_dir):
    from weightscape.evaluation.engine import Engine

    base, folders = adapters
    config = json.loads((folders[0] / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == str(base)  # how peft recorded it
    a, b = (Checkpoint.from_path(f) for f in folders)
    assert a.adapter_base == base
    engine = Engine([a, b], tiny_task, space=ParameterSpace("tuned"), device="cpu")
    for coefficients, folder in (((1.0, 0.0), folders[0]), ((0.0, 1.0), folders[1])):
        walked = engine.evaluate(coefficients)
        alone = _evaluate(_peft_model(base, folder), tiny_task, tokenizer_dir)
        np.testing.assert_array_equal(walked.losses, alone.losses)
        np.testing.assert_array_equal(walked.predictions, alone.predictions)
    ends = [engine.evaluate(c).losses for c in ((1.0, 0.0), (0.0, 1.0))]
    assert not np.array_equal(ends[0], ends[1])
    middle = engine.evaluate((0.5, 0.5)).losses
    assert np.isfinite(middle).all() and not any(np.array_equal(middle, e) for e in ends)


def test_exported_midpoint_loads_in_peft_and_merged_in_transformers(
    adapters, tiny_task, tokenizer_dir, tmp_path
):
    from weightscape.evaluation.engine import Engine
    from weightscape.evaluation.export import save_combination

    base, folders = adapters
    anchors = [Checkpoint.from_path(f) for f in folders]
    space = ParameterSpace("tuned")
    engine_point = Engine(anchors, tiny_task, space=space, device="cpu").evaluate((0.5, 0.5))

    adapter = save_combination(anchors, [0.5, 0.5], tmp_path / "mid", space=space, format="peft")
    assert {"adapter_config.json", "adapter_model.safetensors"} <= {
        p.name for p in adapter.path.iterdir()
    }
    in_peft = _peft_model(base, adapter.path)
    alone = _evaluate(in_peft, tiny_task, tokenizer_dir)
    np.testing.assert_array_equal(engine_point.losses, alone.losses)  # the same tensors: exact
    np.testing.assert_array_equal(engine_point.predictions, alone.predictions)
    again = Engine([adapter], tiny_task, space=space, device="cpu").evaluate((1.0,))
    np.testing.assert_array_equal(again.losses, engine_point.losses)  # the export is an anchor

    merged = save_combination(anchors, [0.5, 0.5], tmp_path / "merged", space=space)
    plain, info = _plain(merged.path, output_loading_info=True)
    assert not any(info[k] for k in ("missing_keys", "unexpected_keys", "mismatched_keys"))
    reference = _logits(in_peft, tiny_task, tokenizer_dir)
    # W + (alpha/r) B A against the LoRA forward: float rounding only.
    torch.testing.assert_close(
        _logits(plain, tiny_task, tokenizer_dir), reference, atol=1e-6, rtol=0
    )
    alone = _evaluate(plain, tiny_task, tokenizer_dir)
    np.testing.assert_allclose(alone.losses, engine_point.losses, atol=1e-6, rtol=0)


def test_peft_export_refuses_a_point_that_moves_the_base(adapters, tmp_path):
    from weightscape.evaluation.export import save_combination

    anchors = [Checkpoint.from_path(f) for f in adapters[1]]
    with pytest.raises(WeightscapeError, match=r"frozen base weights.*'tuned'"):
        save_combination(anchors, [0.7, 0.7], tmp_path / "out", format="peft")
    with pytest.raises(WeightscapeError, match=r"'format' parameter.*Got 'lora'"):
        save_combination(anchors, [0.5, 0.5], tmp_path / "out", format="lora")


def test_a_missing_base_is_a_clear_error(adapters, tmp_path):
    base, folders = adapters
    moved = tmp_path / "moved"
    shutil.copytree(folders[0], moved)
    config = json.loads((moved / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = "org/some-hub-model"
    (moved / "adapter_config.json").write_text(json.dumps(config))
    with pytest.raises(WeightscapeError, match=r"needs its base model.*org/some-hub-model.*never"):
        Checkpoint.from_path(moved)
    given = Checkpoint.from_path(moved, adapter_base=base)
    assert given.adapter_base == base
    assert given.content_hash() != Checkpoint.from_path(folders[0]).content_hash()  # config moved
    with pytest.raises(WeightscapeError, match="not a peft adapter folder"):
        Checkpoint.from_path(base, adapter_base=base)


def test_zoo_entries_give_the_base(adapters, tmp_path):
    from weightscape.models.zoo import Zoo

    base, folders = adapters
    for k, folder in enumerate(folders):
        moved = tmp_path / f"a{k}"
        shutil.copytree(folder, moved)
        config = json.loads((moved / "adapter_config.json").read_text())
        config["base_model_name_or_path"] = None
        (moved / "adapter_config.json").write_text(json.dumps(config))
    manifest = tmp_path / "zoo.yaml"
    manifest.write_text(
        f"adapter_base: {base}\nmodels:\n  - {{name: a0, path: a0}}\n"
        f"  - {{name: a1, path: a1, adapter_base: {base}}}\n  - {{name: full, path: {base}}}\n"
    )
    zoo = Zoo.from_manifest(manifest)
    assert [c.adapter_base for c in zoo] == [base, base, None]
    manifest.write_text("models:\n  - {name: a0, path: a0}\n")
    with pytest.raises(WeightscapeError, match=r"models.0 \('a0'\).*needs its base model"):
        Zoo.from_manifest(manifest)


def test_content_hash_covers_the_base_and_the_adapter(adapters, tiny_models, tmp_path):
    _, folders = adapters
    first = Checkpoint.from_path(folders[0]).content_hash()
    assert Checkpoint.from_path(folders[0], adapter_base=tiny_models[1]).content_hash() != first
    copy = tmp_path / "copy"
    shutil.copytree(folders[0], copy)
    assert Checkpoint.from_path(copy).content_hash() == first  # same files, same content
    shutil.copy(folders[1] / "adapter_model.safetensors", copy / "adapter_model.safetensors")
    assert Checkpoint.from_path(copy).content_hash() != first


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("use_dora", True),
        ("use_rslora", True),
        ("bias", "all"),
        ("peft_type", "IA3"),
        ("rank_pattern", {"query": 2}),
    ],
)
def test_unsupported_adapters_are_refused_naming_the_field(adapters, tmp_path, field, value):
    folder = tmp_path / "odd"
    shutil.copytree(adapters[1][0], folder)
    config = json.loads((folder / "adapter_config.json").read_text())
    config[field] = value
    (folder / "adapter_config.json").write_text(json.dumps(config))
    with pytest.raises(WeightscapeError, match=f"'{folder}' cannot be an anchor: {field} is"):
        Checkpoint.from_path(folder)


def _losses(checkpoint: Checkpoint, task) -> np.ndarray:
    """The engine's per-example losses of one checkpoint."""
    from weightscape.evaluation.engine import Engine

    return Engine([checkpoint], task, device="cpu").evaluate((1.0,)).losses


def _engine_matches_peft(checkpoint, base, tiny_task, tokenizer_dir, **base_kwargs):
    """The engine's outputs for a LoRA checkpoint equal peft's own model over ``base``."""
    from peft import PeftModel

    from weightscape.evaluation.engine import Engine

    walked = Engine([checkpoint], tiny_task, device="cpu").evaluate((1.0,))
    in_peft = PeftModel.from_pretrained(
        _plain(base, **base_kwargs), str(checkpoint.path), trust_remote_code=False
    )
    alone = _evaluate(in_peft.eval(), tiny_task, tokenizer_dir)
    np.testing.assert_array_equal(walked.losses, alone.losses)
    np.testing.assert_array_equal(walked.predictions, alone.predictions)
    return walked


def test_finetune_lora_run_is_a_peft_folder_with_the_engines_outputs(
    tiny_models, tiny_csv, tiny_task, tokenizer_dir, tmp_path, capsys
):
    from weightscape.cli.main import main
    from weightscape.models.zoo import Zoo

    argv = ["finetune", "--name", "lo", "--base", str(tiny_models[0]), "--task", str(tiny_csv)]
    argv += ["--method", "lora", "--lora-r", "4", "--steps", "4", "--batch-size", "8"]
    argv += ["--lr", "1e-2", "--out", str(tmp_path / "zoo"), "--no-progress"]
    assert main(argv) == 0, capsys.readouterr().err
    zoo = Zoo.from_manifest(tmp_path / "zoo" / "zoo.yaml")
    run = zoo["lo"]
    assert run.adapter_base.resolve() == tiny_models[0].resolve()  # relative in zoo.yaml
    assert not os.path.isabs(yaml.safe_load((tmp_path / "zoo" / "zoo.yaml").read_text())[
        "models"][-1]["adapter_base"])  # fmt: skip
    files = {p.name for p in run.path.iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors", "config.json"} <= files
    assert not files & {"model.safetensors", "weightscape_tuning.json"}
    walked = _engine_matches_peft(run, tiny_models[0], tiny_task, tokenizer_dir)
    plain = _losses(Checkpoint.from_path(tiny_models[0]), tiny_task)
    assert not np.array_equal(walked.losses, plain)  # the adapter changed the function
    with pytest.raises(OSError, match=r"model.safetensors"):  # loud, never random weights
        _plain(run.path)


def test_lora_run_with_init_noise_applies_to_its_own_saved_base(
    tiny_models, tiny_task, tokenizer_dir, tmp_path
):
    from weightscape.training.finetune import FinetuneConfig, finetune
    from weightscape.training.sweeps import _finished

    config = FinetuneConfig(
        name="noisy", base=str(tiny_models[0]), method="lora", lora_r=4, steps=3, batch_size=8,
        lr=1e-2, max_length=16, init_noise_std=0.01,
    )  # fmt: skip
    run = finetune(config, tiny_task, tmp_path)[-1]
    assert run.adapter_base == (tmp_path / "noisy" / "base").resolve()
    assert _finished(config, tmp_path)  # a sweep resumes past it
    walked = _engine_matches_peft(run, run.adapter_base, tiny_task, tokenizer_dir)
    over_pretrained = Checkpoint.from_path(run.path, adapter_base=tiny_models[0])
    other = _losses(over_pretrained, tiny_task)
    assert not np.array_equal(walked.losses, other)  # the noise is part of what it computes


def test_lora_over_a_bare_encoder_base(tokenizer_dir, tiny_task, tmp_path):
    """A base saved without its task model's prefix (a BertModel, as MiniLM ships)."""
    from transformers import BertModel

    from conftest import tiny_config
    from weightscape.training.finetune import FinetuneConfig, finetune

    torch.manual_seed(5)
    BertModel(tiny_config()).save_pretrained(str(tmp_path / "bare"))
    for f in tokenizer_dir.iterdir():
        shutil.copy(f, tmp_path / "bare" / f.name)
    config = FinetuneConfig(
        name="bare-lora", base=str(tmp_path / "bare"), method="lora", lora_r=4, steps=3,
        batch_size=8, lr=1e-2, max_length=16,
    )  # fmt: skip
    run = finetune(config, tiny_task, tmp_path / "zoo")[-1]
    _engine_matches_peft(run, tmp_path / "bare", tiny_task, tokenizer_dir, num_labels=2)


def test_interpolate_and_grid_take_adapter_folders(adapters, tiny_csv, tmp_path, capsys):
    from weightscape.cli.main import main

    base, folders = adapters
    argv = ["interpolate", str(folders[0]), str(folders[1]), "--task", str(tiny_csv)]
    argv += ["--split", "all", "--space", "tuned", "--points", "3", "--device", "cpu"]
    assert main([*argv, "--out", str(tmp_path / "walk"), "--no-progress"]) == 0, (
        capsys.readouterr().err
    )
    walk = json.loads((tmp_path / "walk" / "path.json").read_text())
    losses = [p["metrics"]["loss"] for p in walk["points"]]
    assert len(losses) == 3 and np.isfinite(losses).all() and losses[0] != losses[-1]
    for k, folder in enumerate(folders):  # a zoo of adapters whose configs name no base
        config = json.loads((folder / "adapter_config.json").read_text())
        shutil.copytree(folder, tmp_path / f"a{k}")
        config["base_model_name_or_path"] = None
        (tmp_path / f"a{k}" / "adapter_config.json").write_text(json.dumps(config))
    (tmp_path / "zoo.yaml").write_text(
        f"adapter_base: {base}\nmodels:\n  - {{name: a0, path: a0}}\n  - {{name: a1, path: a1}}\n"
    )
    argv = ["grid", "--zoo", str(tmp_path / "zoo.yaml"), "--task", str(tiny_csv), "--split", "all"]
    argv += ["--space", "tuned", "--points", "3", "--device", "cpu", "--no-progress"]
    assert main([*argv, "--out", str(tmp_path / "grid")]) == 0, capsys.readouterr().err


def test_a_folder_with_an_adapter_and_full_weights_is_refused(adapters, tmp_path):
    base, folders = adapters
    folder = tmp_path / "both"
    shutil.copytree(folders[0], folder)
    shutil.copy(base / "model.safetensors", folder / "model.safetensors")
    with pytest.raises(WeightscapeError, match=r"both a peft adapter .* and full weights"):
        Checkpoint.from_path(folder)


def test_earlier_lora_format_still_loads_and_exports_merged(
    adapters, tiny_task, tokenizer_dir, tmp_path
):
    """A LoRA checkpoint saved whole (working-model names + weightscape_tuning.json), as
    weightscape saved LoRA runs before, reads as before: the same function as the peft folder
    it was written from; exported as a model, its LoRA is merged."""
    from safetensors.torch import save_file

    from weightscape.evaluation.export import save_combination
    from weightscape.evaluation.working_model import WorkingModel
    from weightscape.models.tuning_spec import SIDECAR, write_tuning_spec

    base, folders = adapters
    adapter = Checkpoint.from_path(folders[0])
    working = WorkingModel(adapter)
    working.write(working.anchors([adapter]), [1.0], ParameterSpace())
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    save_file(
        {n: t.contiguous() for n, t in working.state.items()},
        str(legacy / "model.safetensors"),
        metadata={"format": "pt"},
    )
    for item in tokenizer_dir.iterdir():
        shutil.copy(item, legacy / item.name)
    shutil.copy(base / "config.json", legacy / "config.json")
    write_tuning_spec(legacy, working_spec := _spec_of(adapter))
    assert json.loads((legacy / SIDECAR).read_text())["method"] == "lora" and working_spec.r == 4
    old = Checkpoint.from_path(legacy)
    assert old.adapter_base is None
    np.testing.assert_array_equal(_losses(old, tiny_task), _losses(adapter, tiny_task))
    merged = save_combination([old], [1.0], tmp_path / "merged")
    assert not (merged.path / SIDECAR).exists()
    plain = _plain(merged.path)
    reference = _logits(_peft_model(base, folders[0]), tiny_task, tokenizer_dir)
    torch.testing.assert_close(
        _logits(plain, tiny_task, tokenizer_dir), reference, atol=1e-6, rtol=0
    )


def _spec_of(checkpoint: Checkpoint):
    from weightscape.models.peft_anchor import tuning_spec_of

    return tuning_spec_of(checkpoint)


def test_a_curve_between_adapters_saves_controls_that_load(adapters, tiny_task, tmp_path):
    """Control points hold whole LoRA models (the earlier format), never an adapter config that
    would make their folders adapter folders with the wrong weights."""
    from weightscape.evaluation.engine import Engine
    from weightscape.training.curve_fit import CurveConfig, fit_curve

    a, b = (Checkpoint.from_path(f) for f in adapters[1])
    config = CurveConfig(steps=2, batch_size=8, lr=1e-3, eval_every=0)
    space = ParameterSpace("tuned")
    anchors, _ = fit_curve(a, b, tiny_task, tmp_path, config=config, space=space)
    control = anchors[1]
    assert not (control.path / "adapter_config.json").exists() and control.adapter_base is None
    curve = Engine(anchors, tiny_task, space=space, device="cpu")
    np.testing.assert_array_equal(curve.evaluate((1.0, 0.0, 0.0)).losses, _losses(a, tiny_task))
    assert np.isfinite(curve.evaluate((0.0, 1.0, 0.0)).losses).all()


def test_reader_serves_base_and_adapter_under_the_working_models_names(adapters):
    from safetensors.torch import load_file

    from weightscape.models.architecture import build_model
    from weightscape.models.checkpoint import TensorReader

    base, folders = adapters
    checkpoint = Checkpoint.from_path(folders[0])
    reader = TensorReader(checkpoint)
    assert set(reader.keys()) == set(build_model(checkpoint).state_dict())
    stored_base = load_file(str(base / "model.safetensors"))
    stored_adapter = load_file(str(folders[0] / "adapter_model.safetensors"))
    query = "bert.encoder.layer.1.attention.self.query"
    assert torch.equal(reader.get(f"{query}.base_layer.weight"), stored_base[f"{query}.weight"])
    assert torch.equal(
        reader.get(f"{query}.lora_B.default.weight"),
        stored_adapter[f"base_model.model.{query}.lora_B.weight"],
    )
    assert torch.equal(  # the adapter's head, not the base's
        reader.get("classifier.weight"), stored_adapter["base_model.model.classifier.weight"]
    )
    assert not torch.equal(stored_base["classifier.weight"], reader.get("classifier.weight"))
    for name in (f"{query}.base_layer.weight", f"{query}.lora_A.default.weight"):
        rows = reader.get(name).reshape(reader.shape(name)[0], -1)
        assert torch.equal(reader.read_rows(name, 1, 3), rows[1:3])
        assert reader.dtype(name) == "float32" and reader.is_floating_point(name)


def test_a_nonfinite_adapter_weight_is_refused_by_its_served_name(adapters, tiny_task, tmp_path):
    from safetensors.torch import load_file, save_file

    from weightscape.evaluation.engine import Engine

    folder = tmp_path / "nan"
    shutil.copytree(adapters[1][0], folder)
    state = load_file(str(folder / "adapter_model.safetensors"))
    name = "base_model.model.bert.encoder.layer.0.attention.self.value.lora_B.weight"
    state[name][0, 0] = float("nan")
    save_file(state, str(folder / "adapter_model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(WeightscapeError, match=r"(?s)not finite.*value\.lora_B\.default\.weight"):
        Engine([Checkpoint.from_path(folder)], tiny_task, device="cpu")


def test_merged_export_keeps_the_asked_dtype(adapters, tmp_path):
    from safetensors import safe_open

    from weightscape.evaluation.export import save_combination

    anchors = [Checkpoint.from_path(f) for f in adapters[1]]
    space = ParameterSpace("tuned")
    merged = save_combination(anchors, [0.5, 0.5], tmp_path / "m", space=space, dtype="bfloat16")
    with safe_open(str(merged.path / "model.safetensors"), "pt") as handle:
        assert {handle.get_slice(k).get_dtype() for k in handle.keys()} == {"BF16"}  # noqa: SIM118
    _, info = _plain(merged.path, output_loading_info=True)
    assert not any(info[k] for k in ("missing_keys", "unexpected_keys", "mismatched_keys"))


def test_adapter_base_flag_gives_the_base_on_the_command_line(adapters, tiny_csv, tmp_path, capsys):
    """Adapters whose config names a hub id need --adapter-base; with it they walk to the same
    numbers as with the base their config names; without it, or given to full models, exit 2
    naming the flag or the folder."""
    from weightscape.cli.main import main

    base, folders = adapters
    moved = []
    for k, folder in enumerate(folders):
        shutil.copytree(folder, tmp_path / f"a{k}")
        config = json.loads((folder / "adapter_config.json").read_text())
        config["base_model_name_or_path"] = "org/some-hub-model"
        (tmp_path / f"a{k}" / "adapter_config.json").write_text(json.dumps(config))
        moved.append(tmp_path / f"a{k}")
    common = ["--task", str(tiny_csv), "--split", "all", "--space", "tuned", "--points", "3"]
    common += ["--device", "cpu", "--no-progress"]
    argv = ["interpolate", *map(str, moved), *common, "--out", str(tmp_path / "refused")]
    assert main(argv) == 2
    assert "needs its base model" in capsys.readouterr().err
    argv = ["interpolate", *map(str, moved), *common, "--adapter-base", str(base)]
    assert main([*argv, "--out", str(tmp_path / "given")]) == 0, capsys.readouterr().err
    argv = ["interpolate", *map(str, folders), *common, "--out", str(tmp_path / "named")]
    assert main(argv) == 0, capsys.readouterr().err
    given, named = (
        [
            p["metrics"]["loss"]
            for p in json.loads((tmp_path / d / "path.json").read_text())["points"]
        ]
        for d in ("given", "named")
    )
    assert given == named
    argv = ["interpolate", str(base), str(base), *common, "--adapter-base", str(base)]
    assert main([*argv, "--out", str(tmp_path / "unused")]) == 2
    assert "--adapter-base" in capsys.readouterr().err
