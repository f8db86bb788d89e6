"""The finetune study's config: FinetuneConfig's fields as flags, the tuning method spelled flat,
and the cross-field rules of ``weightscape finetune`` (one message each, naming the flags)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from weightscape.cli.main import main
from weightscape.models.tuning.adapter import AdapterSpec
from weightscape.models.tuning.lora import LoraSpec
from weightscape.studies.finetune import RUN_FIELDS, Config
from weightscape.training.finetune import FinetuneConfig


def _message(err: pytest.ExceptionInfo) -> str:
    return "\n".join(e["msg"] for e in err.value.errors())


def test_every_finetune_option_is_a_field_with_its_default_and_bounds():
    for name, info in FinetuneConfig.model_fields.items():
        if name == "tuning":  # spelled flat: --method and each method's options
            assert "method" in Config.model_fields and "lora_r" in Config.model_fields
            continue
        if name == "name":  # required in a run config, optional beside --zoo-file
            with pytest.raises(ValidationError, match="one folder name"):
                Config(name="../x")  # the same validator, inside `RunName | None`
            continue
        ours = Config.model_fields[name]
        assert ours.metadata == info.metadata, name
        assert ours.default == info.default and ours.default_factory == info.default_factory


def test_flat_flags_build_the_tuning_spec():
    config = Config.model_validate(
        {"name": "r", "method": "lora", "lora_r": "4", "lora_target_modules": ["query"]}
    )
    run = config.finetune_config()
    assert run.tuning == LoraSpec(r=4, target_modules=("query",))
    assert run == FinetuneConfig(name="r", method="lora", lora_r=4, lora_target_modules=("query",))
    assert Config(name="a").finetune_config() == FinetuneConfig(name="a")
    assert Config(split="test", name="a").split == "test" and Config(name="a").split == "train"


def test_a_run_needs_a_name_or_a_zoo_file():
    with pytest.raises(ValidationError) as err:
        Config()
    assert "give --name for one run, or --zoo-file for many" in _message(err)
    assert Config(zoo_file=Path("z.yaml")).name is None


def test_a_zoo_file_refuses_run_options_and_names_them():
    with pytest.raises(ValidationError) as err:
        Config(zoo_file=Path("z.yaml"), steps=3, lora_r=4)
    assert (
        "--zoo-file describes the runs and their settings; do not also give --steps, --lora-r"
        in (_message(err))
    )
    # task, output and device settings go with a zoo file
    Config(zoo_file=Path("z.yaml"), task="mnli_like", out=Path("o"), device="auto")


def test_another_methods_options_are_refused_on_the_command_line():
    with pytest.raises(ValidationError) as err:
        Config(name="a", method="full", lora_r=4)
    assert "--lora-r only applies to --method lora; this run uses --method full" in _message(err)
    with pytest.raises(ValidationError) as err:
        Config(name="a", method="lora", adapter_bottleneck=4, adapter_nonlinearity="relu")
    assert (
        "--adapter-bottleneck, --adapter-nonlinearity only apply to --method adapter; this run "
        "uses --method lora"
    ) in _message(err)


def test_tags_are_key_value_pairs():
    assert Config(name="a", tags="family=nli,size=3").tags == {"family": "nli", "size": 3}
    with pytest.raises(ValidationError, match="give tags as key=value,key=value; 'nli' is not"):
        Config(name="a", tags="nli")
    with pytest.raises(ValidationError, match="tags weightscape sets itself"):
        Config(name="a", tags="lora_r=4")


def test_run_fields_are_finetune_fields_only():
    task_and_output = {"zoo_file", "out", "device", "progress", "task", "split", "subset"}
    assert not task_and_output & set(RUN_FIELDS)
    assert set(RUN_FIELDS) >= set(FinetuneConfig.model_fields) - {"tuning"}


def test_flat_and_nested_tuning_are_one_config():
    nested = FinetuneConfig(name="a", tuning={"method": "adapter", "bottleneck": 8})
    assert nested == FinetuneConfig(name="a", method="adapter", adapter_bottleneck=8)
    assert nested.tuning == AdapterSpec(bottleneck=8) and nested.method == "adapter"
    # another method's flat options are checked, then ignored (one sweep, several methods)
    assert FinetuneConfig(name="a", lora_r=4).tuning.method == "full"
    with pytest.raises(ValidationError, match="adapter_bottleneck: Input should be greater"):
        FinetuneConfig(name="a", method="lora", adapter_bottleneck=0)
    with pytest.raises(ValidationError, match="either as 'tuning' or as flat keys"):
        FinetuneConfig(name="a", method="lora", tuning={"method": "lora"})
    with pytest.raises(ValidationError, match="does not match any of the expected tags"):
        FinetuneConfig(name="a", method="prefix")


def test_cli_lora_run_with_flat_flags(tiny_models, tiny_csv, tmp_path, capsys):
    argv = ["finetune", "--name", "lo", "--base", str(tiny_models[0]), "--task", str(tiny_csv)]
    argv += ["--method", "lora", "--lora-r", "2", "--lora-target-modules", "query,key"]
    argv += ["--steps", "1", "--batch-size", "4", "--max-length", "16", "--out", str(tmp_path)]
    assert main([*argv, "--tags", "family=toy", "--no-progress"]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out.splitlines()
    assert out == [
        f"saved lo: {tmp_path / 'lo' / 'step-1'}",
        f"zoo manifest: {tmp_path / 'zoo.yaml'}",
        f"provenance: {tmp_path / 'run.json'}",
    ]
    from weightscape.models.tuning_spec import read_tuning_spec
    from weightscape.models.zoo import Zoo

    assert read_tuning_spec(tmp_path / "lo" / "step-1") == LoraSpec(
        r=2, target_modules=("query", "key")
    )
    tags = Zoo.from_manifest(tmp_path / "zoo.yaml")["lo"].tags
    assert (tags["method"], tags["lora_r"], tags["lora_alpha"], tags["family"]) == (
        "lora",
        2,
        16.0,
        "toy",
    )
