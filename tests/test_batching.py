"""Token-budget batching: few pad tokens, and the same per-example results as fixed batches.

References come from outside the code under test: batches cut by hand, the old fixed batches of
``batch_size`` examples written here, and plain transformers run one example at a time, unpadded.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import FILLER, NEGATIVE, POSITIVE
from weightscape.data import make_task
from weightscape.evaluation.evaluator import (
    BATCHING,
    EvalSettings,
    Evaluator,
    load_tokenizer,
    padded_batches,
    token_budget_batches,
)


def _lists(batches) -> list[list[int]]:
    return [b.tolist() for b in batches]


def _padded(lengths, batches) -> int:
    lengths = np.asarray(lengths)
    return sum(len(b) * int(lengths[b].max()) for b in batches)


# --- the rule, by hand ------------------------------------------------------------------------

LENGTHS = [3, 10, 2, 9, 10, 3]  # sorted longest first: indices 1, 4 (10), 3 (9), 0, 5 (3), 2 (2)


def test_a_small_case_cut_by_hand():
    """batch_size 2: a budget of 2 x 10 = 20 tokens. The 9 cannot join the two 10s (30 > 20);
    the 3, 3, 2 share a batch because 1 pad token costs less than a forward pass (4 tokens):
    38 computed + 3 x 4 = 50 beats 37 + 4 x 4 = 53 and [10], [10, 9], [3, 3, 2] at 39 + 12."""
    batches = token_budget_batches(LENGTHS, 2, overhead=4)
    assert _lists(batches) == [[1, 4], [3], [0, 5, 2]]
    assert _padded(LENGTHS, batches) == 38  # 37 real: 2.7% over, within the 4% tolerance


def test_without_overhead_or_tolerance_nothing_is_padded():
    expected = [[1, 4], [3], [0, 5], [2]]
    assert _lists(token_budget_batches(LENGTHS, 2, overhead=0)) == expected
    # 38 > 37 x (1 + 0): the overhead is halved down to 0, where the cut pads nothing
    assert _lists(token_budget_batches(LENGTHS, 2, overhead=4, tolerance=0.0)) == expected


def test_one_budget_of_the_longest_holds_many_short_ones():
    lengths = [8] + [2] * 8  # batch_size 2: 16 tokens a batch, so eight 2s fill one
    assert [len(b) for b in token_budget_batches(lengths, 2, overhead=0)] == [1, 8]
    assert [len(b) for b in token_budget_batches(lengths, 2)] == [1, 8]


def test_an_empty_task_has_no_batches():
    assert token_budget_batches([], 64) == []


# --- the rule, in general ---------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 200), min_size=1, max_size=300),
    batch_size=st.integers(1, 70),
    overhead=st.integers(0, 64),
)
def test_batches_are_sorted_runs_within_the_budget_and_the_tolerance(lengths, batch_size, overhead):
    batches = token_budget_batches(lengths, batch_size, overhead=overhead)
    order = np.argsort(-np.asarray(lengths), kind="stable")
    assert np.array_equal(np.concatenate(batches), order)  # every example once, sorted runs
    longest = max(lengths)
    assert all(len(b) * max(lengths[i] for i in b) <= batch_size * longest for b in batches)
    assert len(batches[0]) <= batch_size  # never more than the fixed batches held
    assert _padded(lengths, batches) <= 1.04 * sum(lengths)


@pytest.mark.parametrize("seed", range(3))
def test_wide_length_spreads_compute_within_5_percent_of_the_real_tokens(seed):
    """Lengths from 3 to 128 with a long tail, as real text has: fixed batches of 64 pad far
    more than 5% on a 512-example subset; token-budget batches stay within it."""
    rng = np.random.default_rng(seed)
    lengths = np.clip(rng.lognormal(3.2, 0.6, size=512).astype(int), 3, 128)
    real = int(lengths.sum())
    order = np.argsort(-lengths, kind="stable")
    fixed = [order[s : s + 64] for s in range(0, len(order), 64)]
    assert _padded(lengths, fixed) > 1.05 * real
    batches = token_budget_batches(lengths, 64)
    assert _padded(lengths, batches) <= 1.05 * real
    assert np.mean([len(b) for b in batches]) >= 16  # no swarm of tiny batches


# --- results unchanged ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def spread_task():
    """96 sentences of 1 to 50 words over the tiny vocabulary (3 to 52 tokens)."""
    rng = np.random.default_rng(7)
    texts, labels = [], []
    for _ in range(96):
        label = int(rng.integers(2))
        words = list(rng.choice(FILLER, size=int(rng.integers(0, 50))))
        words.insert(len(words) // 2, str(rng.choice(POSITIVE if label else NEGATIVE)))
        texts.append(" ".join(words))
        labels.append(label)
    return make_task("spread", texts, labels, ("negative", "positive"))


def _model(folder):
    from transformers import AutoModelForSequenceClassification

    return AutoModelForSequenceClassification.from_pretrained(
        str(folder), trust_remote_code=False
    ).eval()


def _fixed_batches(tokenizer, task, settings: EvalSettings):
    """The batching before token budgets: sorted by length, cut every ``batch_size``."""
    encoded = tokenizer(list(task.text_a), truncation=True, max_length=settings.max_length)
    lengths = np.array([len(ids) for ids in encoded["input_ids"]])
    order = np.argsort(-lengths, kind="stable")
    groups = [order[s : s + settings.batch_size] for s in range(0, len(order), settings.batch_size)]
    return padded_batches(tokenizer, encoded, groups, torch.device("cpu"))


def _one_at_a_time(model, tokenizer, task) -> tuple[np.ndarray, np.ndarray]:
    """Per-example losses and predictions by plain transformers, unpadded, batch of one."""
    losses, predictions = [], []
    with torch.inference_mode():
        for text, label in zip(task.text_a, task.labels, strict=True):
            logits = model(**tokenizer(text, return_tensors="pt")).logits.float()
            losses.append(float(torch.nn.functional.cross_entropy(logits, torch.tensor([label]))))
            predictions.append(int(logits.argmax(-1)))
    return np.array(losses), np.array(predictions)


def test_per_example_results_equal_fixed_batches_and_unpadded_ones(
    tiny_models, tokenizer_dir, spread_task
):
    tokenizer = load_tokenizer(tokenizer_dir)
    model = _model(tiny_models[0])
    settings = EvalSettings(batch_size=16)
    evaluator = Evaluator(tokenizer, spread_task, settings)
    fixed = Evaluator(tokenizer, spread_task, settings)
    fixed.batches = _fixed_batches(tokenizer, spread_task, settings)
    assert len(evaluator.batches) != len(fixed.batches)  # the cuts really differ

    new, old = evaluator.evaluate(model), fixed.evaluate(model)
    alone_losses, alone_predictions = _one_at_a_time(model, tokenizer, spread_task)
    np.testing.assert_allclose(new.losses, old.losses, rtol=0, atol=1e-6)
    np.testing.assert_allclose(new.losses, alone_losses, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(new.predictions, old.predictions)
    np.testing.assert_array_equal(new.predictions, alone_predictions)
    np.testing.assert_allclose(new.p_true, old.p_true, rtol=0, atol=1e-6)
    assert new.metrics["loss"] == pytest.approx(old.metrics["loss"], abs=1e-7)
    for name in ("accuracy", "macro_f1", "mcc"):
        assert new.metrics[name] == old.metrics[name]


def test_the_evaluator_counts_real_and_computed_tokens(tokenizer_dir, spread_task):
    tokenizer = load_tokenizer(tokenizer_dir)
    settings = EvalSettings(batch_size=16)
    lengths = [len(ids) for ids in tokenizer(list(spread_task.text_a))["input_ids"]]
    real, computed = Evaluator(tokenizer, spread_task, settings).tokens
    assert real == sum(lengths)
    assert computed == _padded(lengths, token_budget_batches(lengths, 16))
    assert real <= computed <= 1.05 * real
    fixed = Evaluator(tokenizer, spread_task, settings)
    fixed.batches = _fixed_batches(tokenizer, spread_task, settings)
    assert computed < sum(inputs["input_ids"].numel() for _, inputs in fixed.batches)


def test_the_batching_rule_is_part_of_every_store_key(tiny_models, tiny_task):
    """Another rule pads other batches, which can move the last bits: keys must differ."""
    from weightscape.evaluation.engine import Engine
    from weightscape.models.checkpoint import Checkpoint

    assert EvalSettings().spec()["batching"] == BATCHING
    engine = Engine([Checkpoint.from_path(tiny_models[0])], tiny_task, device="cpu")
    assert engine.spec([1.0])["settings"]["batching"] == BATCHING
