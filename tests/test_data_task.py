"""Tests for weightscape.data.task: validation, immutability, select and fingerprints."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

from weightscape.data import Task, make_task
from weightscape.errors import WeightscapeError

SENTIMENT = ("negative", "positive")


def toy_task(count: int = 6, **overrides: object) -> Task:
    options = {
        "name": "toy",
        "text_a": [f"sentence {i}" for i in range(count)],
        "labels": [i % 2 for i in range(count)],
        "label_names": SENTIMENT,
    }
    options.update(overrides)
    return make_task(**options)


def test_make_task_normalises_fields() -> None:
    task = make_task("toy", ["a", "b", "c"], np.array([1, 0, 1], dtype=np.int32), ["neg", "pos"])
    assert len(task) == 3
    assert task.num_labels == 2
    assert task.text_a == ("a", "b", "c") and task.text_b is None and not task.is_pair
    assert task.label_names == ("neg", "pos")
    assert task.labels.dtype == np.int64 and task.labels.tolist() == [1, 0, 1]
    assert task.ids.dtype == np.int64 and task.ids.tolist() == [0, 1, 2]
    assert task.metrics == ("loss", "accuracy", "macro_f1", "mcc")


def test_arrays_are_read_only_copies() -> None:
    source = np.array([0, 1, 0])
    task = make_task("toy", ["a", "b", "c"], source, SENTIMENT)
    source[0] = 1  # the task must not see changes to the caller's array
    assert task.labels.tolist() == [0, 1, 0]
    with pytest.raises(ValueError):
        task.labels[0] = 1
    with pytest.raises(ValueError):
        task.ids[0] = 7
    with pytest.raises(AttributeError):
        task.name = "other"  # type: ignore[misc]


def test_sentence_pairs() -> None:
    task = make_task("pairs", ["a", "b"], [0, 2], ("e", "n", "c"), text_b=["x", "y"])
    assert task.is_pair and task.text_b == ("x", "y") and task.num_labels == 3


def test_select_carries_ids_and_texts() -> None:
    task = toy_task(6, ids=[10, 11, 12, 13, 14, 15], text_b=[f"b{i}" for i in range(6)])
    picked = task.select([4, 1, 4])
    assert picked.ids.tolist() == [14, 11, 14]
    assert picked.text_a == ("sentence 4", "sentence 1", "sentence 4")
    assert picked.text_b == ("b4", "b1", "b4")
    assert picked.labels.tolist() == [0, 1, 0]
    assert picked.name == "toy" and task.select(np.array([0]), name="one").name == "one"


@pytest.mark.parametrize("indices", [[6], [-1], [0.5]])
def test_select_rejects_bad_positions(indices: list) -> None:
    with pytest.raises(WeightscapeError, match=r"toy"):
        toy_task(6).select(indices)


def test_empty_task_is_an_error() -> None:
    with pytest.raises(WeightscapeError, match=r"Task 'empty' has no examples"):
        make_task("empty", [], [], SENTIMENT)
    with pytest.raises(WeightscapeError, match=r"no examples"):
        toy_task(3).select([])


def test_labels_outside_range_are_named() -> None:
    with pytest.raises(WeightscapeError) as caught:
        make_task("toy", ["a", "b", "c", "d"], [0, 2, -1, 2], SENTIMENT)
    message = str(caught.value)
    assert "-1, 2" in message and "0=negative, 1=positive" in message


@pytest.mark.parametrize(
    ("overrides", "pattern"),
    [
        ({"text_b": ["only one"]}, "text_b has 1 entries but text_a has 6"),
        ({"labels": [0, 1]}, "labels has 2 entries"),
        ({"ids": [0, 1, 2]}, "ids has 3 entries"),
        ({"label_names": ("only",)}, "at least 2 label names"),
        ({"label_names": ()}, "at least 2 label names"),
        ({"label_names": ("a", "a")}, "repeated label names"),
        ({"labels": [0.5] * 6}, "labels must be a 1-D sequence of integers"),
        ({"text_a": ["ok", None, "x", "y", "z", "w"]}, r"text_a\[1\] is None"),
    ],
)
def test_invalid_content_is_rejected(overrides: dict, pattern: str) -> None:
    with pytest.raises(WeightscapeError, match=pattern):
        toy_task(6, **overrides)


def test_fingerprint_equal_for_equal_content() -> None:
    first, second = toy_task(), toy_task()
    assert first is not second
    assert first.fingerprint() == second.fingerprint()
    assert len(first.fingerprint()) == 64 and int(first.fingerprint(), 16) >= 0
    assert first == second and hash(first) == hash(second)
    assert toy_task(metrics=("loss",)).fingerprint() == first.fingerprint()  # not content


@pytest.mark.parametrize(
    "change",
    [
        {"labels": [1, 1, 0, 1, 0, 1]},  # one label flipped
        {"name": "other"},
        {"text_a": [f"sentence {i}" for i in range(5)] + ["Sentence 5"]},
        {"label_names": ("neg", "positive")},
        {"ids": [0, 1, 2, 3, 4, 6]},
        {"text_b": [""] * 6},
    ],
)
def test_fingerprint_changes_with_content(change: dict) -> None:
    assert toy_task(**change).fingerprint() != toy_task().fingerprint()
    assert toy_task(**change) != toy_task()


def test_fingerprint_does_not_confuse_field_boundaries() -> None:
    # Moving text from one example to the next must change the digest.
    left = make_task("t", ["ab", "c"], [0, 1], SENTIMENT)
    right = make_task("t", ["a", "bc"], [0, 1], SENTIMENT)
    assert left.fingerprint() != right.fingerprint()


def test_fingerprint_is_stable_across_processes() -> None:
    code = (
        "from weightscape.data import make_task;"
        "print(make_task('toy', ['a', 'b', 'é'], [0, 1, 1], ('n', 'p')).fingerprint())"
    )
    digests = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout.strip()
        for seed in ("1", "2")
    }
    local = make_task("toy", ["a", "b", "é"], [0, 1, 1], ("n", "p")).fingerprint()
    assert digests == {local}


def test_pickle_round_trip_keeps_content_and_read_only_arrays() -> None:
    task = toy_task(text_b=[f"b{i}" for i in range(6)])
    task.fingerprint()
    copy = pickle.loads(pickle.dumps(task))
    assert copy == task and copy.text_b == task.text_b and copy.metrics == task.metrics
    assert not copy.labels.flags.writeable and not copy.ids.flags.writeable
