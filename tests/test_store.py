"""Store keys, the SQLite results store, and reuse of stored points by the executor."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from weightscape.errors import WeightscapeError
from weightscape.evaluation.keys import canonical_terms, point_spec, spec_key
from weightscape.evaluation.result import PointResult
from weightscape.runtime.store import ResultStore

A, B = "a" * 64, "b" * 64
SPACE = {"preset": "no-head", "include": [], "exclude": []}


def _key(hashes=(A, B), coefficients=(0.5, 0.5), **overrides) -> str:
    kwargs = {
        "hashes": list(hashes),
        "coefficients": list(coefficients),
        "space": SPACE,
        "space_is_complete": True,
        "reference_hash": hashes[0],
        "task": "task-fingerprint",
        "settings": {"batch_size": 64, "max_length": 128, "device": "cpu"},
        "tokenizer": "tokenizer-fingerprint",
    }
    kwargs.update(overrides)
    return spec_key(point_spec(**kwargs))


# --- keys -----------------------------------------------------------------------------------


def test_canonical_terms_merge_duplicates_and_drop_zeros():
    assert canonical_terms([B, A, B, A], [0.25, 0.0, 0.5, 0.0]) == [[B, (0.75).hex()]]
    assert canonical_terms([A, B], [1.0, -1.0]) == [[A, (1.0).hex()], [B, (-1.0).hex()]]
    assert canonical_terms([A, A], [0.5, -0.5]) == []  # cancelling terms: the origin
    assert canonical_terms([B, A], [0.3, 0.7]) == canonical_terms([A, B], [0.7, 0.3])


def test_an_endpoint_has_one_key_whatever_the_pair():
    """A model evaluated as one end of a pair is found again as an end of any other pair."""
    alone = _key(hashes=(A,), coefficients=(1.0,))
    assert _key(hashes=(A, B), coefficients=(1.0, 0.0)) == alone
    assert _key(hashes=(B, A), coefficients=(0.0, 1.0)) == alone
    assert _key(hashes=(A, "c" * 64), coefficients=(np.float64(1.0), 0.0)) == alone
    assert _key(hashes=(A, B), coefficients=(0.0, 1.0)) != alone


def test_key_changes_with_what_was_computed():
    base = _key()
    assert _key() == base  # deterministic
    assert _key(task="another-fingerprint") != base
    assert _key(settings={"batch_size": 64, "max_length": 64, "device": "cpu"}) != base
    assert _key(settings={"batch_size": 64, "max_length": 128, "device": "cuda"}) != base
    assert _key(evaluation="other") != base
    assert _key(tokenizer="another-tokenizer") != base
    one_ulp = np.nextafter(0.5, 1.0)
    assert one_ulp != 0.5
    assert _key(coefficients=(one_ulp, 0.5)) != base
    assert _key(coefficients=(0.5, np.nextafter(0.5, 0.0))) != base


def test_reference_is_part_of_the_key_only_when_the_space_is_partial():
    # With a complete space every tensor is mixed: the reference anchor is never read.
    assert _key(reference_hash=A) == _key(reference_hash="c" * 64)
    assert _key(space={"preset": "biases"}) == _key()
    partial = {"space_is_complete": False}
    assert _key(reference_hash=A, **partial) != _key(reference_hash="c" * 64, **partial)
    assert _key(**partial) != _key()
    assert _key(space={"preset": "biases"}, **partial) != _key(**partial)


# --- the store ------------------------------------------------------------------------------


def _result(seed: int, n: int = 7) -> PointResult:
    rng = np.random.default_rng(seed)
    return PointResult(
        metrics={"loss": float(rng.random()), "accuracy": 0.5, "macro_f1": 1 / 3, "mcc": -0.1},
        predictions=rng.integers(0, 3, n),
        p_true=rng.random(n).astype(np.float32),
        losses=rng.random(n).astype(np.float32),
    )


def _assert_same_result(got: PointResult, want: PointResult) -> None:
    assert got.metrics == want.metrics
    for field in ("predictions", "p_true", "losses"):
        got_array, want_array = getattr(got, field), getattr(want, field)
        assert got_array.dtype == want_array.dtype
        np.testing.assert_array_equal(got_array, want_array)


def test_put_get_round_trip(tmp_path):
    store = ResultStore(tmp_path / "sub" / "results.sqlite")  # creates the folder
    result = _result(0)
    assert store.get("k1") is None
    assert len(store) == 0
    store.put("k1", {"terms": [[A, "0x1.0p+0"]]}, result, seconds=0.25)
    _assert_same_result(store.get("k1"), result)
    assert "k1" in store
    assert "k2" not in store
    assert len(store) == 1
    store.put("k1", {"terms": []}, result, seconds=0.5)  # same key again: still one row
    store.put("k2", {}, _result(1), seconds=0.1)
    assert len(store) == 2
    store.close()

    reopened = ResultStore(tmp_path / "sub" / "results.sqlite")
    assert len(reopened) == 2
    _assert_same_result(reopened.get("k1"), result)
    _assert_same_result(reopened.get("k2"), _result(1))
    reopened.close()


WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import numpy as np
    from weightscape.evaluation.result import PointResult
    from weightscape.runtime.store import ResultStore

    path, tag, folder = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    store = ResultStore(path)
    (folder / f"ready-{tag}").touch()
    deadline = time.time() + 30
    while not (folder / "go").exists() and time.time() < deadline:
        time.sleep(0.005)
    for i in range(20):
        value = float(i)
        result = PointResult({"loss": value}, np.arange(5), np.ones(5, "f4"), np.zeros(5, "f4"))
        store.put(f"{tag}-{i}", {"i": i}, result, 0.0)
    store.close()
    """
)


