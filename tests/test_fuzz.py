"""Fuzzing the untrusted inputs: a safetensors header, config.json, zoo manifests, task tables and
study files. Whatever hypothesis makes of them, the answer is a result or one WeightscapeError,
never another exception."""

from __future__ import annotations

import contextlib
import json
import shutil
import struct
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from weightscape.errors import WeightscapeError

FUZZ = settings(
    max_examples=40,
    derandomize=True,  # the same examples every run: CI is deterministic
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
DTYPES = ["F32", "F16", "BF16", "I32", "I64", "U8", "BOOL", "F64", "X9", ""]
names = st.text(st.characters(min_codepoint=32, max_codepoint=0x2FF), min_size=0, max_size=12)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 10**6) | st.floats(allow_nan=False) | names,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(names, inner, max_size=4),
    max_leaves=12,
)


def _scratch() -> Path:
    return Path(tempfile.mkdtemp(prefix="fuzz-"))


@pytest.fixture(scope="module")
def working(tiny_models):
    from weightscape.evaluation.working_model import WorkingModel
    from weightscape.models.checkpoint import Checkpoint

    return WorkingModel(Checkpoint.from_path(tiny_models[0]), device="cpu")


def _header_entry():
    return st.fixed_dictionaries(
        {
            "dtype": st.sampled_from(DTYPES),
            "shape": st.lists(st.integers(-1, 70), max_size=3),
            "data_offsets": st.lists(st.integers(-8, 10**5), min_size=0, max_size=3),
        }
    )


@FUZZ
@given(
    entries=st.dictionaries(
        st.sampled_from(["classifier.bias", "classifier.weight", "bert.pooler.dense.bias", "x"]),
        _header_entry(),
        max_size=4,
    ),
    raw=st.one_of(st.none(), st.binary(max_size=64)),
)
def test_a_fuzzed_safetensors_header_is_read_or_refused(entries, raw, tiny_models, working):
    from weightscape.models.checkpoint import Checkpoint

    folder = _scratch()
    try:
        shutil.copy(tiny_models[0] / "config.json", folder / "config.json")
        original = (tiny_models[0] / "model.safetensors").read_bytes()
        size = struct.unpack("<Q", original[:8])[0]
        header = json.loads(original[8 : 8 + size])
        header.update(entries)
        blob = raw if raw is not None else json.dumps(header).encode()
        body = original[8 + size :]
        (folder / "model.safetensors").write_bytes(struct.pack("<Q", len(blob)) + blob + body)
        with contextlib.suppress(WeightscapeError):
            working.anchors([Checkpoint.from_path(folder)])
    finally:
        shutil.rmtree(folder)


@FUZZ
@given(changes=st.dictionaries(
    st.sampled_from(["hidden_size", "num_attention_heads", "num_hidden_layers", "model_type",
                     "vocab_size", "id2label", "intermediate_size", "hidden_act", "architectures",
                     "max_position_embeddings", "auto_map"]),
    json_values, max_size=3,
))  # fmt: skip
def test_a_fuzzed_config_builds_or_is_refused(changes, tiny_models):
    from weightscape.models.architecture import build_model
    from weightscape.models.checkpoint import Checkpoint

    folder = _scratch()
    try:
        config = json.loads((tiny_models[0] / "config.json").read_text())
        config.update(changes)
        (folder / "config.json").write_text(json.dumps(config))
        shutil.copy(tiny_models[0] / "model.safetensors", folder / "model.safetensors")
        with contextlib.suppress(WeightscapeError):
            build_model(Checkpoint.from_path(folder))
    finally:
        shutil.rmtree(folder)


@FUZZ
@given(data=json_values | st.text(max_size=80))
def test_a_fuzzed_zoo_manifest_loads_or_is_refused(data):
    from weightscape.models.zoo import Zoo

    folder = _scratch()
    try:
        path = folder / "zoo.yaml"
        path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
        with contextlib.suppress(WeightscapeError):
            Zoo.from_manifest(path)
    finally:
        shutil.rmtree(folder)


@FUZZ
@given(
    header=st.lists(st.sampled_from(["text", "label", "sentence1", "sentence2", "x", ""]),
                    min_size=0, max_size=3),
    rows=st.lists(st.lists(names, min_size=0, max_size=3), max_size=6),
)  # fmt: skip
def test_a_fuzzed_task_table_loads_or_is_refused(header, rows):
    import csv

    from weightscape.data import load_task

    folder = _scratch()
    try:
        path = folder / "task.csv"
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            writer.writerows(rows)
        with contextlib.suppress(WeightscapeError):
            load_task(str(path))
    finally:
        shutil.rmtree(folder)


@FUZZ
@given(
    study=st.fixed_dictionaries(
        {},
        optional={
            "name": json_values,
            "out": json_values,
            "evaluation": json_values,
            "steps": st.lists(
                st.dictionaries(st.sampled_from(["grid", "interpolate", "basins", "zz"]),
                                json_values, max_size=2),
                max_size=3,
            ),
        },
    )
)  # fmt: skip
def test_a_fuzzed_study_file_validates_or_is_refused(study):
    from weightscape.studies.study_file import load_study

    folder = _scratch()
    try:
        path = folder / "study.yaml"
        path.write_text(yaml.safe_dump(study))
        with contextlib.suppress(WeightscapeError):
            load_study(path)
    finally:
        shutil.rmtree(folder)
