"""Tests for weightscape.data.splits: seeded, disjoint, covering splits and nested subsets."""

from __future__ import annotations

import numpy as np
import pytest

from weightscape.data import Task, make_task, split, subset
from weightscape.errors import WeightscapeError


def numbered_task(count: int) -> Task:
    # ids offset from positions so that the tests can tell the two apart
    return make_task(
        "numbers",
        [f"example {i}" for i in range(count)],
        [i % 3 for i in range(count)],
        ("a", "b", "c"),
        ids=np.arange(count) + 1000,
    )


@pytest.mark.parametrize("count", [10, 97, 1000])
def test_split_is_disjoint_covering_and_proportional(count: int) -> None:
    task = numbered_task(count)
    parts = split(task, seed=3)
    assert list(parts) == ["train", "validation", "test"]
    id_sets = {key: set(part.ids.tolist()) for key, part in parts.items()}
    assert sum(len(ids) for ids in id_sets.values()) == count
    assert set.union(*id_sets.values()) == set(task.ids.tolist())
    for key, expected in zip(parts, (0.8, 0.1, 0.1), strict=True):
        assert abs(len(parts[key]) - expected * count) <= 1
    for part in parts.values():
        # rows keep their original order, and text, label and id stay together
        assert np.all(np.diff(part.ids) > 0)
        for text, label, row_id in zip(part.text_a, part.labels, part.ids, strict=True):
            assert text == f"example {row_id - 1000}" and label == (row_id - 1000) % 3


def test_split_names_and_label_set() -> None:
    parts = split(numbered_task(50))
    assert {key: part.name for key, part in parts.items()} == {
        "train": "numbers:train",
        "validation": "numbers:validation",
        "test": "numbers:test",
    }
    assert all(part.label_names == ("a", "b", "c") for part in parts.values())


def test_split_is_deterministic_per_seed() -> None:
    task = numbered_task(200)
    first, again, other = split(task, seed=0), split(task, seed=0), split(task, seed=1)
    for key in first:
        assert first[key].ids.tolist() == again[key].ids.tolist()
        assert first[key].fingerprint() == again[key].fingerprint()
    assert first["test"].ids.tolist() != other["test"].ids.tolist()


def test_split_custom_ratios() -> None:
    parts = split(numbered_task(100), ratios=(0.5, 0.25, 0.25))
    assert [len(part) for part in parts.values()] == [50, 25, 25]


@pytest.mark.parametrize(
    "ratios",
    [(0.8, 0.2), (0.8, 0.1, 0.2), (1.0, 0.0, 0.0), (0.9, 0.2, -0.1), ("a", 0.5, 0.5), 0.8],
)
def test_split_rejects_bad_ratios(ratios: object) -> None:
    with pytest.raises(WeightscapeError, match=r"'ratios' parameter of split"):
        split(numbered_task(20), ratios=ratios)  # type: ignore[arg-type]


def test_split_of_tiny_task_names_the_empty_split() -> None:
    with pytest.raises(WeightscapeError, match=r"leaves the 'test' split empty"):
        split(numbered_task(3))


def test_subset_size_order_and_determinism() -> None:
    task = numbered_task(300)
    small = subset(task, 40, seed=5)
    assert len(small) == 40
    assert len(set(small.ids.tolist())) == 40 and set(small.ids) <= set(task.ids)
    assert np.all(np.diff(small.ids) > 0)
    assert subset(task, 40, seed=5).ids.tolist() == small.ids.tolist()
    assert subset(task, 40, seed=6).ids.tolist() != small.ids.tolist()
    assert set(small.ids) <= set(subset(task, 120, seed=5).ids)  # nested
    assert small.name == task.name


def test_subset_larger_than_task_returns_everything() -> None:
    task = numbered_task(30)
    assert subset(task, 30) is task
    assert subset(task, 10_000).ids.tolist() == task.ids.tolist()


@pytest.mark.parametrize("n", [0, -3, 2.5, True, "10"])
def test_subset_rejects_bad_sizes(n: object) -> None:
    with pytest.raises(WeightscapeError, match=r"'n' parameter of subset"):
        subset(numbered_task(30), n)  # type: ignore[arg-type]


def test_negative_seed_is_rejected() -> None:
    with pytest.raises(WeightscapeError, match=r"'seed' parameter"):
        subset(numbered_task(30), 5, seed=-1)