def test_two_processes_write_one_store_at_once(tmp_path):
    path = tmp_path / "shared.sqlite"
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), tag, str(tmp_path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for tag in ("p", "q")
    ]
    deadline = time.time() + 30
    while not all((tmp_path / f"ready-{t}").exists() for t in "pq") and time.time() < deadline:
        time.sleep(0.005)
    (tmp_path / "go").touch()  # both processes now write at the same time
    outcomes = [w.communicate(timeout=60) for w in writers]
    for writer, (_, err) in zip(writers, outcomes, strict=True):
        assert writer.returncode == 0, err.decode()
    store = ResultStore(path)
    assert len(store) == 40
    assert all(f"{t}-{i}" in store for t in "pq" for i in range(20))
    assert store.get("q-19").metrics == {"loss": 19.0}


def test_unreadable_store_file_is_a_clear_error(tmp_path):
    path = tmp_path / "results.sqlite"
    path.write_bytes(b"definitely not sqlite " * 200)
    with pytest.raises(WeightscapeError, match=r"Cannot open results store .*results\.sqlite"):
        ResultStore(path)


# --- the executor ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def checkpoints(tiny_models):
    from weightscape.models.checkpoint import Checkpoint

    return [Checkpoint.from_path(p) for p in tiny_models]


def _engine(anchors, task):
    from weightscape.evaluation.engine import Engine
    from weightscape.evaluation.evaluator import EvalSettings

    return Engine(anchors, task, settings=EvalSettings(batch_size=16), device="cpu")


def _counting(engine) -> list:
    """Record the coefficient rows the engine really evaluates."""
    calls = []
    original = engine.evaluate

    def evaluate(row):
        calls.append(list(row))
        return original(row)

    engine.evaluate = evaluate
    return calls


def test_duplicate_rows_are_evaluated_once(checkpoints, tiny_task):
    from weightscape.runtime.executor import evaluate_points

    engine = _engine(checkpoints[:2], tiny_task)
    calls = _counting(engine)
    passes = engine.evaluator.forward_passes
    rows = np.array([[1.0, 0.0], [0.5, 0.5], [1.0, 0.0], [0.5, 0.5], [0.5, 0.5]])
    out = evaluate_points(engine, rows)
    assert calls == [[1.0, 0.0], [0.5, 0.5]]
    assert engine.evaluator.forward_passes - passes == 2 * len(engine.evaluator.batches)
    assert [e.cached for e in out] == [False, False, True, True, True]
    assert out[0].key == out[2].key != out[1].key
    _assert_same_result(out[3].result, out[1].result)


def test_a_second_call_with_a_store_computes_nothing(checkpoints, tiny_task, tmp_path):
    from weightscape.runtime.executor import evaluate_points

    engine = _engine(checkpoints[:2], tiny_task)
    calls = _counting(engine)
    rows = [[1.0, 0.0], [0.25, 0.75], [0.0, 1.0]]
    store = ResultStore(tmp_path / "results.sqlite")
    first = evaluate_points(engine, rows, store)
    assert len(calls) == 3 and len(store) == 3
    assert not any(e.cached for e in first)

    passes = engine.evaluator.forward_passes
    second = evaluate_points(engine, rows, ResultStore(tmp_path / "results.sqlite"))
    assert len(calls) == 3
    assert engine.evaluator.forward_passes == passes
    assert all(e.cached for e in second)
    for computed, stored in zip(first, second, strict=True):
        assert computed.key == stored.key
        _assert_same_result(stored.result, computed.result)


def test_endpoints_are_reused_across_pairs(checkpoints, tiny_task, tmp_path):
    from weightscape.analyses.interpolation import walk_path
    from weightscape.geometry import even_grid

    a, b, c = checkpoints
    store = ResultStore(tmp_path / "results.sqlite")
    first = walk_path(_engine([a, b], tiny_task), even_grid(3), store=store)
    assert first.computed == 3  # A, the midpoint, B
    assert len(store) == 3

    second = walk_path(_engine([a, c], tiny_task), even_grid(3), store=store)
    assert second.computed == 2  # the midpoint and C: A comes from the store
    # t = 0 is A (stored), t = 1 is C (just computed as an endpoint): only the midpoint is new.
    assert [p.cached for p in second.points] == [True, False, True]
    assert second.points[0].key == first.points[0].key
    assert second.endpoints[a.name] == first.endpoints[a.name]
    assert len(store) == 5
